import { ValidationError } from '../errors';
import type { Job, LeasedJob } from '../model/job';
import type { HeldSlot } from '../storage/slot-repository';
import { planClaims, slotsNeeded } from './claim-planning';
import type { LeaseRescuer } from './lease-rescue';
import { LeaseWaiters } from './lease-waiters';
import { newLeaseId, type QueueDeps } from './queue-deps';

export interface LeaseInput {
  workerId: string;
  /** null: every registered type. */
  types: readonly string[] | null;
  limit: number;
  /** Long-poll: when nothing is available, wait up to this long for work (0: answer at once). */
  waitMs?: number;
  /** Aborted when the caller goes away; the wait ends early. */
  signal?: AbortSignal;
  /** A tenant token leases only its tenant's jobs. */
  tenant?: string;
}

export interface LeaseResult {
  leasedAt: Date;
  jobs: LeasedJob[];
}

const MAX_CLAIM_ROUNDS = 3;

/**
 * Leasing: claims up to `limit` available jobs for one worker in a few round trips — reclaim expired
 * leases (throttled), read the best candidates, take concurrency slots where a type is limited, then
 * claim them all in one conditional bulk write. Races lost to other workers are retried a bounded
 * number of times. Empty-handed calls may long-poll (LeaseWaiters).
 */
export class Leaser {
  private readonly waiters: LeaseWaiters;

  constructor(
    private readonly deps: QueueDeps & {
      /** Long-poll: how soon one shared query looks for work after activity, while lease calls wait. */
      leasePollIntervalMs?: number;
      /** Long-poll: the longest the shared query waits while nothing happens (default 8 × the interval). */
      leasePollMaxIntervalMs?: number;
    },
    private readonly rescuer: LeaseRescuer,
  ) {
    const pollIntervalMs = deps.leasePollIntervalMs ?? 1_000;
    this.waiters = new LeaseWaiters({
      events: deps.events,
      pollIntervalMs,
      maxPollIntervalMs: Math.max(pollIntervalMs, deps.leasePollMaxIntervalMs ?? pollIntervalMs * 8),
      isLimited: (type) => deps.registry.has(type) && deps.registry.policyOf(type).concurrencyLimit !== null,
      countAvailable: (scope) => this.countLeasable(scope),
    });
  }

  /** Lease calls now waiting for work (long-poll). */
  get waitingLeaseCalls(): number {
    return this.waiters.size;
  }

  /** Ends every long-poll wait (shutdown), and the change feed. */
  close(): void {
    this.waiters.close();
    void this.feed?.close();
    this.feed = undefined;
  }

  private feed: { close(): Promise<void> } | undefined;

  /**
   * Wakes long-polls for jobs other API instances make available, through a change feed of the jobs
   * collection (where the database has one): `auto` opens it on a replica set, whose getMore waits
   * for changes; `on` opens it anyway (the test server, started with its oplog); `off` never. Without
   * it the bounded shared poll finds such jobs. Resolves whether the feed is live.
   */
  async startWorkFeed(mode: 'auto' | 'on' | 'off'): Promise<boolean> {
    if (mode === 'off' || this.feed || this.waiters.isClosed) return this.feed !== undefined;
    if (mode === 'auto' && !(await this.deps.jobs.supportsAwaitedChangeStreams())) return false;
    this.feed = this.deps.jobs.openWorkFeed({
      onWork: (change) => this.waiters.feedReported(change),
      onState: (live) => this.waiters.setFeedActive(live),
    });
    return true;
  }

  async lease(input: LeaseInput): Promise<LeaseResult> {
    // The wait is real time (a request's duration), not the injected clock.
    const deadline = Date.now() + (input.waitMs ?? 0);
    const scope = { types: input.types, tenant: input.tenant };
    let first = true;
    for (;;) {
      const since = this.waiters.currentSequence;
      // A renewed long-poll of a scope just found empty waits at once: the shared poll looks for all.
      const skip = first && (input.waitMs ?? 0) > 0 && this.waiters.isKnownEmpty(scope) && this.typesKnown(input.types);
      first = false;
      const result = skip ? { leasedAt: this.deps.clock.now(), jobs: [] } : await this.leaseOnce(input);
      if (!skip && result.jobs.length === 0) this.waiters.markEmpty(scope, since);
      if (result.jobs.length > 0 || Date.now() >= deadline || input.signal?.aborted) return result;
      const woke = await this.waiters.wait({ types: input.types, tenant: input.tenant, deadline, since, ...(input.signal ? { signal: input.signal } : {}) });
      // Nothing arrived that this call could take: answer empty without asking the database again.
      if (woke !== 'woken') return result;
    }
  }

  /** Types named in a lease call must be registered (422 otherwise, even when the call would wait). */
  private typesKnown(types: readonly string[] | null): boolean {
    if (!types) return true;
    const unknown = types.filter((t) => !this.deps.registry.has(t));
    if (unknown.length > 0) {
      throw new ValidationError('unknown job type in "type"', unknown.map((t) => ({ field: 'type', message: `job type "${t}" is not registered` })));
    }
    return true;
  }

