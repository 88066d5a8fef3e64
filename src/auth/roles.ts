import type { Role } from '../model/principal';

/** What each role may do: the one table of permissions in the service. */

export type Permission =
  | 'jobs:enqueue'
  | 'jobs:read' // own jobs; `jobs:read-any` widens it to every job
  | 'jobs:read-any'
  | 'jobs:cancel' // own jobs; `jobs:cancel-any` widens it
  | 'jobs:cancel-any'
  | 'jobs:work' // lease, heartbeat, succeed, fail
  | 'assets:write'
  | 'assets:read' // own assets; `assets:read-any` widens it (workers read the assets they process)
  | 'assets:read-any'
  | 'admin';

const PERMISSIONS: Record<Role, readonly Permission[]> = {
  admin: ['jobs:enqueue', 'jobs:read', 'jobs:read-any', 'jobs:cancel', 'jobs:cancel-any', 'jobs:work', 'assets:write', 'assets:read', 'assets:read-any', 'admin'],
  service: ['jobs:enqueue', 'jobs:read', 'jobs:cancel', 'assets:write', 'assets:read'],
  worker: ['jobs:work', 'assets:read', 'assets:read-any'],
  user: ['jobs:read', 'jobs:cancel'],
};

export function roleHasPermission(role: Role, permission: Permission): boolean {
  return PERMISSIONS[role].includes(permission);
}
