import { planClaims, slotsNeeded } from '../../src/jobs/claim-planning';
import type { Job } from '../../src/model/job';
import { jobDocument } from '../helpers/job-documents';

const now = new Date('2030-01-01T00:00:00Z');
const policies: Record<string, { concurrencyLimit: number | null; timeoutSeconds: number }> = {
  noop: { concurrencyLimit: null, timeoutSeconds: 30 },
  'payout.execute': { concurrencyLimit: 5, timeoutSeconds: 60 },
};
const policyOf = (type: string) => policies[type]!;

function job(type: string): Job {
  const { _id, dedupeKey: _key, ...rest } = jobDocument({ status: 'queued', createdAt: now, type });
  return { ...rest, jobId: _id };
}

let leaseSeq = 0;
const newLeaseId = () => `lease_${(leaseSeq += 1)}`;

describe('claim planning (pure)', () => {
  it('counts the slots limited types need among the best 2 × want candidates, at most want per type', () => {
    const candidates = [job('payout.execute'), job('noop'), job('payout.execute'), job('payout.execute'), job('payout.execute'), job('payout.execute')];
    expect(slotsNeeded({ candidates, want: 2, policyOf })).toEqual(new Map([['payout.execute', 2]]));
    expect(slotsNeeded({ candidates: [job('noop')], want: 5, policyOf })).toEqual(new Map());
  });

  it('gives unlimited types fresh leases and limited types the slots taken for them, best first, up to want', () => {
    const [p1, n1, p2, n2, n3] = [job('payout.execute'), job('noop'), job('payout.execute'), job('noop'), job('noop')];
    const claims = planClaims({
      candidates: [p1!, n1!, p2!, n2!, n3!],
      want: 3,
      workerId: 'w1',
      now,
      policyOf,
      slotsByType: new Map([['payout.execute', [{ slotId: 'payout.execute#0', leaseId: 'lease_slot' }]]]),
      newLeaseId,
    });
    // p2 has no slot: skipped, not waited for; the next unlimited job takes its place.
    expect(claims.map((c) => c.candidate.jobId)).toEqual([p1!.jobId, n1!.jobId, n2!.jobId]);
    expect(claims[0]).toMatchObject({ leaseId: 'lease_slot', slotId: 'payout.execute#0', workerId: 'w1', leaseExpiresAt: new Date(now.getTime() + 60_000) });
    expect(claims[1]).toMatchObject({ slotId: null, leaseExpiresAt: new Date(now.getTime() + 30_000) });
    expect(new Set(claims.map((c) => c.leaseId)).size).toBe(3);
  });

  it('plans nothing for a limited type without slots, and does not consume the slots it is given', () => {
    const slots = [{ slotId: 'payout.execute#1', leaseId: 'lease_a' }];
    const slotsByType = new Map([['payout.execute', slots]]);
    expect(planClaims({ candidates: [job('payout.execute')], want: 1, workerId: 'w', now, policyOf, slotsByType: new Map(), newLeaseId })).toEqual([]);
    planClaims({ candidates: [job('payout.execute')], want: 1, workerId: 'w', now, policyOf, slotsByType, newLeaseId });
    expect(slots).toHaveLength(1);
  });
});
