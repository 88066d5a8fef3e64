import type { Connection } from 'mongoose';

import type { AttemptOutcome, Job, JobError, JobStatus } from '../jobs/job';
import { isDuplicateKeyError } from './errors';
import { jobModel, type JobDocument, type JobModel } from './job-model';

export interface NewJob {
  jobId: string;
  type: string;
  priority: number;
  payload: unknown;
  maxAttempts: number;
  nextRunAt: Date;
  idempotencyKey: string | null;
  createdBy: string;
  now: Date;
}

/** Which lease a report must hold: the lease id when the worker sent it, else the worker id. */
export interface LeaseHolder {
  leaseId?: string;
  workerId?: string;
}

/** One job the claim step will try to take, with the values it read (the claim is conditional on them). */
export interface ClaimRequest {
  candidate: JobDocument;
  leaseId: string;
  workerId: string;
  leaseExpiresAt: Date;
  slotId: string | null;
}

export interface FinishParams {
  jobId: string;
  holder: LeaseHolder & { leaseId: string };
  now: Date;
}

const HISTORY_LIMIT = 100;

export function toJob(doc: JobDocument): Job {
  return {
    jobId: doc._id,
    type: doc.type,
    status: doc.status,
    priority: doc.priority,
    payload: doc.payload,
    attempt: doc.attempt,
    maxAttempts: doc.maxAttempts,
    nextRunAt: doc.nextRunAt,
    leaseId: doc.leaseId ?? null,
    leaseExpiresAt: doc.leaseExpiresAt ?? null,
    workerId: doc.workerId ?? null,
    progress: doc.progress ?? 0,
    result: doc.result ?? null,
    lastError: doc.lastError ?? null,
    attempts: doc.attempts ?? [],
    cancelRequested: doc.cancelRequested ?? false,
    idempotencyKey: doc.idempotencyKey ?? null,
    createdBy: doc.createdBy,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    startedAt: doc.startedAt ?? null,
    completedAt: doc.completedAt ?? null,
  };
}

function holderFilter(holder: LeaseHolder): Record<string, string> {
  const filter: Record<string, string> = {};
  if (holder.leaseId !== undefined) filter.leaseId = holder.leaseId;
  if (holder.workerId !== undefined) filter.workerId = holder.workerId;
  return filter;
}

/**
 * Closes the attempt record of a lease. The record is picked by its lease id, a field the update
 * does not change: the test server re-evaluates array filters after each field it sets, so a
 * filter on `finishedAt: null` would stop matching after the first one.
 */
function closeAttempt(now: Date, outcome: AttemptOutcome, error: JobError | null): Record<string, unknown> {
  return {
    'attempts.$[lease].finishedAt': now,
    'attempts.$[lease].outcome': outcome,
    'attempts.$[lease].error': error,
  };
}
function leaseAttempt(leaseId: string): { arrayFilters: Record<string, unknown>[] } {
  return { arrayFilters: [{ 'lease.leaseId': leaseId }] };
}

const CLEARED_LEASE = { leaseId: null, leaseExpiresAt: null, slotId: null };

/** The atomic operations on jobs. Every state change is one conditional update. */
export class JobRepository {
  private readonly jobs: JobModel;

  constructor(connection: Connection) {
    this.jobs = jobModel(connection);
  }

  /**
   * Inserts a job; when its idempotency key was used before for the type, returns the first job
   * instead (`created: false`).
   */
  async insert(job: NewJob): Promise<{ job: Job; created: boolean }> {
    const dedupeKey = job.idempotencyKey === null ? undefined : `${job.type}:${job.idempotencyKey}`;
    const doc: JobDocument = {
      _id: job.jobId,
      type: job.type,
      status: 'queued',
      priority: job.priority,
      payload: job.payload,
      attempt: 0,
      maxAttempts: job.maxAttempts,
      nextRunAt: job.nextRunAt,
      leaseId: null,
      leaseExpiresAt: null,
      workerId: null,
      slotId: null,
      progress: 0,
      result: null,
      lastError: null,
      attempts: [],
      cancelRequested: false,
      idempotencyKey: job.idempotencyKey,
      ...(dedupeKey === undefined ? {} : { dedupeKey }),
      createdBy: job.createdBy,
      createdAt: job.now,
      updatedAt: job.now,
      startedAt: null,
      completedAt: null,
    };
    try {
      await this.jobs.collection.insertOne(doc as unknown as Record<string, unknown>);
      return { job: toJob(doc), created: true };
    } catch (err) {
      if (dedupeKey === undefined || !isDuplicateKeyError(err)) throw err;
      const existing = await this.jobs.findOne({ dedupeKey }).lean<JobDocument>();
      if (!existing) throw err;
      return { job: toJob(existing), created: false };
    }
  }

