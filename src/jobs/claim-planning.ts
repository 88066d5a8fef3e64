import type { Job } from '../model/job';
import type { JobPolicy } from '../model/job-type';
import type { ClaimRequest } from '../storage/job-repository';
import type { HeldSlot } from '../storage/slot-repository';

type PolicyOf = (type: string) => Pick<JobPolicy, 'concurrencyLimit' | 'timeoutSeconds'>;

/**
 * How many slots each limited type needs for a lease call that wants `want` jobs from these
 * candidates (best first): at most `want` per type, counting the first 2 × want candidates.
 * Pure: no I/O.
 */
export function slotsNeeded(params: { candidates: readonly Pick<Job, 'type'>[]; want: number; policyOf: PolicyOf }): Map<string, number> {
  const { candidates, want, policyOf } = params;
  const needed = new Map<string, number>();
  for (const candidate of candidates.slice(0, want * 2)) {
    if (policyOf(candidate.type).concurrencyLimit !== null) {
      needed.set(candidate.type, Math.min(want, (needed.get(candidate.type) ?? 0) + 1));
    }
  }
  return needed;
}

/**
 * Chooses which candidates to claim, best first, up to `want`: a job of an unlimited type gets a
 * fresh lease id; a job of a limited type only when a slot was taken for its type, and then the
 * slot's lease id. Candidates of a limited type without a slot are skipped, never waited for, so a
 * busy type does not hold back others. Pure: no I/O.
 */
export function planClaims(params: {
  candidates: readonly Job[];
  want: number;
  workerId: string;
  now: Date;
  policyOf: PolicyOf;
  slotsByType: ReadonlyMap<string, readonly HeldSlot[]>;
  newLeaseId: () => string;
}): ClaimRequest[] {
  const { candidates, want, workerId, now, policyOf } = params;
  const freeSlots = new Map([...params.slotsByType].map(([type, slots]) => [type, [...slots]]));
  const claims: ClaimRequest[] = [];
  for (const candidate of candidates) {
    if (claims.length === want) break;
    const policy = policyOf(candidate.type);
    const base = { candidate, workerId, leaseExpiresAt: new Date(now.getTime() + policy.timeoutSeconds * 1000) };
    if (policy.concurrencyLimit === null) {
      claims.push({ ...base, leaseId: params.newLeaseId(), slotId: null });
      continue;
    }
    const slot = freeSlots.get(candidate.type)?.shift();
    if (slot) claims.push({ ...base, leaseId: slot.leaseId, slotId: slot.slotId });
  }
  return claims;
}
