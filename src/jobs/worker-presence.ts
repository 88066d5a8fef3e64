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
  store: Pick<WorkerRepository, 'recordSeen' | 'findSeenSince'>;
  jobs: Pick<JobRepository, 'findLeasedBy'>;
  clock: Clock;
  logger?: Logger;
  intervalMs?: number;
}

/**
 * Who is working: each lease call and heartbeat says a worker process is alive. Kept cheap: this
 * instance writes a worker's sighting at most once per interval (10 s; sooner only when the types it
 * asks for change), fire-and-forget, so the lease path gains no wait and at most one small upsert per
 * worker per interval. The listing reads the sightings of the last five minutes and the jobs those
 * workers hold now, in two queries.
 */
export class WorkerPresence {
  private readonly written = new Map<string, { at: number; types: string }>();

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
    this.deps.store
      .recordSeen({
        workerId: params.workerId,
        types: params.types === undefined ? undefined : params.types === null ? null : [...params.types],
        tenant: params.tenant ?? null,
        at: now,
        call: params.call,
      })
      .catch((rawErr: unknown) => {
        // Presence is best effort: the next call writes again.
        this.written.delete(params.workerId);
        this.deps.logger?.warn({ err: coerceError(rawErr) }, 'could not record a worker sighting');
      });
  }

  /** The workers seen in the last five minutes, most recent first, with the jobs each holds now. */
  async list(params: { tenant?: string } = {}): Promise<WorkerView[]> {
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
