import { authorize } from '../auth/access';
import { InvalidStateError, NotFoundError, UnavailableError } from '../errors';
import { isTerminalStatus, type Job, type JobStatus } from '../model/job';
import type { Principal } from '../model/principal';
import type { Dependencies } from './dependencies';
import type { QueueDeps } from './queue-deps';
import type { ResultWaiters } from './result-waiters';

/** `GET /jobs/:jobId?wait=`: hold the answer until the job finishes, this long at most. */
export interface ResultWait {
  waitMs: number;
  /** Aborted when the caller goes away: the wait ends at once. */
  signal?: AbortSignal;
}

/** What a requeue made of the job: queued, or waiting on dependsOn parents that have not succeeded. */
export interface RequeueOutcome {
  jobId: string;
  status: Extract<JobStatus, 'queued' | 'waiting'>;
}

/** A job can change state only a few times in a row (queued → leased → queued ...) before a cancel wins. */
const MAX_CANCEL_ROUNDS = 10;

/** Reading a job, cancelling it, and an admin's requeue: the owner's and the operator's controls. */
export class JobControl {
  constructor(
    private readonly deps: Pick<QueueDeps, 'jobs' | 'events' | 'clock'>,
    private readonly dependencies: Dependencies,
    private readonly results: ResultWaiters,
  ) {}

  /**
   * Owner or admin; a non-admin learns nothing about jobs it did not create (403 either way). A
   * tenant token sees another tenant's job as if it did not exist. With `wait`, an unfinished job's
   * answer is held until it finishes or the wait is over — access is decided before any waiting.
   */
  async getJob(principal: Principal, jobId: string, wait?: ResultWait): Promise<Job> {
    const read = async (): Promise<Job> => authorize({ principal, kind: 'job', action: 'read', id: jobId, resource: await this.deps.jobs.findById(jobId) });
    const job = await read();
    if (!wait || wait.waitMs <= 0 || isTerminalStatus(job.status)) return job;
    // The wait is real time (a request's duration), not the injected clock.
    const outcome = await this.results.wait({ jobId, deadline: Date.now() + wait.waitMs, ...(wait.signal ? { signal: wait.signal } : {}) });
    // The caller is gone: nobody reads the answer.
    if (outcome === 'ended' && wait.signal?.aborted) return job;
    return read();
  }

  /**
   * Cancels a queued or waiting job at once; flags a leased one (its worker stops on the next
   * heartbeat, and every way out of the lease but success then ends it `cancelled`). The job may
   * change state while we look (a fail puts it back to `queued`, a reclaim, a lease), so the
   * read and conditional update are retried until the cancel is done, flagged, or the job is found
   * finished.
   */
  async cancel(principal: Principal, jobId: string): Promise<{ jobId: string; status: JobStatus }> {
    const read = async (): Promise<Job> => authorize({ principal, kind: 'job', action: 'write', id: jobId, resource: await this.deps.jobs.findById(jobId) });
    const { status } = await this.cancelRounds(jobId, read);
    return { jobId, status };
  }

  /**
   * A bulk cancel's step for one job: the same transitions and conditional updates as `cancel`,
   * starting from the job as the batch read it (an admin's, within `tenant`). `changed`: this call
   * cancelled or flagged it; null: it can no longer be cancelled (finished meanwhile, or past its
   * point of no return).
   */
  async cancelMatched(job: Job, tenant?: string): Promise<{ status: JobStatus; changed: boolean } | null> {
    const read = async (): Promise<Job> => {
      const current = await this.deps.jobs.findById(job.jobId);
      if (!current || (tenant !== undefined && current.tenant !== tenant)) throw new NotFoundError('job_not_found', `job ${job.jobId} does not exist`);
      return current;
    };
    try {
      return await this.cancelRounds(job.jobId, read, job);
    } catch (err) {
      if (err instanceof InvalidStateError || err instanceof NotFoundError) return null;
      throw err;
    }
  }

