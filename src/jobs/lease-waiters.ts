import type { JobEvents } from './job-events';

/** What one long-polling lease call can take: its types (null: any) within its tenant (undefined: any). */
export interface WaiterScope {
  types: readonly string[] | null;
  tenant: string | undefined;
}

interface Waiter {
  scope: WaiterScope;
  typeSet: ReadonlySet<string> | null;
  wake(): void;
}

export interface LeaseWaitersOptions {
  events: JobEvents;
  /**
   * How many jobs a lease call of this scope could take now, at most `max` (available jobs whose
   * type has a free concurrency slot), and, when none, in how many ms the next queued job of the
   * scope falls due (null: none is scheduled). One or two cheap queries per distinct scope.
   */
  countAvailable(params: WaiterScope & { max: number }): Promise<{ count: number; nextDueInMs: number | null }>;
  /** Whether a type has a concurrency limit (type-wide or per key): only then does a finished job free something to lease. */
  isLimited(type: string): boolean;
  /** Whether no job of the type can be leased now (paused, its rate window full): its news wakes nobody. */
  isHeldBack?(type: string): boolean;
  /** How soon the shared poll asks the database after activity, while anyone waits. */
  pollIntervalMs: number;
  /**
   * The longest the shared poll waits while nothing happens: each empty probe doubles the wait up
   * to this (any event, or work found, resets it), and a job falling due earlier is polled for then.
   */
  maxPollIntervalMs: number;
}

/**
 * Long-poll support for GET /jobs/lease?wait=: lease calls that found nothing wait here, and are
 * woken no more than the work they could take:
 * - a job made available through this instance (enqueued, released, reclaimed, requeued) wakes ONE
 *   waiter whose types and tenant match it — never the whole herd;
 * - a finished job of a limited type frees a slot and wakes one waiter of that type;
 * - jobs that become available otherwise (a scheduled time passes, another instance enqueues) are
 *   found by ONE shared poll per instance, which asks, per distinct waiter scope, how many jobs those
 *   waiters could take (their types, their tenant, free slots), and wakes that many.
 * So idle workers cost the database a few queries per interval however many wait, and one enqueue
 * costs one lease call, not one per waiter. Waiters are woken oldest first.
 */
export class LeaseWaiters {
  private readonly waiters = new Set<Waiter>();
  private pollTimer: NodeJS.Timeout | undefined;
  private pollDueAt = Number.POSITIVE_INFINITY;
  private pollDelayMs: number;
  private polling = false;
  /** Whether another source (a change feed) reports jobs made available by other API instances. */
  private feedActive = false;
  /** Jobs this instance made available, so the feed's echo of them wakes nobody twice. */
  private readonly announced = new Set<string>();
  /** Scopes found to have nothing leasable, at which event sequence (see isKnownEmpty). */
  private readonly empty = new Map<string, number>();
  private closed = false;
  /** Bumped on every event that may make work available; a lease call that saw an older value retries at once. */
  private sequence = 0;
  private readonly lastByType = new Map<string, number>();

  constructor(private readonly options: LeaseWaitersOptions) {
    this.pollDelayMs = options.pollIntervalMs;
    const available = (payload: { jobId: string; type: string; tenant?: string | null }): void => {
      this.remember(payload.jobId);
      this.jobAvailable(payload.type, payload.tenant ?? null);
    };
    options.events.on('enqueued', available);
    options.events.on('released', available);
    options.events.on('reclaimed', available);
    options.events.on('requeued', available);
    const finished = (payload: { type: string }): void => {
      if (options.isLimited(payload.type)) this.slotFreed(payload.type);
    };
    for (const event of ['succeeded', 'failed', 'dead_lettered', 'retry_scheduled', 'snoozed'] as const) options.events.on(event, finished);
    options.events.on('cancelled', (payload) => {
      if (payload.from === 'leased') finished(payload);
    });
  }

