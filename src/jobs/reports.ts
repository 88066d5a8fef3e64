import { inTenant } from '../auth/access';
import { AppError, LeaseConflictError, NotFoundError, PayloadTooLargeError, UnavailableError, ValidationError } from '../errors';
import type { Job, JobError, JobStatus } from '../model/job';
import type { Principal } from '../model/principal';
import { randomHex } from '../random-hex';
import type { BatchReportWrite, FailNext, LeaseHolder, ReportChange, ReportTarget as StoredTarget } from '../storage/job-repository';
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

/** A checkpoint's JSON text may be at most this many bytes (API.md). */
export const MAX_CHECKPOINT_BYTES = 65_536;

export interface SnoozeAnswer {
  jobId: string;
  /** `cancelled` when a cancel had been requested: it wins over the snooze. */
  status: 'queued' | 'cancelled';
  attempt: number;
  nextRunAt: Date;
}

/** One report of a batch (POST /jobs/reports), as the single endpoint of its outcome takes it. */
export type BatchReport = { jobId: string; leaseId: string; durationMs?: number } & (
  | { outcome: 'succeeded'; result?: unknown }
  | { outcome: 'failed'; error: JobError & { retryable?: boolean } }
  | { outcome: 'snoozed'; seconds: number }
);

export type BatchReportResult = { jobId: string; status: JobStatus } | { jobId: string | null; error: AppError };

