import { ownerOfJob } from '../auth/access';
import { ValidationError } from '../errors';
import type { Job, LeasedJob } from '../model/job';
import type { HeldSlot } from '../storage/slot-repository';
import { planClaims, slotsNeeded } from './claim-planning';
import { type ClaimFindings, ClaimReservations, type Reservation } from './claim-reservations';
import { FlowControl, type SpareGrants } from './flow-control';
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
 * A call that saw candidates but lost every one to other workers tries again at once this many
 * times: work is there, so waiting for an event (which others consumed) or the poll would idle a
 * worker behind a backlog.
 */
const MAX_CONTENDED_RETRIES = 4;
/** How long a probe's finding that settings hold a waiting scope back counts (longer than the probe's longest interval). */
const HELD_BACK_MEMORY_MS = 60_000;
/**
 * Rounds that found fewer candidates than wanted only because other lease calls of this instance
 * held or had just claimed them may go on, this many more (each such round took some of what is left).
 */
const MAX_ROUNDS_CUT_SHORT = 6;
/** Rounds that left out full keys or types may go on, up to this many in all. */
const MAX_ROUNDS_WITH_EXCLUSIONS = 6;
/** The most candidates one read asks for (twice what a call wants, plus those other calls here hold). */
const MAX_CANDIDATES_READ = 500;

/**
 * Leasing: claims up to `limit` available jobs for one worker in a few round trips — reclaim expired
 * leases (throttled), read the best candidates, take concurrency slots where a type is limited, then
 * claim them all in one conditional bulk write. Races lost to other workers are retried a bounded
 * number of times. Empty-handed calls may long-poll (LeaseWaiters).
 */
export class Leaser {
  private readonly waiters: LeaseWaiters;
  private readonly flow: FlowControl;
  private readonly claiming = new ClaimReservations();

  constructor(
    private readonly deps: QueueDeps & {
      /** Long-poll: how soon one shared query looks for work after activity, while lease calls wait. */
      leasePollIntervalMs?: number;
      /** Long-poll: the longest the shared query waits while nothing happens (default 8 × the interval). */
      leasePollMaxIntervalMs?: number;
      /** The run-time type settings, re-read before a lease call when older than their refresh interval. */
      runtimeSettings?: { fresh(): Promise<void> };
    },
    private readonly rescuer: LeaseRescuer,
  ) {
    const pollIntervalMs = deps.leasePollIntervalMs ?? 1_000;
    this.flow = new FlowControl(deps);
    this.waiters = new LeaseWaiters({
      events: deps.events,
      pollIntervalMs,
      maxPollIntervalMs: Math.max(pollIntervalMs, deps.leasePollMaxIntervalMs ?? pollIntervalMs * 8),
      isLimited: (type) => this.flow.isLimited(type),
      isHeldBack: (type) => deps.registry.has(type) && this.flow.isHeldBack(type, deps.clock.now()),
      countAvailable: (scope) => this.countLeasable(scope),
    });
    // A resumed type, or a raised limit, may have work for the waiting lease calls at once.
    deps.registry.onSettingsChanged((types) => this.waiters.typesChanged(types));
  }

  /** Lease calls now waiting for work (long-poll). */
  get waitingLeaseCalls(): number {
    return this.waiters.size;
  }

  /** When the long-poll probe last found a waiting scope's type paused, rate-held or at its limit (real time). */
  private heldBackSeenAt = Number.NEGATIVE_INFINITY;

