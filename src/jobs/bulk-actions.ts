import { ConflictError, InvalidStateError, NotFoundError } from '../errors';
import { CANCELLABLE_STATUSES, REQUEUEABLE_STATUSES, TERMINAL_STATUSES, type Job, type JobStatus } from '../model/job';
import type { JobListFilter, JobQueryRepository } from '../storage/job-query-repository';
import type { JobRepository } from '../storage/job-repository';
import type { ResultFileRepository } from '../storage/result-file-repository';
import type { JobService } from './job-service';

export const BULK_ACTIONS = ['requeue', 'cancel', 'delete'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];

/** The statuses each action applies to (as the single actions do). */
const APPLIES_TO: Record<BulkAction, readonly JobStatus[]> = {
  requeue: REQUEUEABLE_STATUSES,
  cancel: CANCELLABLE_STATUSES,
  delete: TERMINAL_STATUSES,
};

export type BulkFilter = Pick<JobListFilter, 'statuses' | 'types' | 'tags' | 'createdBy' | 'createdFrom' | 'createdTo'>;

export interface BulkOutcome {
  action: BulkAction;
  dryRun: boolean;
  /** Jobs matching the filter that the action applies to (when the call began). */
  matched: number;
  /** Jobs this call changed. */
  affected: number;
  /** false: the time budget ran out first; the rest still match, and the same call continues. */
  complete: boolean;
}

export interface BulkActionsDeps {
  queries: Pick<JobQueryRepository, 'countJobs' | 'findJobsAfter'>;
  jobs: Pick<JobService, 'requeue' | 'cancelMatched'>;
  store: Pick<JobRepository, 'deleteFinished'>;
  files: Pick<ResultFileRepository, 'deleteFilesOfJobs'>;
  /** Jobs read (and changed) per batch. */
  batchSize?: number;
  /** Single-job transitions in flight at once within a batch. */
  concurrency?: number;
  /** A call stops after the batch that passes this (real time), answering complete: false. */
  timeBudgetMs?: number;
}

/**
 * `POST /admin/jobs/bulk`: requeue, cancel or delete every job matching a filter, within the
 * caller's tenant. Each job goes through the same conditional update as its single action (requeue:
 * JobControl.requeue; cancel: JobControl's cancel rounds, so a job leased meanwhile is flagged rather
 * than lost, and one past its point of no return is left), in batches of `batchSize` read by id after
 * the last one, with a few transitions in flight at a time: no unbounded write, no cursor held across
 * batches, and a time budget per call so a request never runs long (the caller repeats it while
 * `complete` is false; what was done no longer matches). Knows nothing of HTTP.
 */
export class BulkActions {
  constructor(private readonly deps: BulkActionsDeps) {}

  async run(params: { action: BulkAction; filter: BulkFilter; dryRun: boolean; tenant?: string }): Promise<BulkOutcome> {
    const { action, dryRun } = params;
    const applicable = APPLIES_TO[action];
    const statuses = params.filter.statuses && params.filter.statuses.length > 0 ? params.filter.statuses.filter((s) => applicable.includes(s)) : [...applicable];
    const base = { action, dryRun };
    if (statuses.length === 0) return { ...base, matched: 0, affected: 0, complete: true };
    const filter: JobListFilter = { ...params.filter, statuses, ...(params.tenant === undefined ? {} : { tenant: params.tenant }) };
    const matched = await this.deps.queries.countJobs({ filter });
    if (dryRun || matched === 0) return { ...base, matched, affected: 0, complete: true };

    const batchSize = this.deps.batchSize ?? 500;
    const deadline = Date.now() + (this.deps.timeBudgetMs ?? 20_000);
    let affected = 0;
    let afterId: string | null = null;
    for (;;) {
      const batch = await this.deps.queries.findJobsAfter({ filter, afterId, limit: batchSize });
      if (batch.length === 0) return { ...base, matched, affected, complete: true };
      const done = await this.apply({ action, batch, tenant: params.tenant, deadline });
      affected += done.changed;
      afterId = batch[done.processed - 1]!.jobId;
      if (done.processed === batch.length && batch.length < batchSize) return { ...base, matched, affected, complete: true };
      if (Date.now() >= deadline) return { ...base, matched, affected, complete: false };
    }
  }

  /**
   * One batch, stopping early (between groups of `concurrency` jobs) once the deadline has passed:
   * returns how many of its jobs it went through and how many of those it changed.
   */
  private async apply(params: { action: BulkAction; batch: readonly Job[]; tenant: string | undefined; deadline: number }): Promise<{ processed: number; changed: number }> {
    const { action, batch, tenant } = params;
    if (action === 'delete') {
      const ids = batch.map((j) => j.jobId);
      // Files first, as retention does: a crash in between leaves a finished job without its files, never orphaned files.
      await this.deps.files.deleteFilesOfJobs(ids);
      return { processed: batch.length, changed: await this.deps.store.deleteFinished({ jobIds: ids, ...(tenant === undefined ? {} : { tenant }) }) };
    }
    const step = async (job: Job): Promise<boolean> => {
      if (action === 'cancel') {
        // Already asked to stop: nothing to change.
        if (job.status === 'leased' && job.cancelRequested) return false;
        return (await this.deps.jobs.cancelMatched(job, tenant))?.changed ?? false;
      }
      try {
        await this.deps.jobs.requeue(job.jobId, tenant);
        return true;
      } catch (err) {
        // It changed since the batch read it (requeued, deleted), or another unfinished job holds its
        // dedupe key: the single action refuses it too. Left as it is, it must not fail the whole call
        // (a repeat would meet it again, and the rest would never be requeued).
        if (err instanceof InvalidStateError || err instanceof NotFoundError || err instanceof ConflictError) return false;
        throw err;
      }
    };
    let changed = 0;
    let processed = 0;
    const concurrency = this.deps.concurrency ?? 16;
    while (processed < batch.length) {
      const group = batch.slice(processed, processed + concurrency);
      const results = await Promise.all(group.map(step));
      changed += results.filter(Boolean).length;
      processed += group.length;
      if (Date.now() >= params.deadline) break;
    }
    return { processed, changed };
  }
}
