import { ROLES, type Role } from './principal';

/**
 * What each role may do: the one table of permissions in the service. It sits in the model so the
 * HTTP contract (src/contract) can say who may call each route; src/auth/roles.ts checks it.
 */

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

export const PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  admin: ['jobs:enqueue', 'jobs:read', 'jobs:read-any', 'jobs:cancel', 'jobs:cancel-any', 'jobs:work', 'assets:write', 'assets:read', 'assets:read-any', 'admin'],
  service: ['jobs:enqueue', 'jobs:read', 'jobs:cancel', 'assets:write', 'assets:read'],
  worker: ['jobs:work', 'assets:read', 'assets:read-any'],
  user: ['jobs:read', 'jobs:cancel'],
};

/** The roles that hold a permission, in the order of ROLES. */
export function rolesWith(permission: Permission): Role[] {
  return ROLES.filter((role) => PERMISSIONS[role].includes(permission));
}