  private async leaseOnce(input: LeaseInput): Promise<LeaseResult> {
    const { registry, clock, jobs, slots, events } = this.deps;
    this.typesKnown(input.types);
    const now = clock.now();
    await this.rescuer.reclaimIfDue(now, false);

    const won: Job[] = [];
    for (let round = 0; round < MAX_CLAIM_ROUNDS && won.length < input.limit; round += 1) {
      const want = input.limit - won.length;
      const candidates = await jobs.findAvailable({
        types: input.types,
        now,
        limit: Math.min(want * 2, 200),
        ...(input.tenant === undefined ? {} : { tenant: input.tenant }),
      });
      if (candidates.length === 0) break;
      const taken = await this.takeSlots({ candidates, want, now });
      const requests = planClaims({ candidates, want, workerId: input.workerId, now, policyOf: (t) => registry.policyOf(t), slotsByType: taken.byType, newLeaseId });
      const claimed = await jobs.claim({ requests, now });
      const claimedLeases = new Set(claimed.map((j) => j.leaseId));
      await slots.release(taken.all.filter((s) => !claimedLeases.has(s.leaseId)));
      won.push(...claimed);
      if (claimed.length === requests.length) break;
    }
    for (const job of won) events.emit('leased', { jobId: job.jobId, type: job.type, attempt: job.attempt, workerId: input.workerId });
    return {
      leasedAt: now,
      jobs: won.map((job) => ({
        jobId: job.jobId,
        type: job.type,
        payload: job.payload,
        attempt: job.attempt,
        leaseId: job.leaseId!,
        leaseExpiresAt: job.leaseExpiresAt!,
        traceparent: job.traceparent,
      })),
    };
  }

  /** Takes the slots the limited types among the candidates need (each slot under a fresh lease id). */
  private async takeSlots(params: { candidates: readonly Job[]; want: number; now: Date }): Promise<{ byType: Map<string, HeldSlot[]>; all: HeldSlot[] }> {
    const { registry, slots } = this.deps;
    const { now } = params;
    const needed = slotsNeeded({ candidates: params.candidates, want: params.want, policyOf: (t) => registry.policyOf(t) });
    // A limited type's free slots are only trustworthy once the leases expired at `now` are
    // reclaimed (a slot is freed by the reclaim of its lease), so the throttle does not apply here.
    if (needed.size > 0 && !this.rescuer.ranAt(now)) await this.rescuer.reclaimIfDue(now, true);
    const byType = new Map<string, HeldSlot[]>();
    const all: HeldSlot[] = [];
    for (const [type, count] of needed) {
      const policy = registry.policyOf(type);
      const held = await slots.acquire({
        type,
        limit: policy.concurrencyLimit!,
        leaseIds: Array.from({ length: count }, newLeaseId),
        now,
        expiresAt: new Date(now.getTime() + policy.timeoutSeconds * 1000),
      });
      byType.set(type, [...held]);
      all.push(...held);
    }
    return { byType, all };
  }

  /**
   * How many jobs a lease call of this scope could take now (at most `max`): available jobs of its
   * types and tenant, where a limited type counts no more than its free slots. The long-poll probe.
   */
  private async countLeasable(params: { types: readonly string[] | null; tenant: string | undefined; max: number }): Promise<{ count: number; nextDueInMs: number | null }> {
    const { registry, slots, jobs, clock } = this.deps;
    const now = clock.now();
    await this.rescuer.reclaimIfDue(now, false);
    const freeSlots = new Map<string, number>();
    for (const type of params.types ?? registry.typeNames()) {
      const limit = registry.policyOf(type).concurrencyLimit;
      if (limit !== null) freeSlots.set(type, await slots.countFree({ type, limit, now, max: params.max }));
    }
    const full = [...freeSlots].filter(([, free]) => free === 0).map(([type]) => type);
    const types = params.types ? params.types.filter((t) => !full.includes(t)) : null;
    // Every type asked for is at its limit: a finished job of it (an event) is what frees a slot.
    if (types && types.length === 0) return { count: 0, nextDueInMs: null };
    const scope = {
      types,
      ...(types === null && full.length > 0 ? { excludeTypes: full } : {}),
      now,
      ...(params.tenant === undefined ? {} : { tenant: params.tenant }),
    };
    const available = await jobs.findAvailableTypes({ ...scope, limit: params.max });
    if (available.length === 0) {
      const nextDueAt = await jobs.findNextDueAt(scope);
      return { count: 0, nextDueInMs: nextDueAt ? nextDueAt.getTime() - now.getTime() : null };
    }
    let count = 0;
    for (const type of available) {
      const free = freeSlots.get(type);
      if (free === undefined) count += 1;
      else if (free > 0) {
        freeSlots.set(type, free - 1);
        count += 1;
      }
    }
    return { count, nextDueInMs: null };
  }
}
