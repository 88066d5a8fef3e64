import type { AccessScope } from '../model/principal';

/**
 * The query form of an access scope (src/auth/access.ts `scopeOf`), ANDed into listings and into the
 * filters of conditional updates and deletes, so a write can never land on a record the caller may
 * not see, even when the record changed between the read that authorized it and the write.
 */
export function accessFilter(scope: AccessScope): Record<string, unknown> {
  const filter: Record<string, unknown> = {};
  // `tenant: null` also matches records written before tenants were stored (no field).
  if (scope.tenant !== undefined) filter.tenant = scope.tenant;
  if (scope.owner) {
    filter.createdBy = scope.owner.createdBy;
    // Records without a stored role were created by a service (access.ts reads them that way too).
    filter.createdByRole = scope.owner.createdByRole === 'service' ? { $in: ['service', null] } : scope.owner.createdByRole;
  }
  return filter;
}
