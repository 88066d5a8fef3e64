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
   * How many jobs a lease call of this scope could take now, at most `max`: available jobs whose
   * type has a free concurrency slot. One cheap query per distinct scope.
   */
  countAvailable(params: WaiterScope & { max: number }): Promise<number>;
  /** Whether a type has a concurrency limit: only then does a finished job free something to lease. */
  isLimited(type: string): boolean;
  /** How often the shared poll asks the database while anyone waits. */
  pollIntervalMs: number;
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
  private polling = false;
  private closed = false;
  /** Bumped on every event that may make work available; a lease call that saw an older value retries at once. */
  private sequence = 0;
  private readonly lastByType = new Map<string, number>();

  constructor(private readonly options: LeaseWaitersOptions) {
    const available = (payload: { type: string; tenant?: string | null }): void => this.jobAvailable(payload.type, payload.tenant ?? null);
    options.events.on('enqueued', available);
    options.events.on('released', available);
    options.events.on('reclaimed', available);
    options.events.on('requeued', available);
    const finished = (payload: { type: string }): void => {
      if (options.isLimited(payload.type)) this.slotFreed(payload.type);
    };
    for (const event of ['succeeded', 'failed', 'dead_lettered', 'retry_scheduled'] as const) options.events.on(event, finished);
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
        this.waiters.delete(waiter);
        if (this.waiters.size === 0) this.stopPolling();
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
      this.startPolling();
    });
  }

  /** One job of `type` (of `tenant`) became available: wake one waiter that could lease it. */
  jobAvailable(type: string, tenant: string | null): void {
    this.bump(type);
    const waiter = this.first((w) => (w.typeSet === null || w.typeSet.has(type)) && (w.scope.tenant === undefined || w.scope.tenant === tenant));
    waiter?.wake();
  }

  /** A slot of a limited type was freed: one waiter for that type may now lease one of its queued jobs. */
  slotFreed(type: string): void {
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

  private startPolling(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => void this.poll(), this.options.pollIntervalMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private async poll(): Promise<void> {
    if (this.polling || this.waiters.size === 0) return;
    this.polling = true;
    try {
      // Waiters with the same scope share one question.
      const groups = new Map<string, { scope: WaiterScope; waiters: Waiter[] }>();
      for (const waiter of this.waiters) {
        const key = `${waiter.scope.tenant ?? '*'}|${waiter.scope.types ? [...waiter.scope.types].sort().join(',') : '*'}`;
        const group = groups.get(key) ?? { scope: waiter.scope, waiters: [] };
        group.waiters.push(waiter);
        groups.set(key, group);
      }
      for (const group of groups.values()) {
        const count = await this.options.countAvailable({ ...group.scope, max: group.waiters.length });
        for (const waiter of group.waiters.slice(0, count)) waiter.wake();
      }
    } catch {
      // The database may be down; the next tick tries again and the waiters' deadlines still hold.
    } finally {
      this.polling = false;
    }
  }
}
