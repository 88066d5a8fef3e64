import type { Dependencies } from './dependencies';
import type { QueueDeps } from './queue-deps';

const RECLAIM_BATCH = 200;

/**
 * Lease rescue: takes back the leases whose workers vanished (expired, never reported) — back to
 * `queued`, to `dlq` when their attempts are used up, or `cancelled` when a cancel was acknowledged.
 * Runs on the lease path (throttled per process), forced before a limited type's slots are taken.
 */
export class LeaseRescuer {
  private lastReclaimAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly deps: Pick<QueueDeps, 'jobs' | 'slots' | 'keySlots' | 'events' | 'clock'> & {
      /** Minimum time between two reclaim passes of this process (0: before every lease). */
      reclaimIntervalMs: number;
    },
    private readonly dependencies: Dependencies,
  ) {}

  /** Whether a pass already ran at exactly this instant (then a forced one would find nothing new). */
  ranAt(now: Date): boolean {
    return this.lastReclaimAt === now.getTime();
  }

  async reclaimIfDue(now: Date, force: boolean): Promise<void> {
    if (!force && now.getTime() - this.lastReclaimAt < this.deps.reclaimIntervalMs) return;
    this.lastReclaimAt = now.getTime();
    await this.reclaimExpiredLeases(now);
  }

  /**
   * One pass over the leases expired at `now`. Frees the slot only of a lease this pass took back:
   * a lease whose heartbeat won the race keeps its slot.
   */
  async reclaimExpiredLeases(now: Date = this.deps.clock.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.deps.jobs.findExpiredLeases({ now, limit: RECLAIM_BATCH });
      const reclaimed = await Promise.all(
        expired.map(async (lease) => {
          const after = await this.deps.jobs.reclaimLease({ lease, now });
          return after ? { before: lease, after } : null;
        }),
      );
      const done = reclaimed.filter((r) => r !== null);
      await this.deps.slots.release(
        done.flatMap(({ before }) => (before.slotId && before.leaseId ? [{ slotId: before.slotId, leaseId: before.leaseId }] : [])),
      );
      await this.deps.keySlots.release(
        done.flatMap(({ before }) => (before.keySlotId && before.leaseId ? [{ slotId: before.keySlotId, leaseId: before.leaseId }] : [])),
      );
      for (const { after: job } of done) {
        if (job.status === 'dlq') {
          this.deps.events.emit('dead_lettered', { jobId: job.jobId, type: job.type, attempt: job.attempt, reason: 'lease_expired' });
          await this.dependencies.settleChildren(job, 'dlq', now);
        } else if (job.status === 'cancelled') {
          this.deps.events.emit('cancelled', { jobId: job.jobId, type: job.type, from: 'leased' });
          await this.dependencies.settleChildren(job, 'cancelled', now);
        } else {
          this.deps.events.emit('reclaimed', { jobId: job.jobId, type: job.type, attempt: job.attempt, tenant: job.tenant });
        }
      }
      total += done.length;
      if (expired.length < RECLAIM_BATCH) return total;
    }
  }
}
