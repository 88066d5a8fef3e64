import { AccessDeniedError, NotFoundError, type AppError } from '../errors';
import type { JobOwner } from '../model/job';
import type { AccessScope, Ownership, Principal, Role } from '../model/principal';
import { roleHasPermission, type Permission } from './roles';

/**
 * The one access rule of the service: which principal may read or change which resource. Every
 * read and write of a job, schedule, escrow, asset (and anything added later) goes through
 * `authorize` (one resource) or `scopeOf` (a listing), so the rule is written once:
 *
 * 1. Tenant: a token with a `tenant` claim sees only resources of that tenant. Another tenant's
 *    resource answers exactly as one that does not exist.
 * 2. Role: the route already checked the role's permission for the action (403 permission_denied).
 * 3. Owner: a resource belongs to the principal that created it, identified by (sub, role, tenant):
 *    a `user` token with a service's `sub` is another principal. Roles with the resource's "any"
 *    permission (admins; workers for assets they process) need not own it.
 * 4. Jobs act for their owner: a worker (which may read any asset) works on the resources a job
 *    names only when the job's owner may (`thumbnail.create`: read the asset; `payout.execute`: pay
 *    the escrow), so enqueuing a job reaches no further than the enqueuer's own token.
 *
 * Subjects starting with `schedule:` are reserved for the scheduler (tokens carrying one are
 * refused), so a schedule's jobs and idempotency keys can never be claimed by a client.
 */

export type ResourceKind = 'job' | 'schedule' | 'escrow' | 'asset';
/** `pay`: have a `payout.execute` job pay the escrow out (escrows only; null for the other kinds). */
export type Action = 'read' | 'write' | 'pay';

export const RESERVED_SUBJECT_PREFIX = 'schedule:';

export function isReservedSubject(sub: string): boolean {
  return sub.startsWith(RESERVED_SUBJECT_PREFIX);
}

interface ResourceRule {
  /** A permission that lets a non-owner act on every resource of the kind (within its tenant); null: none does. */
  any: Record<Action, Permission | null>;
  /** Only these may act at all (resources administered rather than owned, such as schedules). */
  ownersMayAct: boolean;
  /**
   * Actions every principal of the resource's own tenant may take without owning it (a token without
   * a tenant: on resources without one), for resources administered for a tenant rather than owned.
   */
  tenantMayAct: readonly Action[];
  /** How a resource the caller may not see is answered (for jobs: 403 to non-admins, per API.md). */
  hidden(principal: Principal, id: string): AppError;
}

const RULES: Record<ResourceKind, ResourceRule> = {
  job: {
    any: { read: 'jobs:read-any', write: 'jobs:cancel-any', pay: null },
    ownersMayAct: true,
    tenantMayAct: [],
    // Existence is not revealed to non-admins: unknown and not-yours look the same (403).
    hidden: (principal, id) =>
      roleHasPermission(principal.role, 'jobs:read-any') ? new NotFoundError('job_not_found', `job ${id} does not exist`) : new AccessDeniedError(),
  },
  schedule: {
    any: { read: 'admin', write: 'admin', pay: null },
    ownersMayAct: false,
    tenantMayAct: [],
    hidden: (_principal, id) => new NotFoundError('not_found', `schedule "${id}" does not exist`),
  },
  escrow: {
    any: { read: 'admin', write: 'admin', pay: 'admin' },
    ownersMayAct: false,
    // Admins create escrows for their tenant and its services enqueue the payouts: a service's payout
    // job pays its own tenant's escrows, never another tenant's (nor, without a tenant, a tenant's).
    tenantMayAct: ['pay'],
    hidden: () => new NotFoundError('escrow_not_found', 'no such escrow'),
  },
  asset: {
    any: { read: 'assets:read-any', write: 'admin', pay: null },
    ownersMayAct: true,
    tenantMayAct: [],
    hidden: (_principal, id) => new NotFoundError('asset_not_found', `asset ${id} does not exist`),
  },
};

/** The ownership a principal gives the resources it creates. */
export function ownershipOf(principal: Principal): Ownership {
  return { createdBy: principal.sub, createdByRole: principal.role, tenant: principal.tenant ?? null };
}

/** Records without a stored role were created by a service (the only non-admin role that creates). */
export function creatorRole(resource: Ownership): Role {
  return resource.createdByRole ?? 'service';
}

/** Rule 4: whom a job acts for — the principal it names in `actsFor` (a schedule's owner), else its creator. */
export function ownerOfJob(job: Ownership & { actsFor: { sub: string; role: Role } | null }): JobOwner {
  const tenant = job.tenant ?? null;
  return job.actsFor ? { sub: job.actsFor.sub, role: job.actsFor.role, tenant } : { sub: job.createdBy, role: creatorRole(job), tenant };
}

/** A job's owner as the principal its handler checks access with (no tenant: a token without the claim). */
export function ownerPrincipal(owner: JobOwner): Principal {
  return { sub: owner.sub, role: owner.role, ...(owner.tenant === null ? {} : { tenant: owner.tenant }) };
}

/** Rule 1 alone: whether a resource is within the principal's tenant (any tenant when the token has none). */
export function inTenant(principal: Principal, resource: { tenant: string | null }): boolean {
  return principal.tenant === undefined || resource.tenant === principal.tenant;
}

/** Whether the resource is of exactly the principal's tenant (a token without one: of no tenant). */
function ofOwnTenant(principal: Principal, resource: { tenant: string | null }): boolean {
  return (resource.tenant ?? null) === (principal.tenant ?? null);
}

export function isOwner(principal: Principal, resource: Ownership): boolean {
  return (
    resource.createdBy === principal.sub &&
    creatorRole(resource) === principal.role &&
    (resource.tenant ?? null) === (principal.tenant ?? null)
  );
}

/** Whether the principal may take `action` on the resource (false also when it may not even see it). */
export function mayAccess(principal: Principal, kind: ResourceKind, action: Action, resource: Ownership): boolean {
  const rule = RULES[kind];
  if (!inTenant(principal, resource)) return false;
  const any = rule.any[action];
  if (any !== null && roleHasPermission(principal.role, any)) return true;
  if (rule.tenantMayAct.includes(action) && ofOwnTenant(principal, resource)) return true;
  return rule.ownersMayAct && isOwner(principal, resource);
}

/**
 * Returns the resource when the principal may take `action` on it; otherwise throws the kind's
 * "hidden" error (a missing resource and a forbidden one answer alike).
 */
export function authorize<T extends Ownership>(params: {
  principal: Principal;
  kind: ResourceKind;
  action: Action;
  id: string;
  resource: T | null | undefined;
}): T {
  const { principal, kind, action, id, resource } = params;
  if (!resource || !mayAccess(principal, kind, action, resource)) throw RULES[kind].hidden(principal, id);
  return resource;
}

export function scopeOf(principal: Principal, kind: ResourceKind, action: Action = 'read'): AccessScope {
  const any = RULES[kind].any[action];
  const tenant = principal.tenant === undefined ? {} : { tenant: principal.tenant };
  if (any !== null && roleHasPermission(principal.role, any)) return tenant;
  if (RULES[kind].tenantMayAct.includes(action)) return { tenant: principal.tenant ?? null };
  return { tenant: principal.tenant ?? null, owner: { createdBy: principal.sub, createdByRole: principal.role } };
}