  /**
   * Whether lease calls wait here on a type a setting holds back: then a resume or a raised limit
   * made on another instance must be read without a lease call to wake them (TypeSettings).
   */
  get waitsOnSettings(): boolean {
    return this.waiters.size > 0 && Date.now() - this.heldBackSeenAt < HELD_BACK_MEMORY_MS;
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
    let contendedRetries = 0;
    for (;;) {
      const since = this.waiters.currentSequence;
      // A renewed long-poll of a scope just found empty waits at once: the shared poll looks for all.
      const skip = first && (input.waitMs ?? 0) > 0 && this.waiters.isKnownEmpty(scope) && this.typesKnown(input.types);
      first = false;
      const { result, contended } = skip ? { result: { leasedAt: this.deps.clock.now(), jobs: [] }, contended: false } : await this.leaseOnce(input);
      if (result.jobs.length === 0 && contended && contendedRetries < MAX_CONTENDED_RETRIES && !input.signal?.aborted) {
        contendedRetries += 1;
        continue;
      }
      // Only a scope the database had nothing for is empty; one whose candidates went to others is not.
      if (!skip && result.jobs.length === 0 && !contended) this.waiters.markEmpty(scope, since);
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

  /** `contended`: it won nothing because other workers took the jobs it tried to claim. */
  private async leaseOnce(input: LeaseInput): Promise<{ result: LeaseResult; contended: boolean }> {
    const { clock, jobs, slots, events } = this.deps;
    this.typesKnown(input.types);
    // A pause or a lower limit set on another instance holds here within the settings' refresh interval.
    await this.deps.runtimeSettings?.fresh();
    let now = clock.now();
    await this.rescuer.reclaimIfDue(now, false);

    // Paused types and types whose rate window is known full are left out of the query itself.
    const heldBack = this.flow.heldBack(now);
    let types = input.types ? input.types.filter((t) => !heldBack.has(t)) : null;
    const excludeTypes = new Set(input.types ? [] : heldBack);
    if (heldBack.size > 0 && (input.types ? input.types.some((t) => heldBack.has(t)) : true)) this.heldBackSeenAt = Date.now();
    const excludeKeys = new Map<string, Set<string>>();
    const spare: SpareGrants = new Map();
    const won: Job[] = [];
    let maxRounds = MAX_CLAIM_ROUNDS;
    let lostRaces = false;
    // Rounds that other calls here cut short (their reservations skipped) go on, this many in all.
    let roundsCutShort = 0;
    // A busy key, a full type or a spent rate window never holds back the rest: the next rounds
    // look past them. Whether anything was left out that was not before.
    const exclude = (findings: ClaimFindings): boolean => {
      let changed = false;
      if (findings.fullTypes.length > 0) this.heldBackSeenAt = Date.now();
      for (const type of findings.fullTypes) {
        if (types ? types.includes(type) : !excludeTypes.has(type)) changed = true;
        if (types) types = types.filter((t) => t !== type);
        else excludeTypes.add(type);
      }
      for (const [type, key] of findings.fullKeys) {
        const keys = excludeKeys.get(type) ?? new Set<string>();
        if (!keys.has(key)) changed = true;
        excludeKeys.set(type, keys.add(key));
      }
      if (changed) maxRounds = Math.min(MAX_ROUNDS_WITH_EXCLUSIONS, maxRounds + 1);
      return changed;
    };
    for (let round = 0; round < maxRounds + roundsCutShort && won.length < input.limit && (types === null || types.length > 0); round += 1) {
      const want = input.limit - won.length;
      // Candidates other lease calls of this instance are claiming are skipped: read past them.
      const readLimit = Math.min(want * 2 + this.claiming.size, MAX_CANDIDATES_READ);
      const reservation = await this.claiming.read({
        max: want * 2,
        read: () =>
          jobs.findAvailable({
            types,
            ...(types === null && excludeTypes.size > 0 ? { excludeTypes: [...excludeTypes] } : {}),
            ...(excludeKeys.size > 0 ? { excludeKeys } : {}),
            now,
            limit: readLimit,
            ...(input.tenant === undefined ? {} : { tenant: input.tenant }),
          }),
      });
      if (reservation.found === 0) break;
      if (reservation.taken.length === 0) {
        // Every candidate is being claimed, or was just claimed, by other calls here. What those
        // calls found full, this one would too: it looks past that at once. Otherwise it tries
        // again as after a lost race, with a new `now` (its own is as old as those claims).
        const findings = await reservation.othersReleased();
        if (exclude(findings)) continue;
        lostRaces = true;
        // Nothing won yet: lease() tries again as after a lost race. Some won already: those calls'
        // claims have landed, so a new read finds what is left (with a new `now`: this one is as
        // old as those claims, and a rate window must not be stamped with it).
        if (won.length === 0 || roundsCutShort >= MAX_ROUNDS_CUT_SHORT) break;
        roundsCutShort += 1;
        now = clock.now();
        continue;
      }
      const { taken, gated, claimed, findings } = await this.claimReserved({ reservation, want, workerId: input.workerId, now, spare });
      const claimedLeases = new Set(claimed.map((j) => j.leaseId!));
      await slots.release(taken.all.filter((s) => !claimedLeases.has(s.leaseId)));
      await this.flow.releaseUnclaimed({ gated, claimedLeases, spare });
      won.push(...claimed);
      if (claimed.length < gated.requests.length) lostRaces = true;
      if (findings.fullTypes.length > 0 || findings.fullKeys.length > 0) {
        exclude(findings);
        continue;
      }
      if (claimed.length === gated.requests.length) {
        // Every claim won: done, unless calls here reserved candidates while this read was in flight
        // and the database holds more than it returned.
        if (won.length >= input.limit || reservation.found < readLimit) break;
        // Cut short by other calls here (they held or had just claimed what it read), not by a race
        // with another instance: it does not spend one of the rounds.
        roundsCutShort = Math.min(roundsCutShort + 1, MAX_ROUNDS_CUT_SHORT);
      }
    }
    await this.flow.giveBack(spare);
    for (const job of won) events.emit('leased', { jobId: job.jobId, type: job.type, attempt: job.attempt, workerId: input.workerId });
    return {
      contended: lostRaces && won.length === 0,
      result: {
        leasedAt: now,
        jobs: won.map((job) => ({
          jobId: job.jobId,
          type: job.type,
          payload: job.payload,
          attempt: job.attempt,
          leaseId: job.leaseId!,
          leaseExpiresAt: job.leaseExpiresAt!,
          checkpoint: job.checkpoint ?? null,
          traceparent: job.traceparent,
          owner: ownerOfJob(job),
        })),
      },
    };
  }

  /**
   * Plans and sends the claims of a reservation's candidates: slots for limited types, the flow
   * gates, then one conditional bulk write. The reservation is settled whatever happens.
   */
  private async claimReserved(params: { reservation: Reservation<Job>; want: number; workerId: string; now: Date; spare: SpareGrants }) {
    const { reservation, want, workerId, now, spare } = params;
    const { registry, jobs } = this.deps;
    let claimed: Job[] = [];
    let findings: ClaimFindings = { fullTypes: [], fullKeys: [] };
    try {
      const candidates = reservation.taken;
      const taken = await this.takeSlots({ candidates, want, now });
      const planned = planClaims({ candidates, want, workerId, now, policyOf: (t) => registry.policyOf(t), slotsByType: taken.byType, newLeaseId });
      // Key slots are not worth a forced reclaim (unlike the type-wide ones): a slot whose lease
      // expired frees itself with the next throttled reclaim (RECLAIM_INTERVAL_MS), and only that key waits.
      const gated = await this.flow.gate({ requests: planned, now, spare });
      findings = { fullTypes: [...new Set([...taken.fullTypes, ...gated.fullTypes])], fullKeys: gated.fullKeys };
      const toClaim = new Set(gated.requests.map((r) => r.candidate.jobId));
      reservation.letGo(candidates.filter((c) => !toClaim.has(c.jobId)).map((c) => c.jobId));
      claimed = await jobs.claim({ requests: gated.requests, now });
      return { taken, gated, claimed, findings };
    } finally {
      reservation.settle({ claimed: claimed.map((j) => j.jobId), ...findings });
    }
  }

  /** Takes the slots the limited types among the candidates need (each slot under a fresh lease id). */
  private async takeSlots(params: { candidates: readonly Job[]; want: number; now: Date }): Promise<{ byType: Map<string, HeldSlot[]>; all: HeldSlot[]; fullTypes: string[] }> {
    const { registry, slots } = this.deps;
    const { now } = params;
    const needed = slotsNeeded({ candidates: params.candidates, want: params.want, policyOf: (t) => registry.policyOf(t) });
    // A limited type's free slots are only trustworthy once the leases expired at `now` are
    // reclaimed (a slot is freed by the reclaim of its lease), so the throttle does not apply here.
    if (needed.size > 0 && !this.rescuer.ranAt(now)) await this.rescuer.reclaimIfDue(now, true);
    const byType = new Map<string, HeldSlot[]>();
    const all: HeldSlot[] = [];
    const fullTypes: string[] = [];
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
      // Fewer slots than its candidates wanted: every slot of the type is held now.
      if (held.length < count) fullTypes.push(type);
    }
    return { byType, all, fullTypes };
  }

  /**
   * How many jobs a lease call of this scope could take now (at most `max`): available jobs of its
   * types and tenant, where a limited type counts no more than its free slots. The long-poll probe.
   */
  private async countLeasable(params: { types: readonly string[] | null; tenant: string | undefined; max: number }): Promise<{ count: number; nextDueInMs: number | null }> {
    const { registry, slots, jobs, keySlots, clock } = this.deps;
    const now = clock.now();
    const scopeTypes = params.types ?? registry.typeNames();
    // A paused type, or one whose rate window is full, has nothing to lease: the window's end is
    // when to look again (a resume wakes the waiters itself). Nothing else to lease: no query at all.
    const heldBack = this.flow.heldBack(now);
    const reopensInMs = this.flow.reopensInMs(scopeTypes, now);
    if (scopeTypes.every((t) => heldBack.has(t))) {
      this.heldBackSeenAt = Date.now();
      return { count: 0, nextDueInMs: reopensInMs };
    }
    await this.rescuer.reclaimIfDue(now, false);
    const freeSlots = new Map<string, number>();
    for (const type of scopeTypes) {
      if (heldBack.has(type)) continue;
      const limit = registry.policyOf(type).concurrencyLimit;
      if (limit !== null) freeSlots.set(type, await slots.countFree({ type, limit, now, max: params.max }));
    }
    const full = [...new Set([...heldBack, ...[...freeSlots].filter(([, free]) => free === 0).map(([type]) => type)])];
    if (scopeTypes.some((t) => full.includes(t))) this.heldBackSeenAt = Date.now();
    const types = params.types ? params.types.filter((t) => !full.includes(t)) : null;
    // Every type asked for is at its limit: a finished job of it (an event) is what frees a slot.
    if (types && types.length === 0) return { count: 0, nextDueInMs: reopensInMs };
    const scope = {
      types,
      ...(types === null && full.length > 0 ? { excludeTypes: full } : {}),
      now,
      ...(params.tenant === undefined ? {} : { tenant: params.tenant }),
    };
    const keyed = (types ?? scopeTypes.filter((t) => !full.includes(t))).some((t) => registry.policyOf(t).keyConcurrencyLimit !== null);
    // With keyed types, look further than one job per waiter: a busy key's backlog comes first.
    const available = keyed
      ? await jobs.findAvailableEntries({ ...scope, limit: params.max * 4 + 20 })
      : (await jobs.findAvailableTypes({ ...scope, limit: params.max })).map((type) => ({ type, concurrencyKey: null }));
    if (available.length === 0) {
      const nextDueAt = await jobs.findNextDueAt(scope);
      const dueInMs = nextDueAt ? nextDueAt.getTime() - now.getTime() : null;
      return { count: 0, nextDueInMs: dueInMs === null ? reopensInMs : Math.min(dueInMs, reopensInMs ?? Number.POSITIVE_INFINITY) };
    }
    const keyLimit = (entry: { type: string; concurrencyKey: string | null }): number | null =>
      entry.concurrencyKey === null ? null : registry.policyOf(entry.type).keyConcurrencyLimit;
    const pools = new Map<string, { type: string; key: string; limit: number }>();
    for (const entry of available) {
      const limit = keyLimit(entry);
      if (limit !== null) pools.set(JSON.stringify([entry.type, entry.concurrencyKey]), { type: entry.type, key: entry.concurrencyKey!, limit });
    }
    const freeKeys = await keySlots.countFree({ pools: [...pools.values()], now });
    let count = 0;
    for (const entry of available) {
      if (count >= params.max) break;
      const free = freeSlots.get(entry.type);
      if (free !== undefined && free <= 0) continue;
      if (keyLimit(entry) !== null) {
        const poolId = JSON.stringify([entry.type, entry.concurrencyKey]);
        const keyFree = freeKeys.get(poolId) ?? 0;
        if (keyFree <= 0) continue;
        freeKeys.set(poolId, keyFree - 1);
      }
      if (free !== undefined) freeSlots.set(entry.type, free - 1);
      count += 1;
    }
    return { count, nextDueInMs: count === 0 ? reopensInMs : null };
  }
}
