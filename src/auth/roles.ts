import type { Role } from '../model/principal';
import { PERMISSIONS, type Permission } from '../model/permission';

/** The permission table itself is src/model/permission.ts (the HTTP contract reads it too). */
export type { Permission } from '../model/permission';

export function roleHasPermission(role: Role, permission: Permission): boolean {
  return PERMISSIONS[role].includes(permission);
}
