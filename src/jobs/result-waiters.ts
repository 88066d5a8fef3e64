import type { JobEvents } from './job-events';

export interface ResultWaitersOptions {
  events: JobEvents;
  /** Of these job ids, the ones that have finished (succeeded, failed, dlq, cancelled): one query. */
  findFinished(jobIds: readonly string[]): Promise<string[]>;
  /** How often the shared poll asks while anyone waits (answers come within this of a finish elsewhere). */
  pollIntervalMs: number;
  /** The most ids one poll query asks about; more waiters take more queries per interval, never one each. */
  maxIdsPerQuery?: number;
}

interface Waiter {
  jobId: string;
  finish(reason: 'finished' | 'timeout' | 'ended'): void;
}

const DEFAULT_MAX_IDS_PER_QUERY = 1_000;

/**
 * `GET /jobs/:jobId?wait=N`: requests held until their job finishes. A finish recorded by this API
 * instance wakes its waiters at once (the job events); a finish recorded by another instance is found
 * by ONE shared poll — a single query for every job anyone waits for, each interval — so 200 waiters
 * cost one query per interval, not 200. Nothing is polled while nobody waits.
 */
export class ResultWaiters {
  private readonly byJob = new Map<string, Set<Waiter>>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  private readonly maxIds: number;

  constructor(private readonly options: ResultWaitersOptions) {
    this.maxIds = options.maxIdsPerQuery ?? DEFAULT_MAX_IDS_PER_QUERY;
    const finished = (payload: { jobId: string }): void => this.wake(payload.jobId);
    for (const event of ['succeeded', 'failed', 'dead_lettered', 'cancelled'] as const) options.events.on(event, finished);
  }

  /** Requests now waiting. */
  get size(): number {
    let n = 0;
    for (const set of this.byJob.values()) n += set.size;
    return n;
  }

  /**
   * Resolves `finished` when the job may have finished (the caller reads it again), `timeout` at
   * `deadline` (epoch ms), `ended` on abort or shutdown.
   */
  wait(params: { jobId: string; deadline: number; signal?: AbortSignal }): Promise<'finished' | 'timeout' | 'ended'> {
    return new Promise((resolve) => {
      if (this.closed || params.signal?.aborted) return resolve('ended');
      const remaining = params.deadline - Date.now();
      if (remaining <= 0) return resolve('timeout');
      const waiter: Waiter = {
        jobId: params.jobId,
        finish: (reason) => {
          clearTimeout(timer);
          params.signal?.removeEventListener('abort', onAbort);
          const set = this.byJob.get(params.jobId);
          set?.delete(waiter);
          if (set && set.size === 0) this.byJob.delete(params.jobId);
          if (this.byJob.size === 0) this.stopPolling();
          resolve(reason);
        },
      };
      const onAbort = (): void => waiter.finish('ended');
      const timer = setTimeout(() => waiter.finish('timeout'), remaining);
      params.signal?.addEventListener('abort', onAbort, { once: true });
      const set = this.byJob.get(params.jobId) ?? new Set<Waiter>();
      set.add(waiter);
      this.byJob.set(params.jobId, set);
      this.schedulePoll();
    });
  }

  /** Ends every wait at once (shutdown): the requests answer with the job as it is. */
  close(): void {
    this.closed = true;
    this.stopPolling();
    for (const set of [...this.byJob.values()]) for (const waiter of [...set]) waiter.finish('ended');
  }

  private wake(jobId: string): void {
    const set = this.byJob.get(jobId);
    if (!set) return;
    for (const waiter of [...set]) waiter.finish('finished');
  }

  private schedulePoll(): void {
    if (this.timer || this.closed || this.byJob.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll();
    }, this.options.pollIntervalMs);
    this.timer.unref();
  }

  private stopPolling(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const ids = [...this.byJob.keys()];
      for (let i = 0; i < ids.length; i += this.maxIds) {
        for (const jobId of await this.options.findFinished(ids.slice(i, i + this.maxIds))) this.wake(jobId);
      }
    } catch {
      // The database may be down: the next poll tries again, and every wait still ends at its deadline.
    } finally {
      this.polling = false;
      this.schedulePoll();
    }
  }
}
