import { inTenant } from '../auth/access';
import { LeaseConflictError, NotFoundError, ValidationError } from '../errors';
import type { Job, JobError, JobStatus } from '../model/job';
import type { Principal } from '../model/principal';
import type { LeaseHolder } from '../storage/job-repository';
import type { Dependencies } from './dependencies';
import type { QueueDeps } from './queue-deps';
import { retryDelayMs } from './retry-policy';

/** Whose report this is: the job, the worker process (X-Worker-Id) and, when sent, the lease. */
export interface ReportTarget {
  jobId: string;
  workerId: string;
  leaseId?: string;
  principal: Principal;
}

export interface HeartbeatAnswer {
  jobId: string;
  leaseExpiresAt: Date;
  cancelRequested: boolean;
}

export interface FailAnswer {
  jobId: string;
  status: JobStatus;
  attempt: number;
  nextRunAt: Date;
}

/**
 * Reports from the leaseholder: heartbeats (extend the lease, record progress, learn of a cancel),
 * success and failure. Every write is conditional on the lease the caller holds, so a worker whose
 * lease was reclaimed can never change the job again.
 */
export class Reporter {
  constructor(
    private readonly deps: QueueDeps,
    private readonly dependencies: Dependencies,
  ) {}

  async heartbeat(target: ReportTarget, params: { progress?: number | undefined; irreversible?: boolean | undefined } = {}): Promise<HeartbeatAnswer> {
    const now = this.deps.clock.now();
    const holder = await this.resolveHolder(target);
    const current = holder.job;
    const leaseExpiresAt = new Date(now.getTime() + this.deps.registry.policyOf(current.type).timeoutSeconds * 1000);
    const updated = await this.deps.jobs.heartbeat({
      jobId: target.jobId,
      holder: holder.filter,
      now,
      leaseExpiresAt,
      progress: params.progress,
      irreversible: params.irreversible === true,
    });
    if (!updated) throw new LeaseConflictError();
    // The job's lease is what counts (a slot is never taken while its job is leased); extending the
    // slot too just spares the next lease call a check.
    if (current.slotId) await this.deps.slots.extend({ slot: { slotId: current.slotId, leaseId: current.leaseId! }, expiresAt: leaseExpiresAt });
    return { jobId: updated.jobId, leaseExpiresAt, cancelRequested: updated.cancelRequested };
  }

  async succeed(target: ReportTarget, result: unknown, durationMs?: number): Promise<{ jobId: string; status: JobStatus }> {
    const now = this.deps.clock.now();
    // Workers send their lease id; without it the lease is looked up by worker id first.
    const holder = target.leaseId === undefined ? (await this.resolveHolder(target)).filter : { ...holderOf(target), leaseId: target.leaseId };
    const partial = isPartialResult(result);
    const before = await this.deps.jobs.succeed({ jobId: target.jobId, holder, now, result, partial });
    if (!before) return this.throwReportConflict(target);
    await this.releaseSlotOf(before);
    this.deps.events.emit('succeeded', { jobId: before.jobId, type: before.type, attempt: before.attempt, partial, ...(durationMs === undefined ? {} : { durationMs }) });
    await this.dependencies.settleChildren(before, 'succeeded', now);
    return { jobId: before.jobId, status: 'succeeded' };
  }

  async fail(target: ReportTarget, error: JobError & { retryable?: boolean }, durationMs?: number): Promise<FailAnswer> {
    const { registry, clock, random } = this.deps;
    const now = clock.now();
    const jobError: JobError = { message: error.message, ...(error.code === undefined ? {} : { code: error.code }) };
    // The update is conditional on the cancel flag read; a cancel acknowledged meanwhile makes it
    // miss, and the next round (which sees the flag) ends the job cancelled. The flag only ever goes
    // from unset to set while leased, so two rounds suffice.
    for (let round = 0; ; round += 1) {
      const { job, filter } = await this.resolveHolder(target);
      let next: { status: 'queued' | 'failed' | 'dlq' | 'cancelled'; nextRunAt?: Date };
      if (job.cancelRequested) next = { status: 'cancelled' };
      else if (error.retryable === false) next = { status: 'failed' };
      else if (job.attempt >= job.maxAttempts) next = { status: 'dlq' };
      else next = { status: 'queued', nextRunAt: new Date(now.getTime() + retryDelayMs(registry.policyOf(job.type), job.attempt, random)) };

      const before = await this.deps.jobs.fail({
        jobId: target.jobId,
        holder: filter,
        now,
        attempt: job.attempt,
        error: jobError,
        outcome: next.status === 'cancelled' ? 'cancelled' : 'failed',
        next,
      });
      if (!before) {
        if (round < 2) continue;
        throw new LeaseConflictError();
      }
      await this.releaseSlotOf(before);
      const base = { jobId: before.jobId, type: before.type, attempt: before.attempt, ...(durationMs === undefined ? {} : { durationMs }) };
      if (next.status === 'queued') this.deps.events.emit('retry_scheduled', { ...base, nextRunAt: next.nextRunAt! });
      else if (next.status === 'failed') this.deps.events.emit('failed', base);
      else if (next.status === 'dlq') this.deps.events.emit('dead_lettered', { ...base, reason: 'attempts_exhausted' });
      else this.deps.events.emit('cancelled', { jobId: before.jobId, type: before.type, from: 'leased' });
      if (next.status !== 'queued') await this.dependencies.settleChildren(before, next.status, now);
      return { jobId: before.jobId, status: next.status, attempt: before.attempt, nextRunAt: next.nextRunAt ?? before.nextRunAt };
    }
  }