/** A report lost its race (a cancel flagged between the read and the write): judged again, this often. */
const BATCH_ROUNDS = 3;

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

  async heartbeat(target: ReportTarget, params: { progress?: number | undefined; irreversible?: boolean | undefined; checkpoint?: unknown } = {}): Promise<HeartbeatAnswer> {
    if (params.checkpoint !== undefined) checkCheckpointSize(params.checkpoint);
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
      ...(params.checkpoint === undefined ? {} : { checkpoint: params.checkpoint }),
    });
    if (!updated) throw new LeaseConflictError();
    // The job's lease is what counts (a slot is never taken while its job is leased); extending the
    // slot too just spares the next lease call a check.
    if (current.slotId) await this.deps.slots.extend({ slot: { slotId: current.slotId, leaseId: current.leaseId! }, expiresAt: leaseExpiresAt });
    if (current.keySlotId) await this.deps.keySlots.extend({ slot: { slotId: current.keySlotId, leaseId: current.leaseId! }, expiresAt: leaseExpiresAt });
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
      const next = failNext({ job, retryable: error.retryable, now, delayMs: () => retryDelayMs(registry.policyOf(job.type), job.attempt, random) });

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

  /**
   * Puts the job back to `queued` for `seconds` without spending the attempt. A cancel requested
   * meanwhile wins (the job ends `cancelled`): like a failure, the update is conditional on the flag
   * read, and a cancel acknowledged after the read makes the next round see it.
   */
  async snooze(target: ReportTarget, seconds: number, durationMs?: number): Promise<SnoozeAnswer> {
    const now = this.deps.clock.now();
    const nextRunAt = new Date(now.getTime() + seconds * 1000);
    for (let round = 0; ; round += 1) {
      const { job, filter } = await this.resolveHolder(target);
      const before = await this.deps.jobs.snooze({ jobId: target.jobId, holder: filter, now, attempt: job.attempt, cancelled: job.cancelRequested, nextRunAt });
      if (!before) {
        if (round < 2) continue;
        throw new LeaseConflictError();
      }
      await this.releaseSlotOf(before);
      if (job.cancelRequested) {
        this.deps.events.emit('cancelled', { jobId: before.jobId, type: before.type, from: 'leased' });
        await this.dependencies.settleChildren(before, 'cancelled', now);
        return { jobId: before.jobId, status: 'cancelled', attempt: before.attempt, nextRunAt: before.nextRunAt };
      }
      this.deps.events.emit('snoozed', { jobId: before.jobId, type: before.type, attempt: before.attempt - 1, nextRunAt, ...(durationMs === undefined ? {} : { durationMs }) });
      return { jobId: before.jobId, status: 'queued', attempt: before.attempt - 1, nextRunAt };
    }
  }

  /**
   * Many reports at once, each judged exactly as its single endpoint would judge it, in one read of
   * the jobs and ONE bulk write of the same conditional updates (then the slots in bulk). A report
   * that lost a race is judged again (a cancel flagged meanwhile wins, as for a single failure); one
   * bad report never fails another. Results come back in request order.
   */
  async reportBatch(params: { workerId: string; principal: Principal; reports: readonly (BatchReport | AppError)[] }): Promise<BatchReportResult[]> {
    const { registry, clock, random } = this.deps;
    const now = clock.now();
    const results: (BatchReportResult | undefined)[] = params.reports.map((r) => (r instanceof AppError ? { jobId: null, error: r } : undefined));
    let pending = params.reports.flatMap((r, index) => (r instanceof AppError ? [] : [{ index, report: r }]));
    // The first report of a job in the batch ends its lease: a later one of the same lease finds it gone.
    const claimedLeases = new Set<string>();
    const applied: { report: BatchReport; job: StoredTarget; change: ReportChange; status: JobStatus }[] = [];
    for (let round = 0; round < BATCH_ROUNDS && pending.length > 0; round += 1) {
      const targets = await this.deps.jobs.findReportTargets(pending.map((p) => p.report.jobId));
      const writes: (BatchReportWrite & { index: number; report: BatchReport; job: StoredTarget; status: JobStatus })[] = [];
      for (const { index, report } of pending) {
        const target: ReportTarget = { jobId: report.jobId, workerId: params.workerId, leaseId: report.leaseId, principal: params.principal };
        try {
          const job = targets.get(report.jobId);
          if (!job || !inTenant(params.principal, job)) throw new NotFoundError('job_not_found', `job ${report.jobId} does not exist`);
          const holder = { ...holderOf(target), leaseId: report.leaseId };
          const holds = job.status === 'leased' && job.leaseId === report.leaseId && (holder.workerId === undefined || holder.workerId === job.workerId);
          if (!holds || claimedLeases.has(report.leaseId)) throw new LeaseConflictError();
          const { change, status } = this.changeOf({ report, job, now, random, registry });
          claimedLeases.add(report.leaseId);
          writes.push({ index, report, job, status, jobId: report.jobId, holder, change, reportId: `report_${randomHex(9)}` });
        } catch (err) {
          if (!(err instanceof AppError) || err instanceof UnavailableError) throw err;
          results[index] = { jobId: report.jobId, error: err instanceof ValidationError ? inBatch(err, index) : err };
        }
      }
      const took = await this.deps.jobs.applyReports({ reports: writes, now });
      pending = [];
      for (const write of writes) {
        if (took.has(write.reportId)) {
          results[write.index] = { jobId: write.jobId, status: write.status };
          applied.push({ report: write.report, job: write.job, change: write.change, status: write.status });
        } else {
          // Read again next round: it may have been cancelled meanwhile (then it ends cancelled) or lost.
          claimedLeases.delete(write.report.leaseId);
          pending.push({ index: write.index, report: write.report });
        }
      }
    }
    for (const { index, report } of pending) results[index] = { jobId: report.jobId, error: new LeaseConflictError() };
    await this.finishApplied(applied, now);
    return results.map((r, i) => r ?? { jobId: null, error: new AppError('internal', `no outcome for report ${i}`) });
  }

  /** What a report does, judged as its single endpoint judges it (a ValidationError for a bad partial result). */
  private changeOf(params: { report: BatchReport; job: StoredTarget; now: Date; random: () => number; registry: QueueDeps['registry'] }): { change: ReportChange; status: JobStatus } {
    const { report, job, now } = params;
    if (report.outcome === 'succeeded') return { change: { outcome: 'succeeded', result: report.result, partial: isPartialResult(report.result) }, status: 'succeeded' };
    if (report.outcome === 'snoozed') {
      const change: ReportChange = { outcome: 'snoozed', attempt: job.attempt, cancelled: job.cancelRequested, nextRunAt: new Date(now.getTime() + report.seconds * 1000) };
      return { change, status: job.cancelRequested ? 'cancelled' : 'queued' };
    }
    const error: JobError = { message: report.error.message, ...(report.error.code === undefined ? {} : { code: report.error.code }) };
    const next = failNext({ job, retryable: report.error.retryable, now, delayMs: () => retryDelayMs(params.registry.policyOf(job.type), job.attempt, params.random) });
    return { change: { outcome: 'failed', attempt: job.attempt, error, attemptOutcome: next.status === 'cancelled' ? 'cancelled' : 'failed', next }, status: next.status };
  }

  /** The effects of applied batch reports: their slots freed in bulk, their events, their children settled. */
  private async finishApplied(applied: readonly { report: BatchReport; job: StoredTarget; change: ReportChange; status: JobStatus }[], now: Date): Promise<void> {
    if (applied.length === 0) return;
    await this.deps.slots.release(applied.flatMap(({ job }) => (job.slotId && job.leaseId ? [{ slotId: job.slotId, leaseId: job.leaseId }] : [])));
    await this.deps.keySlots.release(applied.flatMap(({ job }) => (job.keySlotId && job.leaseId ? [{ slotId: job.keySlotId, leaseId: job.leaseId }] : [])));
    for (const { report, job, change, status } of applied) {
      const base = { jobId: job.jobId, type: job.type, attempt: job.attempt, ...(report.durationMs === undefined ? {} : { durationMs: report.durationMs }) };
      if (status === 'cancelled') this.deps.events.emit('cancelled', { jobId: job.jobId, type: job.type, from: 'leased' });
      else if (change.outcome === 'succeeded') this.deps.events.emit('succeeded', { ...base, partial: change.partial });
      else if (change.outcome === 'snoozed') this.deps.events.emit('snoozed', { ...base, attempt: job.attempt - 1, nextRunAt: change.nextRunAt });
      else if (status === 'queued') this.deps.events.emit('retry_scheduled', { ...base, nextRunAt: change.next.nextRunAt! });
      else if (status === 'failed') this.deps.events.emit('failed', base);
      else if (status === 'dlq') this.deps.events.emit('dead_lettered', { ...base, reason: 'attempts_exhausted' });
      if (status !== 'queued') await this.dependencies.settleChildren(job, status, now);
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

  private async releaseSlotOf(job: Pick<Job, 'slotId' | 'keySlotId' | 'leaseId'>): Promise<void> {
    if (job.slotId && job.leaseId) await this.deps.slots.release([{ slotId: job.slotId, leaseId: job.leaseId }]);
    if (job.keySlotId && job.leaseId) await this.deps.keySlots.release([{ slotId: job.keySlotId, leaseId: job.leaseId }]);
  }

  private async throwReportConflict(target: ReportTarget): Promise<never> {
    const exists = await this.deps.jobs.findById(target.jobId);
    if (!exists || !inTenant(target.principal, exists)) throw new NotFoundError('job_not_found', `job ${target.jobId} does not exist`);
    throw new LeaseConflictError();
  }
}

/**
 * Where a failure sends the job: a cancel acknowledged wins (`cancelled`); the handler's verdict
 * `retryable: false` next (`failed`); attempts used up: `dlq`; else `queued` after the backoff.
 */
function failNext(params: { job: Pick<Job, 'cancelRequested' | 'attempt' | 'maxAttempts'>; retryable: boolean | undefined; now: Date; delayMs: () => number }): FailNext {
  const { job } = params;
  if (job.cancelRequested) return { status: 'cancelled' };
  if (params.retryable === false) return { status: 'failed' };
  if (job.attempt >= job.maxAttempts) return { status: 'dlq' };
  return { status: 'queued', nextRunAt: new Date(params.now.getTime() + params.delayMs()) };
}

/** A batch item's validation error names its fields within the batch (`body.reports.<i>.result...`). */
function inBatch(err: ValidationError, index: number): ValidationError {
  const details = (err.details as { field: string; message: string }[] | undefined)?.map((d) => ({ ...d, field: d.field.replace(/^body/, `body.reports.${index}`) }));
  return new ValidationError(err.message, details);
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

/** 413 for a checkpoint whose JSON text is over MAX_CHECKPOINT_BYTES. */
export function checkCheckpointSize(checkpoint: unknown): void {
  const bytes = Buffer.byteLength(JSON.stringify(checkpoint) ?? 'null');
  if (bytes > MAX_CHECKPOINT_BYTES) throw new PayloadTooLargeError(`checkpoint is ${bytes} bytes as JSON; at most ${MAX_CHECKPOINT_BYTES}`);
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
