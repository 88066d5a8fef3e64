import type { JobEvents, JobEventName } from './job-events';

interface Waiter {
  types: ReadonlySet<string> | null;
  wake(): void;
}

export interface LeaseWaitersOptions {
  events: JobEvents;
  /** Is any job of these types (null: any type) available now? One cheap query. */
  probe(types: readonly string[] | null): Promise<boolean>;
  /** How often the shared poll asks the database while anyone waits. */
  pollIntervalMs: number;
}

// Transitions after which a waiting worker may find something to lease: new or returned jobs, and
// finished jobs (they free a concurrency slot of a limited type).
const WAKING_EVENTS: readonly JobEventName[] = ['enqueued', 'requeued', 'reclaimed', 'released', 'succeeded', 'failed', 'dead_lettered', 'cancelled'];

/**
 * Long-poll support for GET /jobs/lease?wait=: lease calls that found nothing wait here. A job
 * enqueued through this API instance wakes matching waiters at once; jobs that become available
 * otherwise (a schedule time passes, another instance enqueues) are found by ONE shared poll per
 * instance, at a bounded rate however many workers wait — so idle workers cost the database almost
 * nothing.
 */
export class LeaseWaiters {
  private readonly waiters = new Set<Waiter>();
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  constructor(private readonly options: LeaseWaitersOptions) {
    for (const event of WAKING_EVENTS) {
      options.events.on(event, (payload) => this.notify((payload as { type: string }).type));
    }
  }

  get size(): number {
    return this.waiters.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves when a matching job may be available, at `deadline` (epoch ms), or on abort. */
  wait(params: { types: readonly string[] | null; deadline: number; signal?: AbortSignal }): Promise<void> {
    return new Promise((resolve) => {
      const remaining = params.deadline - Date.now();
      // After close (shutdown) nobody waits: long-polls answer at once so the server can drain.
      if (remaining <= 0 || params.signal?.aborted || this.closed) return resolve();
      const finish = (): void => {
        clearTimeout(timer);
        params.signal?.removeEventListener('abort', finish);
        this.waiters.delete(waiter);
        if (this.waiters.size === 0) this.stopPolling();
        resolve();
      };
      const waiter: Waiter = { types: params.types ? new Set(params.types) : null, wake: finish };
      const timer = setTimeout(finish, remaining);
      params.signal?.addEventListener('abort', finish, { once: true });
      this.waiters.add(waiter);
      this.startPolling();
    });
  }

  notify(type: string): void {
    for (const waiter of [...this.waiters]) {
      if (!waiter.types || waiter.types.has(type)) waiter.wake();
    }
  }

  /** Stops the shared poll and releases every waiter (on shutdown). */
  close(): void {
    this.closed = true;
    for (const waiter of [...this.waiters]) waiter.wake();
    this.stopPolling();
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
      const types = [...this.waiters].some((w) => w.types === null) ? null : [...new Set([...this.waiters].flatMap((w) => [...w.types!]))];
      if (await this.options.probe(types)) {
        for (const waiter of [...this.waiters]) waiter.wake();
      }
    } catch {
      // The database may be down; the next tick tries again and the waiters' deadlines still hold.
    } finally {
      this.polling = false;
    }
  }
}