  get size(): number {
    return this.waiters.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Read before looking for work; pass to `wait` so an event in between is not missed. */
  get currentSequence(): number {
    return this.sequence;
  }

  /**
   * Resolves `woken` when a matching job may be available, `timeout` at `deadline` (epoch ms), or
   * `ended` on abort or shutdown. Only a woken caller needs to look for work again.
   */
  wait(params: WaiterScope & { deadline: number; since: number; signal?: AbortSignal }): Promise<'woken' | 'timeout' | 'ended'> {
    return new Promise((resolve) => {
      const remaining = params.deadline - Date.now();
      // After close (shutdown) nobody waits: long-polls answer at once so the server can drain.
      if (params.signal?.aborted || this.closed) return resolve('ended');
      if (this.changedSince(params.types, params.since)) return resolve('woken');
      if (remaining <= 0) return resolve('timeout');
      const finish = (reason: 'woken' | 'timeout' | 'ended'): void => {
        clearTimeout(timer);
        params.signal?.removeEventListener('abort', onAbort);
        // The poll stays armed when the last waiter leaves: renewed long-polls arrive a round trip
        // after their waits end, and find it still due (isKnownEmpty). Due with nobody waiting, it
        // asks nothing and stops.
        this.waiters.delete(waiter);
        resolve(reason);
      };
      const onAbort = (): void => finish('ended');
      const waiter: Waiter = {
        scope: { types: params.types, tenant: params.tenant },
        typeSet: params.types ? new Set(params.types) : null,
        wake: () => finish(this.closed ? 'ended' : 'woken'),
      };
      const timer = setTimeout(() => finish('timeout'), remaining);
      params.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
      this.schedulePoll(this.pollDelayMs);
    });
  }

  /**
   * A change feed (another API instance's writes) reports a job made available: `type` and
   * `tenant` when the feed knows them, else only that something changed (the shared poll then looks
   * soon). A job this instance announced itself is skipped.
   */
  feedReported(change: { jobId: string; type: string | null; tenant: string | null }): void {
    if (this.announced.has(change.jobId)) return;
    if (change.type === null) this.pollSoon();
    else this.jobAvailable(change.type, change.tenant);
  }

  /** Records that a lease call or probe of this scope, begun at `since`, found nothing to take. */
  markEmpty(scope: WaiterScope, since: number): void {
    this.empty.set(scopeKey(scope), since);
  }

  /**
   * Whether a new lease call of this scope can go straight to waiting: it was found empty, nothing
   * that could change that happened since (no event), and the shared poll is armed to look again.
   * Idle workers then cost the database nothing on each renewed long-poll; the poll asks for all.
   */
  isKnownEmpty(scope: WaiterScope): boolean {
    return (this.pollTimer !== undefined || this.polling) && this.empty.get(scopeKey(scope)) === this.sequence;
  }

  /** Whether a change feed is live: then the shared poll only needs to look for jobs falling due. */
  setFeedActive(active: boolean): void {
    this.feedActive = active;
  }

  /** Something may have become available: poll within the base interval. */
  pollSoon(): void {
    this.pollDelayMs = this.options.pollIntervalMs;
    this.schedulePoll(this.options.pollIntervalMs);
  }

  private remember(jobId: string): void {
    this.announced.add(jobId);
    // Bounded: the feed echoes a write within moments, so the oldest ids can go.
    if (this.announced.size > 10_000) this.announced.delete(this.announced.values().next().value!);
  }

  /**
   * Run-time settings of these types changed (a resume, a raised limit): waiters for them look
   * again, and the shared poll runs soon.
   */
  typesChanged(types: readonly string[]): void {
    for (const type of types) this.bump(type);
    for (const waiter of [...this.waiters]) if (waiter.typeSet === null || types.some((t) => waiter.typeSet!.has(t))) waiter.wake();
    this.pollSoon();
  }

  /** One job of `type` (of `tenant`) became available: wake one waiter that could lease it. */
  jobAvailable(type: string, tenant: string | null): void {
    // A paused or rate-limited type's job is found by the shared poll once it may run.
    if (this.options.isHeldBack?.(type)) return;
    this.bump(type);
    // Activity: the shared poll goes back to its base pace.
    this.pollDelayMs = this.options.pollIntervalMs;
    const waiter = this.first((w) => (w.typeSet === null || w.typeSet.has(type)) && (w.scope.tenant === undefined || w.scope.tenant === tenant));
    waiter?.wake();
  }

  /** A slot of a limited type was freed: one waiter for that type may now lease one of its queued jobs. */
  slotFreed(type: string): void {
    if (this.options.isHeldBack?.(type)) return;
    this.bump(type);
    this.first((w) => w.typeSet === null || w.typeSet.has(type))?.wake();
  }

  /** Stops the shared poll and releases every waiter (on shutdown). */
  close(): void {
    this.closed = true;
    for (const waiter of [...this.waiters]) waiter.wake();
    this.stopPolling();
  }

  private bump(type: string): void {
    this.sequence += 1;
    this.lastByType.set(type, this.sequence);
  }

  private changedSince(types: readonly string[] | null, since: number): boolean {
    if (this.sequence === since) return false;
    if (types === null) return true;
    return types.some((type) => (this.lastByType.get(type) ?? 0) > since);
  }

  private first(match: (waiter: Waiter) => boolean): Waiter | undefined {
    for (const waiter of this.waiters) if (match(waiter)) return waiter;
    return undefined;
  }

  /** Arms the shared poll to run within `delayMs` (an earlier arming stands). */
  private schedulePoll(delayMs: number): void {
    if (this.waiters.size === 0 || this.closed) return;
    const dueAt = Date.now() + delayMs;
    if (this.pollTimer && this.pollDueAt <= dueAt) return;
    clearTimeout(this.pollTimer);
    this.pollDueAt = dueAt;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.pollDueAt = Number.POSITIVE_INFINITY;
      void this.poll();
    }, delayMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.pollDueAt = Number.POSITIVE_INFINITY;
  }

