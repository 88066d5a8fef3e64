import { coerceError } from '../errors';
import type { Logger } from '../logger';
import type { Clock } from '../model/clock';
import type { WorkerView } from '../model/worker';
import type { JobRepository } from '../storage/job-repository';
import type { WorkerRepository } from '../storage/worker-repository';

/** `GET /admin/workers` lists the workers seen within this window. */
export const WORKER_WINDOW_MS = 5 * 60_000;
/** Default: a worker's sighting is written at most once per this (and when its types change). */
export const DEFAULT_WORKER_SEEN_INTERVAL_MS = 10_000;
const MAX_LISTED = 1_000;
const MAX_REMEMBERED = 10_000;

export interface WorkerPresenceDeps {
  store: Pick<WorkerRepository, 'recordSeen' | 'recordSeenMany' | 'findSeenSince'>;
  jobs: Pick<JobRepository, 'findLeasedBy'>;
  clock: Clock;
  logger?: Logger;
  intervalMs?: number;
}

/**
 * Who is working: each lease call and heartbeat says a worker process is alive. Kept cheap: a worker
 * this instance has not written yet (or whose types changed) is written at once, fire-and-forget, so
 * it is listed right away; after that its sighting is refreshed at most once per interval (10 s), and
 * the refreshes of all workers due in an interval go in one bulk write. So idle long-polling workers
 * cost one write per interval, however many there are, and the lease path never waits for one. The
 * listing reads the sightings of the last five minutes and the jobs those workers hold, in two queries.
 */
type Sighting = { workerId: string; types: string[] | null | undefined; tenant: string | null; at: Date; call: 'lease' | 'heartbeat' };

export class WorkerPresence {
  private readonly written = new Map<string, { at: number; types: string }>();
  /** Refreshes waiting for the next bulk write, by worker. */
  private readonly pending = new Map<string, Sighting>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: WorkerPresenceDeps) {}

  /** A lease call (`types`: what it asked for, null: every type) or a heartbeat (`types` undefined). */
  seen(params: { workerId: string; types: readonly string[] | null | undefined; tenant: string | undefined; call: 'lease' | 'heartbeat' }): void {
    const now = this.deps.clock.now();
    const typesKey = params.types === undefined ? undefined : params.types === null ? '*' : [...params.types].sort().join(',');
    const last = this.written.get(params.workerId);
    const interval = this.deps.intervalMs ?? DEFAULT_WORKER_SEEN_INTERVAL_MS;
    const changed = typesKey !== undefined && last !== undefined && last.types !== typesKey;
    if (last && now.getTime() - last.at < interval && !changed) return;
    this.written.set(params.workerId, { at: now.getTime(), types: typesKey ?? last?.types ?? '' });
    if (this.written.size > MAX_REMEMBERED) this.forgetOld(now.getTime());
    const sighting: Sighting = {
      workerId: params.workerId,
      types: params.types === undefined ? undefined : params.types === null ? null : [...params.types],
      tenant: params.tenant ?? null,
      at: now,
      call: params.call,
    };
    if (!last || changed) {
      this.pending.delete(params.workerId);
      void this.write(this.deps.store.recordSeen(sighting), [params.workerId]);
      return;
    }
    // A refresh keeps the types last written unless this call named them.
    const earlier = this.pending.get(params.workerId);
    this.pending.set(params.workerId, sighting.types === undefined && earlier ? { ...sighting, types: earlier.types } : sighting);
    this.flushTimer ??= setTimeout(() => void this.flush(), interval).unref();
  }

  /** Writes the pending refreshes now (the timer does so once per interval; a listing first). */
  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.size === 0) return Promise.resolve();
    const batch = [...this.pending.values()];
    this.pending.clear();
    return this.write(this.deps.store.recordSeenMany(batch), batch.map((s) => s.workerId));
  }

  private write(done: Promise<void>, workerIds: readonly string[]): Promise<void> {
    return done.catch((rawErr: unknown) => {
      // Presence is best effort: the next call writes again.
      for (const workerId of workerIds) this.written.delete(workerId);
      this.deps.logger?.warn({ err: coerceError(rawErr) }, 'could not record a worker sighting');
    });
  }

  /** The workers seen in the last five minutes, most recent first, with the jobs each holds now. */
  async list(params: { tenant?: string } = {}): Promise<WorkerView[]> {
    // Refreshes held back for the next bulk write are written first, so the listing is current.
    await this.flush();
    const now = this.deps.clock.now();
    const tenant = params.tenant === undefined ? {} : { tenant: params.tenant };
    const sightings = await this.deps.store.findSeenSince({ since: new Date(now.getTime() - WORKER_WINDOW_MS), limit: MAX_LISTED, ...tenant });
    const held = await this.deps.jobs.findLeasedBy({ workerIds: sightings.map((s) => s.workerId), ...tenant });
    const byWorker = new Map<string, WorkerView['jobs']>();
    for (const { workerId, ...job } of held) byWorker.set(workerId, [...(byWorker.get(workerId) ?? []), job]);
    return sightings.map((s) => ({ ...s, jobs: byWorker.get(s.workerId) ?? [] }));
  }

  private forgetOld(now: number): void {
    for (const [workerId, entry] of this.written) if (now - entry.at > WORKER_WINDOW_MS) this.written.delete(workerId);
  }
}