  async findById(jobId: string): Promise<JobDocument | null> {
    return this.jobs.findById(jobId).lean<JobDocument>();
  }

  /** Queued jobs that may run now, best first (priority desc, then nextRunAt asc). */
  async findAvailable(params: { types: readonly string[] | null; now: Date; limit: number }): Promise<JobDocument[]> {
    const filter: Record<string, unknown> = { status: 'queued', nextRunAt: { $lte: params.now } };
    if (params.types) filter.type = params.types.length === 1 ? params.types[0] : { $in: params.types };
    return this.jobs.find(filter).sort({ priority: -1, nextRunAt: 1 }).limit(params.limit).lean<JobDocument[]>();
  }

  /**
   * Claims the requested jobs in one round trip: each update is conditional on the job still being
   * queued with the attempt count that was read, so a job goes to exactly one lease. Returns the
   * jobs this call won (a second round trip only when some claims lost a race).
   */
  async claim(requests: readonly ClaimRequest[], now: Date): Promise<JobDocument[]> {
    if (requests.length === 0) return [];
    const result = await this.jobs.bulkWrite(
      requests.map(({ candidate, leaseId, workerId, leaseExpiresAt, slotId }) => ({
        updateOne: {
          filter: { _id: candidate._id, status: 'queued', attempt: candidate.attempt, nextRunAt: { $lte: now } },
          update: {
            $set: {
              status: 'leased',
              leaseId,
              workerId,
              leaseExpiresAt,
              slotId,
              attempt: candidate.attempt + 1,
              progress: 0,
              cancelRequested: false,
              updatedAt: now,
              startedAt: candidate.startedAt ?? now,
            },
            $push: {
              attempts: {
                $each: [{ attempt: candidate.attempt + 1, leaseId, workerId, leasedAt: now, finishedAt: null, outcome: null, error: null }],
                $slice: -HISTORY_LIMIT,
              },
            },
          },
        },
      })),
      { ordered: false },
    );
    const won = (doc: JobDocument, request: ClaimRequest): JobDocument => ({
      ...doc,
      status: 'leased',
      leaseId: request.leaseId,
      workerId: request.workerId,
      leaseExpiresAt: request.leaseExpiresAt,
      slotId: request.slotId,
      attempt: request.candidate.attempt + 1,
    });
    if (result.matchedCount === requests.length) return requests.map((r) => won(r.candidate, r));
    const leaseIds = new Set(requests.map((r) => r.leaseId));
    const current = await this.jobs
      .find({ _id: { $in: requests.map((r) => r.candidate._id) } }, { _id: 1, leaseId: 1 })
      .lean<Pick<JobDocument, '_id' | 'leaseId'>[]>();
    const ours = new Set(current.filter((d) => d.leaseId !== null && leaseIds.has(d.leaseId)).map((d) => d._id));
    return requests.filter((r) => ours.has(r.candidate._id)).map((r) => won(r.candidate, r));
  }

  /** Leases that expired at `now` and were not reclaimed yet. */
  async findExpiredLeases(now: Date, limit: number): Promise<JobDocument[]> {
    return this.jobs
      .find({ status: 'leased', leaseExpiresAt: { $lte: now } }, { _id: 1, type: 1, leaseId: 1, slotId: 1, attempt: 1, maxAttempts: 1 })
      .limit(limit)
      .lean<JobDocument[]>();
  }

  /**
   * Ends an expired lease: back to `queued`, or to `dlq` when its attempts are used up. Conditional
   * on the same lease still being current and expired, so a heartbeat that won the race keeps it.
   */
  async reclaimLease(params: { job: JobDocument; now: Date }): Promise<JobDocument | null> {
    const { job, now } = params;
    const toDeadLetter = job.attempt >= job.maxAttempts;
    const error: JobError = { code: 'lease_expired', message: 'the lease expired before the worker reported' };
    return this.jobs
      .findOneAndUpdate(
        { _id: job._id, status: 'leased', leaseId: job.leaseId, leaseExpiresAt: { $lte: now } },
        {
          $set: {
            ...CLEARED_LEASE,
            status: toDeadLetter ? 'dlq' : 'queued',
            nextRunAt: now,
            lastError: error,
            updatedAt: now,
            ...(toDeadLetter ? { completedAt: now } : {}),
            ...closeAttempt(now, 'expired', error),
          },
        },
        { ...leaseAttempt(job.leaseId!), new: true },
      )
      .lean<JobDocument>();
  }