  private async poll(): Promise<void> {
    if (this.polling || this.waiters.size === 0) return;
    this.polling = true;
    let nextDueInMs: number | null = null;
    let woke = false;
    try {
      // Waiters with the same scope share one question.
      const groups = new Map<string, { scope: WaiterScope; waiters: Waiter[] }>();
      const since = this.sequence;
      for (const waiter of this.waiters) {
        const key = scopeKey(waiter.scope);
        const group = groups.get(key) ?? { scope: waiter.scope, waiters: [] };
        group.waiters.push(waiter);
        groups.set(key, group);
      }
      for (const group of groups.values()) {
        const found = await this.options.countAvailable({ ...group.scope, max: group.waiters.length });
        for (const waiter of group.waiters.slice(0, found.count)) waiter.wake();
        if (found.count > 0) woke = true;
        else this.markEmpty(group.scope, since);
        if (found.nextDueInMs !== null) nextDueInMs = Math.min(nextDueInMs ?? Number.POSITIVE_INFINITY, found.nextDueInMs);
      }
    } catch {
      // The database may be down; the next poll tries again and the waiters' deadlines still hold.
    } finally {
      this.polling = false;
    }
    const { pollIntervalMs, maxPollIntervalMs } = this.options;
    // Nothing found: back off (other instances' enqueues are found later, or told by the feed).
    this.pollDelayMs = woke ? pollIntervalMs : Math.min(maxPollIntervalMs, this.pollDelayMs * 2);
    let delay = this.feedActive && !woke ? maxPollIntervalMs : this.pollDelayMs;
    // A job scheduled to fall due sooner is polled for right then.
    if (nextDueInMs !== null) delay = Math.min(delay, Math.max(nextDueInMs, 10));
    this.schedulePoll(delay);
  }
}

function scopeKey(scope: WaiterScope): string {
  return `${scope.tenant ?? '*'}|${scope.types ? [...scope.types].sort().join(',') : '*'}`;
}