  /** Reads the job and checks the caller holds its current lease (404 unknown job, 409 otherwise). */
  private async resolveHolder(target: ReportTarget): Promise<{ job: Job; filter: LeaseHolder & { leaseId: string } }> {
    const found = await this.deps.jobs.findById(target.jobId);
    const job = found && inTenant(target.principal, found) ? found : null;
    if (!job) throw new NotFoundError('job_not_found', `job ${target.jobId} does not exist`);
    const filter = holderOf(target);
    const holds =
      job.status === 'leased' &&
      (filter.leaseId === undefined || filter.leaseId === job.leaseId) &&
      (filter.workerId === undefined || filter.workerId === job.workerId);
    if (!holds) throw new LeaseConflictError();
    // From here on the lease read is the one every write is conditional on.
    return { job, filter: { ...filter, leaseId: job.leaseId! } };
  }

  private async releaseSlotOf(job: Pick<Job, 'slotId' | 'leaseId'>): Promise<void> {
    if (job.slotId && job.leaseId) await this.deps.slots.release([{ slotId: job.slotId, leaseId: job.leaseId }]);
  }

  private async throwReportConflict(target: ReportTarget): Promise<never> {
    const exists = await this.deps.jobs.findById(target.jobId);
    if (!exists || !inTenant(target.principal, exists)) throw new NotFoundError('job_not_found', `job ${target.jobId} does not exist`);
    throw new LeaseConflictError();
  }
}

/** Which lease a report must hold; a tenant token reports only on its tenant's jobs. */
export function holderOf(target: ReportTarget): LeaseHolder {
  const tenant = target.principal.tenant === undefined ? {} : { tenant: target.principal.tenant };
  // A worker must hold the lease under its own worker id; an admin may report with the lease id alone.
  if (target.leaseId !== undefined) {
    return target.principal.role === 'admin' ? { leaseId: target.leaseId, ...tenant } : { leaseId: target.leaseId, workerId: target.workerId, ...tenant };
  }
  return { workerId: target.workerId, ...tenant };
}

const MAX_ITEM_ERRORS = 1_000;

/**
 * A handler that finished with some items failed reports `result.partial: true` and
 * `result.itemErrors: [{ item, code?, message }]`; the job still succeeds, counted apart in stats.
 */
export function isPartialResult(result: unknown): boolean {
  if (typeof result !== 'object' || result === null || (result as { partial?: unknown }).partial !== true) return false;
  const itemErrors = (result as { itemErrors?: unknown }).itemErrors;
  const valid =
    Array.isArray(itemErrors) &&
    itemErrors.length <= MAX_ITEM_ERRORS &&
    itemErrors.every(
      (e: unknown) =>
        typeof e === 'object' &&
        e !== null &&
        ['string', 'number'].includes(typeof (e as { item?: unknown }).item) &&
        typeof (e as { message?: unknown }).message === 'string' &&
        ['undefined', 'string'].includes(typeof (e as { code?: unknown }).code),
    );
  if (!valid) {
    throw new ValidationError('a partial result needs itemErrors: [{ item, message, code? }]', [
      { field: 'body.result.itemErrors', message: `must be an array (at most ${MAX_ITEM_ERRORS}) of { item: string | number, message: string, code?: string }` },
    ]);
  }
  return true;
}