  async heartbeat(params: FinishParams & { leaseExpiresAt: Date; progress: number | undefined }): Promise<JobDocument | null> {
    const set: Record<string, unknown> = { leaseExpiresAt: params.leaseExpiresAt, updatedAt: params.now };
    if (params.progress !== undefined) set.progress = params.progress;
    return this.jobs
      .findOneAndUpdate({ _id: params.jobId, status: 'leased', ...holderFilter(params.holder) }, { $set: set }, { new: true })
      .lean<JobDocument>();
  }

  async succeed(params: FinishParams & { result: unknown }): Promise<JobDocument | null> {
    const { now } = params;
    return this.jobs
      .findOneAndUpdate(
        { _id: params.jobId, status: 'leased', ...holderFilter(params.holder) },
        {
          $set: {
            ...CLEARED_LEASE,
            status: 'succeeded',
            result: params.result ?? null,
            progress: 100,
            completedAt: now,
            updatedAt: now,
            ...closeAttempt(now, 'succeeded', null),
          },
        },
        // Returns the document before the update: the caller needs the slot it held.
        { ...leaseAttempt(params.holder.leaseId), new: false },
      )
      .lean<JobDocument>();
  }

  /**
   * Ends the current lease with a failure. `next` says where the job goes; the update is
   * conditional on the lease (and the attempt the caller computed `next` from).
   */
  async fail(
    params: FinishParams & {
      attempt: number;
      error: JobError;
      outcome: AttemptOutcome;
      next: { status: Extract<JobStatus, 'queued' | 'failed' | 'dlq' | 'cancelled'>; nextRunAt?: Date };
    },
  ): Promise<JobDocument | null> {
    const { now, next } = params;
    const terminal = next.status !== 'queued';
    return this.jobs
      .findOneAndUpdate(
        { _id: params.jobId, status: 'leased', attempt: params.attempt, ...holderFilter(params.holder) },
        {
          $set: {
            ...CLEARED_LEASE,
            status: next.status,
            lastError: params.error,
            updatedAt: now,
            ...(next.nextRunAt ? { nextRunAt: next.nextRunAt } : {}),
            ...(terminal ? { completedAt: now } : {}),
            ...closeAttempt(now, params.outcome, params.error),
          },
        },
        { ...leaseAttempt(params.holder.leaseId), new: false },
      )
      .lean<JobDocument>();
  }

  /** Queued → cancelled, conditional on the job still being queued. */
  async cancelQueued(jobId: string, now: Date): Promise<JobDocument | null> {
    return this.jobs
      .findOneAndUpdate(
        { _id: jobId, status: 'queued' },
        { $set: { status: 'cancelled', completedAt: now, updatedAt: now, lastError: { code: 'cancelled', message: 'cancelled before it ran' } } },
        { new: true },
      )
      .lean<JobDocument>();
  }

  /** Leased → cancelRequested; the worker learns of it on its next heartbeat. */
  async requestCancel(jobId: string, now: Date): Promise<JobDocument | null> {
    return this.jobs
      .findOneAndUpdate({ _id: jobId, status: 'leased' }, { $set: { cancelRequested: true, updatedAt: now } }, { new: true })
      .lean<JobDocument>();
  }

  /** failed/dlq/cancelled → queued with a fresh attempt budget; the history is kept. */
  async requeue(jobId: string, now: Date): Promise<JobDocument | null> {
    return this.jobs
      .findOneAndUpdate(
        { _id: jobId, status: { $in: ['failed', 'dlq', 'cancelled'] } },
        {
          $set: {
            ...CLEARED_LEASE,
            status: 'queued',
            attempt: 0,
            nextRunAt: now,
            workerId: null,
            cancelRequested: false,
            completedAt: null,
            progress: 0,
            updatedAt: now,
          },
        },
        { new: true },
      )
      .lean<JobDocument>();
  }
}