  private async cancelRounds(jobId: string, read: () => Promise<Job>, first?: Job): Promise<{ status: JobStatus; changed: boolean }> {
    const now = this.deps.clock.now();
    for (let round = 0; round < MAX_CANCEL_ROUNDS; round += 1) {
      const job = round === 0 && first ? first : await read();
      switch (job.status) {
        case 'queued':
        case 'waiting': {
          const cancelled = await this.deps.jobs.cancelQueued({ jobId, now });
          if (!cancelled) continue;
          this.deps.events.emit('cancelled', { jobId, type: job.type, from: job.status });
          await this.dependencies.settleChildren(cancelled, 'cancelled', now);
          return { status: 'cancelled', changed: true };
        }
        case 'leased': {
          // Its handler already did what cannot be undone (moved money): too late to cancel.
          if (job.irreversibleAt && !job.cancelRequested) throw new InvalidStateError('job has passed its point of no return and can no longer be cancelled');
          const flagged = await this.deps.jobs.requestCancel({ jobId, now });
          if (!flagged) continue;
          // The first acknowledgement's time is kept: ours only when it is now.
          const changed = flagged.cancelRequestedAt?.getTime() === now.getTime() && !job.cancelRequested;
          if (changed) this.deps.events.emit('cancel_requested', { jobId, type: job.type });
          return { status: 'leased', changed };
        }
        case 'cancelled':
          return { status: 'cancelled', changed: false };
        default:
          throw new InvalidStateError(`job is ${job.status} and can no longer be cancelled`);
      }
    }
    throw new UnavailableError('the job kept changing state while it was being cancelled; retry');
  }

  /**
   * failed, dlq or cancelled → queued now, with a fresh attempt budget (an admin's, within its
   * tenant). A job with dependsOn whose parents have not all succeeded goes back to `waiting` on
   * those instead (requeue them too): its parents' success releases it, as at enqueue.
   */
  async requeue(params: { jobId: string; tenant?: string | undefined }): Promise<RequeueOutcome> {
    const { jobId } = params;
    const now = this.deps.clock.now();
    const before = await this.deps.jobs.findById(jobId);
    if (!before || (params.tenant !== undefined && before.tenant !== params.tenant)) throw new NotFoundError('job_not_found', `job ${jobId} does not exist`);
    const pendingParents = await this.unsucceededParents(before);
    const requeued = await this.deps.jobs.requeue({ jobId, now, rearmCallback: before.callbackUrl !== null, pendingParents });
    if (!requeued) throw new InvalidStateError(`job is ${before.status}; only failed, dlq or cancelled jobs can be requeued`);
    this.deps.events.emit('requeued', { jobId, type: requeued.type, from: before.status, tenant: requeued.tenant });
    if (requeued.status !== 'waiting') return { jobId, status: 'queued' };
    // A parent that succeeded after the read above found the job not yet waiting, so it released
    // nothing: read them again now that the job waits (one of the two reads sees the other's write).
    const succeeded = (await this.deps.jobs.findByIds(pendingParents)).filter((p) => p.status === 'succeeded').map((p) => p.jobId);
    const released = succeeded.length > 0 && (await this.dependencies.releaseChild({ childId: jobId, succeededParents: succeeded, nextRunAt: now, now }));
    return { jobId, status: released ? 'queued' : 'waiting' };
  }

  /** Of a job's dependsOn, the parents that have not succeeded; a parent that no longer exists (retention) cannot say, so it is refused. */
  private async unsucceededParents(job: Job): Promise<string[]> {
    if (job.dependsOn.length === 0) return [];
    const parents = new Map((await this.deps.jobs.findByIds(job.dependsOn)).map((p) => [p.jobId, p]));
    const gone = job.dependsOn.filter((id) => !parents.has(id));
    if (gone.length > 0) throw new InvalidStateError(`job ${gone[0]!} it depends on no longer exists, so whether it succeeded is unknown; enqueue a new job instead`);
    return job.dependsOn.filter((id) => parents.get(id)!.status !== 'succeeded');
  }
}
