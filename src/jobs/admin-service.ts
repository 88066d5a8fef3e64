import { FINISHED_STATUSES, type JobListFilter, type JobQueryRepository } from '../storage/job-query-repository';
import { JOB_STATUSES, type Job, type JobStatus } from '../model/job';
import { type Clock } from '../model/clock';
import type { RequeueOutcome } from './job-control';
import type { JobService } from './job-service';
import type { JobRegistry } from './registry';

export type { JobListFilter } from '../storage/job-query-repository';

export type StatusCounts = Record<JobStatus, number>;

export interface QueueStats {
  totalJobs: number;
  statusCounts: StatusCounts;
  /**
   * How long the longest-waiting due job has been due: now − nextRunAt over jobs `queued` with
   * nextRunAt ≤ now; null when none is due. Jobs scheduled for later never count, so a job due in an
   * hour is no backlog.
   */
  oldestQueuedJobAgeMs: number | null;
  /** Every registered type (and any other type found in the collection), each with every status key. */
  byType: Record<string, StatusCounts>;
  oldestQueuedJobAgeMsByType: Record<string, number | null>;
  /** Of the queued jobs, those not due yet (a future scheduleAt, or waiting out a retry backoff). */
  scheduled: number;
  scheduledByType: Record<string, number>;
  /** Of the succeeded jobs, those that finished with a partial result (some items failed). */
  partialSucceeded: number;
  partialSucceededByType: Record<string, number>;
  /** The clock reading the ages were computed against. */
  generatedAt: Date;
}

export interface QueuePage {
  page: number;
  perPage: number;
  total: number;
  /** ceil(total / perPage): 0 when nothing matches. */
  totalPages: number;
  jobs: Job[];
}

export interface ThroughputBucket {
  /** Start of the UTC minute. */
  start: Date;
  succeeded: number;
  failed: number;
  dlq: number;
}

export interface Throughput {
  from: Date;
  to: Date;
  bucketSeconds: number;
  /** Oldest first; the last bucket is the current, partial minute. */
  buckets: ThroughputBucket[];
}

export interface AdminServiceDeps {
  queries: JobQueryRepository;
  jobs: Pick<JobService, 'requeue'>;
  registry: Pick<JobRegistry, 'typeNames'>;
  clock: Clock;
}

const MINUTE_MS = 60_000;

function zeroCounts(): StatusCounts {
  return Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as StatusCounts;
}

function isJobStatus(value: string): value is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(value);
}

/** The operator's use cases: list, count and chart the queue, and put a finished job back. Knows nothing of HTTP. */
export class AdminService {
  constructor(private readonly deps: AdminServiceDeps) {}

  async listQueue(params: { filter: JobListFilter; page: number; perPage: number }): Promise<QueuePage> {
    const { page, perPage } = params;
    const { total, jobs } = await this.deps.queries.listJobs({ filter: params.filter, skip: (page - 1) * perPage, limit: perPage });
    return { page, perPage, total, totalPages: Math.ceil(total / perPage), jobs };
  }

  /** `tenant`: counts only that tenant's jobs (a tenant token). */
  async stats(tenant?: string): Promise<QueueStats> {
    const now = this.deps.clock.now();
    const rows = await this.deps.queries.countByTypeAndStatus({ now, ...(tenant === undefined ? {} : { tenant }) });
    let partialSucceeded = 0;
    const partialByType = new Map<string, number>(this.deps.registry.typeNames().map((t) => [t, 0]));
    let scheduled = 0;
    const scheduledByType = new Map<string, number>(this.deps.registry.typeNames().map((t) => [t, 0]));
    const statusCounts = zeroCounts();
    const byType = new Map<string, StatusCounts>(this.deps.registry.typeNames().map((t) => [t, zeroCounts()]));
    const oldestByType = new Map<string, number | null>(this.deps.registry.typeNames().map((t) => [t, null]));
    let totalJobs = 0;
    for (const row of rows) {
      // A status outside the enum cannot be written through the model; skip rather than invent a key.
      if (!isJobStatus(row.status)) continue;
      totalJobs += row.count;
      statusCounts[row.status] += row.count;
      if (row.partial && row.status === 'succeeded') {
        partialSucceeded += row.count;
        partialByType.set(row.type, (partialByType.get(row.type) ?? 0) + row.count);
      }
      const counts = byType.get(row.type) ?? zeroCounts();
      counts[row.status] += row.count;
      byType.set(row.type, counts);
      if (!oldestByType.has(row.type)) oldestByType.set(row.type, null);
      if (!scheduledByType.has(row.type)) scheduledByType.set(row.type, 0);
      if (row.status === 'queued' && row.scheduled) {
        scheduled += row.count;
        scheduledByType.set(row.type, scheduledByType.get(row.type)! + row.count);
      } else if (row.status === 'queued' && row.earliestNextRunAt) {
        // Clamped at 0: a job that became due within the clock skew between servers is not "negative minutes" late.
        const age = Math.max(0, now.getTime() - row.earliestNextRunAt.getTime());
        oldestByType.set(row.type, Math.max(age, oldestByType.get(row.type) ?? 0));
      }
    }
    const ages = [...oldestByType.values()].filter((a): a is number => a !== null);
    return {
      totalJobs,
      statusCounts,
      oldestQueuedJobAgeMs: ages.length > 0 ? Math.max(...ages) : null,
      byType: Object.fromEntries([...byType].sort(([a], [b]) => a.localeCompare(b))),
      oldestQueuedJobAgeMsByType: Object.fromEntries([...oldestByType].sort(([a], [b]) => a.localeCompare(b))),
      scheduled,
      scheduledByType: Object.fromEntries([...scheduledByType].sort(([a], [b]) => a.localeCompare(b))),
      partialSucceeded,
      partialSucceededByType: Object.fromEntries([...partialByType].sort(([a], [b]) => a.localeCompare(b))),
      generatedAt: now,
    };
  }

  /** Jobs finished per minute over the last `minutes` minutes (the current minute included). */
  async throughput(minutes: number, tenant?: string): Promise<Throughput> {
    const now = this.deps.clock.now();
    const currentMinute = Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS;
    const from = new Date(currentMinute - (minutes - 1) * MINUTE_MS);
    const to = new Date(currentMinute + MINUTE_MS);
    const rows = await this.deps.queries.countCompletionsPerMinute({ from, to, ...(tenant === undefined ? {} : { tenant }) });
    const buckets: ThroughputBucket[] = Array.from({ length: minutes }, (_, i) => ({
      start: new Date(from.getTime() + i * MINUTE_MS),
      succeeded: 0,
      failed: 0,
      dlq: 0,
    }));
    for (const row of rows) {
      const bucket = buckets[Math.round((row.minute.getTime() - from.getTime()) / MINUTE_MS)];
      if (bucket && FINISHED_STATUSES.includes(row.status)) bucket[row.status] += row.count;
    }
    return { from, to, bucketSeconds: MINUTE_MS / 1000, buckets };
  }

  /** failed/dlq/cancelled → queued (404 job_not_found, 409 invalid_state otherwise). */
  requeue(jobId: string, tenant?: string): Promise<RequeueOutcome> {
    return this.deps.jobs.requeue(jobId, tenant);
  }
}
