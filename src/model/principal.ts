/** Roles a token may carry (what each may do is src/auth/roles.ts). */
export const ROLES = ['admin', 'service', 'worker', 'user'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Who is calling, as established from a verified token. */
export interface Principal {
  sub: string;
  role: Role;
  /** Present when the token carries a `tenant` claim: the caller then sees only that tenant's resources. */
  tenant?: string;
}

/** Who created a resource. `createdByRole` is null on records written before roles were stored. */
export interface Ownership {
  createdBy: string;
  createdByRole: Role | null;
  tenant: string | null;
}

/** Which resources of a kind a listing by a principal may contain (ANDed into the query). */
export interface AccessScope {
  /** null: only resources created without a tenant. */
  tenant?: string | null;
  owner?: { createdBy: string; createdByRole: Role };
}
