import type mongoose from 'mongoose';
import type { Connection } from 'mongoose';

import type { Role } from '../model/principal';
import type { AttemptOutcome, Job, JobError, JobStatus, ResultFile } from '../model/job';
import type { HeldJob } from '../model/worker';
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
  tenant: string | null;
  createdBy: string;
  createdByRole: Role;
  now: Date;
  /** `waiting` when some parents have not succeeded; `cancelled` when one already ended badly. */
  status?: Extract<JobStatus, 'queued' | 'waiting' | 'cancelled'>;
  dependsOn?: string[];
  pendingParents?: string[];
  lastError?: JobError | null;
  tags?: readonly string[];
  /** Checked by the enqueue use case against CALLBACK_ALLOWED_HOSTS. */
  callbackUrl?: string | null;
  traceparent?: string | null;
}

/** Which lease a report must hold: the lease id when the worker sent it, else the worker id. */
export interface LeaseHolder {
  leaseId?: string;
  workerId?: string;
  /** A tenant token reports only on its tenant's jobs. */
  tenant?: string;
}

/** One job the claim step will try to take, with the values it read (the claim is conditional on them). */
export interface ClaimRequest {
  candidate: Job;
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
    tenant: doc.tenant ?? null,
    dependsOn: doc.dependsOn ?? [],
    pendingParents: doc.pendingParents ?? [],
    partial: doc.partial ?? false,
    slotId: doc.slotId ?? null,
    hasChildren: doc.hasChildren ?? false,
    tags: doc.tags ?? [],
    files: (doc.files ?? []).map((f) => ({ fileId: f.fileId, name: f.name, contentType: f.contentType, size: f.size, createdAt: f.createdAt })),
    callbackUrl: doc.callbackUrl ?? null,
    traceparent: doc.traceparent ?? null,
    callback: callbackOf(doc),
    createdBy: doc.createdBy,
    createdByRole: doc.createdByRole ?? null,
    cancelRequestedAt: doc.cancelRequestedAt ?? null,
    irreversibleAt: doc.irreversibleAt ?? null,
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
  if (holder.tenant !== undefined) filter.tenant = holder.tenant;
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
const CANCELLED_WHILE_LEASED: JobError = { code: 'cancelled', message: 'cancelled while it ran' };

const SUCCEEDED_FIELDS = { _id: 1, type: 1, tenant: 1, attempt: 1, leaseId: 1, slotId: 1, hasChildren: 1 } as const;
/** What `succeed` returns of the job as it was before: enough to free its slot and settle its children. */
export type SucceededJob = Pick<Job, 'jobId' | 'type' | 'tenant' | 'attempt' | 'leaseId' | 'slotId' | 'hasChildren'>;

/** A waiting job that depends on a finished parent. */
export type WaitingChild = Pick<Job, 'jobId' | 'type' | 'tenant' | 'nextRunAt' | 'hasChildren'>;

/** What the reclaim step reads of an expired lease (its writes are conditional on these values). */
export type ExpiredLease = Pick<Job, 'jobId' | 'type' | 'tenant' | 'leaseId' | 'slotId' | 'attempt' | 'maxAttempts' | 'hasChildren' | 'cancelRequested'>;

const EXPIRED_LEASE_FIELDS = { _id: 1, type: 1, tenant: 1, leaseId: 1, slotId: 1, attempt: 1, maxAttempts: 1, hasChildren: 1, cancelRequested: 1 } as const;

function pickedJob<T extends { _id: string }>(doc: T): Omit<T, '_id'> & { jobId: string } {
  const { _id, ...rest } = doc;
  return { ...rest, jobId: _id };
}

/** The atomic operations on jobs. Every state change is one conditional update. */
export class JobRepository {
  private readonly jobs: JobModel;

  constructor(connection: Connection) {
    this.jobs = jobModel(connection);
  }

  /** The driver's collection behind the model, typed with the stored shape. */
  private rawJobs(): mongoose.mongo.Collection<JobDocument> {
    return this.jobs.collection as unknown as mongoose.mongo.Collection<JobDocument>;
  }

  /**
   * Inserts a job; when its idempotency key was used before for the type, returns the first job
   * instead (`created: false`).
   */
  async insert(job: NewJob): Promise<{ job: Job; created: boolean }> {
    const doc = newJobDocument(job);
    try {
      await this.jobs.collection.insertOne(doc as unknown as Record<string, unknown>);
      return { job: toJob(doc), created: true };
    } catch (err) {
      if (doc.dedupeKey === undefined || !isDuplicateKeyError(err)) throw err;
      const existing = await this.jobs.findOne({ dedupeKey: doc.dedupeKey }).lean<JobDocument>();
      if (!existing) throw err;
      return { job: toJob(existing), created: false };
    }
  }

  /**
   * Inserts many jobs in one round trip. Jobs whose idempotency key was used before (or earlier in
   * the same batch) come back as the first job with `created: false` (one more query for those).
   */
  async insertMany(jobs: readonly NewJob[]): Promise<{ job: Job; created: boolean }[]> {
    if (jobs.length === 0) return [];
    const docs = jobs.map(newJobDocument);
    const duplicates = new Set<number>();
    try {
      await this.jobs.collection.insertMany(docs as unknown as Record<string, unknown>[], { ordered: false });
    } catch (err) {
      const writeErrors = (err as { writeErrors?: unknown }).writeErrors;
      const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
      if (list.length === 0) throw err;
      for (const writeError of list as { index: number; code?: number; err?: { code?: number } }[]) {
        const code = writeError.code ?? writeError.err?.code;
        if (code !== 11000 || docs[writeError.index]?.dedupeKey === undefined) throw err;
        duplicates.add(writeError.index);
      }
    }
    const keys = [...duplicates].map((i) => docs[i]!.dedupeKey!);
    const existing = keys.length === 0 ? [] : await this.jobs.find({ dedupeKey: { $in: keys } }).lean<JobDocument[]>();
    const byKey = new Map(existing.map((d) => [d.dedupeKey, d]));
    return docs.map((doc, i) => {
      if (!duplicates.has(i)) return { job: toJob(doc), created: true };
      const first = byKey.get(doc.dedupeKey);
      if (!first) throw new Error(`duplicate idempotency key ${String(doc.dedupeKey)} but no job holds it`);
      return { job: toJob(first), created: false };
    });
  }

  async findByIds(jobIds: readonly string[]): Promise<Job[]> {
    return (await this.jobs.find({ _id: { $in: jobIds } }).lean<JobDocument[]>()).map(toJob);
  }

  /** Marks jobs as parents, so that finishing them settles their children. */
  async markHasChildren(jobIds: readonly string[]): Promise<void> {
    await this.jobs.updateMany({ _id: { $in: jobIds }, hasChildren: false }, { $set: { hasChildren: true } });
  }

  /** Waiting jobs that depend on `parentId` (served by the `children` index). */
  async findWaitingChildren(parentId: string): Promise<WaitingChild[]> {
    const docs = await this.jobs
      .find({ dependsOn: parentId, status: 'waiting' }, { _id: 1, type: 1, tenant: 1, nextRunAt: 1, hasChildren: 1 })
      .lean<(Omit<WaitingChild, 'jobId'> & { _id: string })[]>();
    return docs.map((doc) => ({ ...pickedJob(doc), tenant: doc.tenant ?? null, hasChildren: doc.hasChildren ?? false }));
  }

  /**
   * Records that `parentIds` of a waiting job succeeded, then releases it to `queued` if none is
   * pending any more. Both steps are idempotent, so the parent's side and the child's own
   * enqueue-time check may both run them: exactly one release happens.
   */
  async settleParents(params: { childId: string; succeededParents: readonly string[]; now: Date; nextRunAt: Date }): Promise<Job | null> {
    const { childId, now } = params;
    if (params.succeededParents.length > 0) {
      await this.jobs.updateOne({ _id: childId, status: 'waiting' }, { $pull: { pendingParents: { $in: params.succeededParents } } });
    }
    return orNull(
      await this.jobs
        .findOneAndUpdate(
          { _id: childId, status: 'waiting', pendingParents: { $size: 0 } },
          { $set: { status: 'queued', nextRunAt: params.nextRunAt > now ? params.nextRunAt : now, updatedAt: now } },
          { new: true },
        )
        .lean<JobDocument>(),
    );
  }

  /** A waiting job whose parent ended badly is cancelled, with the reason. */
  async cancelWaiting(params: { childId: string; error: JobError; now: Date }): Promise<Job | null> {
    const { now } = params;
    return orNull(
      await this.jobs
        .findOneAndUpdate(
          { _id: params.childId, status: 'waiting' },
          { $set: { status: 'cancelled', lastError: params.error, completedAt: now, updatedAt: now } },
          { new: true },
        )
        .lean<JobDocument>(),
    );
  }

  /** Of these jobs, the ids of those that have finished (succeeded, failed, dlq, cancelled): one query, ids only. */
  async findFinishedAmong(jobIds: readonly string[]): Promise<string[]> {
    if (jobIds.length === 0) return [];
    const docs = await this.jobs
      .find({ _id: { $in: [...jobIds] }, status: { $in: ['succeeded', 'failed', 'dlq', 'cancelled'] } }, { _id: 1 })
      .lean<{ _id: string }[]>();
    return docs.map((d) => d._id);
  }

  /** The jobs these workers hold now (leased to them), within a tenant when one is given. */
  async findLeasedBy(params: { workerIds: readonly string[]; tenant?: string }): Promise<(HeldJob & { workerId: string })[]> {
    if (params.workerIds.length === 0) return [];
    const docs = await this.jobs
      .find(
        { status: 'leased', workerId: { $in: [...params.workerIds] }, ...(params.tenant === undefined ? {} : { tenant: params.tenant }) },
        { _id: 1, type: 1, attempt: 1, progress: 1, leaseExpiresAt: 1, workerId: 1 },
      )
      .sort({ leaseExpiresAt: 1 })
      .lean<Pick<JobDocument, '_id' | 'type' | 'attempt' | 'progress' | 'leaseExpiresAt' | 'workerId'>[]>();
    return docs.map((d) => ({ jobId: d._id, type: d.type, attempt: d.attempt, progress: d.progress ?? 0, leaseExpiresAt: d.leaseExpiresAt!, workerId: d.workerId! }));
  }

  async findById(jobId: string): Promise<Job | null> {
    return orNull(await this.jobs.findById(jobId).lean<JobDocument>());
  }

  /** Queued jobs that may run now, best first (priority desc, then nextRunAt asc). */
  async findAvailable(params: {
    types: readonly string[] | null;
    /** With `types: null`: every type but these (limited types with no free slot). */
    excludeTypes?: readonly string[];
    now: Date;
    limit: number;
    tenant?: string;
  }): Promise<Job[]> {
    return (await this.jobs.find(availableFilter(params)).sort({ priority: -1, nextRunAt: 1 }).limit(params.limit).lean<JobDocument[]>()).map(toJob);
  }

  /** The types of the jobs findAvailable would return, one per job (only the type is read). */
  async findAvailableTypes(params: { types: readonly string[] | null; excludeTypes?: readonly string[]; now: Date; limit: number; tenant?: string }): Promise<string[]> {
    const docs = await this.jobs
      .find(availableFilter(params), { _id: 0, type: 1 })
      .sort({ priority: -1, nextRunAt: 1 })
      .limit(params.limit)
      .lean<{ type: string }[]>();
    return docs.map((doc) => doc.type);
  }

  /** When the next queued job of the scope that is not due yet falls due (null: none is scheduled). */
  async findNextDueAt(params: { types: readonly string[] | null; excludeTypes?: readonly string[]; now: Date; tenant?: string }): Promise<Date | null> {
    const filter = { ...availableFilter(params), nextRunAt: { $gt: params.now } };
    const next = await this.jobs.findOne(filter, { _id: 0, nextRunAt: 1 }).sort({ nextRunAt: 1 }).lean<{ nextRunAt: Date }>();
    return next?.nextRunAt ?? null;
  }

  /**
   * Whether change streams here wait for changes: a replica set member's getMore blocks up to its
   * maxAwaitTimeMS, so an idle feed costs about one request per wait. (A standalone server has no
   * change streams; the test server has them with its oplog, but answers getMore at once.)
   */
  async supportsAwaitedChangeStreams(): Promise<boolean> {
    const db = this.jobs.db.db;
    if (!db) return false;
    const hello = await db.admin().command({ isMaster: 1 }).catch(() => null);
    return typeof hello?.setName === 'string';
  }

  /**
   * A feed of jobs made available by any writer (this and other API instances): inserted queued
   * jobs with their type and tenant, and jobs updated back to queued (type unknown without a read:
   * reported as null). Reopens with a backoff after errors; `onState` says whether it is live. On a
   * server whose getMore does not wait, it pauses between empty reads so it never spins.
   */
  openWorkFeed(params: {
    onWork: (change: { jobId: string; type: string | null; tenant: string | null }) => void;
    onState: (live: boolean) => void;
    maxAwaitMs?: number;
  }): { close(): Promise<void> } {
    const maxAwaitMs = params.maxAwaitMs ?? 10_000;
    let closed = false;
    let stream: mongoose.mongo.ChangeStream | undefined;
    const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());
    const pipeline = [
      {
        $match: {
          $or: [
            { operationType: 'insert', 'fullDocument.status': 'queued' },
            { operationType: 'update', 'updateDescription.updatedFields.status': 'queued' },
            // The test server reports an update's $set as fullDocument.
            { operationType: 'update', 'fullDocument.status': 'queued' },
          ],
        },
      },
    ];
    const run = async (): Promise<void> => {
      let backoffMs = 500;
      while (!closed) {
        try {
          stream = this.jobs.collection.watch(pipeline, { maxAwaitTimeMS: maxAwaitMs });
          let live = false;
          while (!closed) {
            const started = Date.now();
            const change = (await stream.tryNext()) as Record<string, unknown> | null;
            // Live once the server has opened the stream: watch() itself sends nothing, and a server
            // without change streams fails only this first read.
            if (!live && !closed) {
              live = true;
              params.onState(true);
            }
            if (change) {
              backoffMs = 500;
              params.onWork(workOf(change));
            } else if (Date.now() - started < 50) {
              await pause(100);
            }
          }
        } catch {
          params.onState(false);
          if (closed) break;
          await stream?.close().catch(() => undefined);
          await pause(backoffMs);
          backoffMs = Math.min(backoffMs * 2, 30_000);
        }
      }
    };
    const running = run();
    return {
      close: async () => {
        closed = true;
        params.onState(false);
        await stream?.close().catch(() => undefined);
        await running;
      },
    };
  }

  /**
   * Claims the requested jobs in one round trip: each update is conditional on the job still being
   * queued with the attempt count that was read, so a job goes to exactly one lease. Returns the
   * jobs this call won (a second round trip only when some claims lost a race).
   */
  async claim(params: { requests: readonly ClaimRequest[]; now: Date }): Promise<Job[]> {
    const { requests, now } = params;
    if (requests.length === 0) return [];
    // The driver's collection, not the model: Mongoose would cast every attempt record into a
    // subdocument and back on this hot path (measured in the bench profile).
    const result = await this.rawJobs().bulkWrite(
      requests.map(({ candidate, leaseId, workerId, leaseExpiresAt, slotId }) => ({
        updateOne: {
          // An acknowledged cancel is final: a flagged job is never leased again (the flag is only
          // ever cleared by an admin requeue).
          filter: { _id: candidate.jobId, status: 'queued', attempt: candidate.attempt, nextRunAt: { $lte: now }, cancelRequested: { $ne: true } },
          update: {
            $set: {
              status: 'leased',
              leaseId,
              workerId,
              leaseExpiresAt,
              slotId,
              attempt: candidate.attempt + 1,
              progress: 0,
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
    const won = (job: Job, request: ClaimRequest): Job => ({
      ...job,
      status: 'leased',
      leaseId: request.leaseId,
      workerId: request.workerId,
      leaseExpiresAt: request.leaseExpiresAt,
      slotId: request.slotId,
      attempt: request.candidate.attempt + 1,
      progress: 0,
      startedAt: request.candidate.startedAt ?? now,
      updatedAt: now,
    });
    if (result.matchedCount === requests.length) return requests.map((r) => won(r.candidate, r));
    const leaseIds = new Set(requests.map((r) => r.leaseId));
    const current = await this.jobs
      .find({ _id: { $in: requests.map((r) => r.candidate.jobId) } }, { _id: 1, leaseId: 1 })
      .lean<Pick<JobDocument, '_id' | 'leaseId'>[]>();
    const ours = new Set(current.filter((d) => d.leaseId !== null && leaseIds.has(d.leaseId)).map((d) => d._id));
    return requests.filter((r) => ours.has(r.candidate.jobId)).map((r) => won(r.candidate, r));
  }

  /** Leases that expired at `now` and were not reclaimed yet. */
  async findExpiredLeases(params: { now: Date; limit: number }): Promise<ExpiredLease[]> {
    const docs = await this.jobs
      .find({ status: 'leased', leaseExpiresAt: { $lte: params.now } }, EXPIRED_LEASE_FIELDS)
      .limit(params.limit)
      .lean<(Omit<ExpiredLease, 'jobId'> & { _id: string })[]>();
    return docs.map((doc) => ({
      ...pickedJob(doc),
      tenant: doc.tenant ?? null,
      slotId: doc.slotId ?? null,
      hasChildren: doc.hasChildren ?? false,
      cancelRequested: doc.cancelRequested ?? false,
    }));
  }

  /**
   * Ends an expired lease: `cancelled` when a cancel was acknowledged, else back to `queued`, or to
   * `dlq` when its attempts are used up. Conditional on the same lease still being current and
   * expired (so a heartbeat that won the race keeps it) and on the cancel flag read: a cancel that
   * lands between the read and the write makes the first update miss, and the second one honours it.
   */
  async reclaimLease(params: { lease: ExpiredLease; now: Date }): Promise<Job | null> {
    const { lease: job, now } = params;
    const expired = { _id: job.jobId, status: 'leased', leaseId: job.leaseId, leaseExpiresAt: { $lte: now } };
    const toDeadLetter = job.attempt >= job.maxAttempts;
    const error: JobError = { code: 'lease_expired', message: 'the lease expired before the worker reported' };
    const cancel = async (): Promise<Job | null> =>
      orNull(
        await this.jobs
        .findOneAndUpdate(
          { ...expired, cancelRequested: true },
          {
            $set: {
              ...CLEARED_LEASE,
              status: 'cancelled',
              lastError: CANCELLED_WHILE_LEASED,
              completedAt: now,
              updatedAt: now,
              ...closeAttempt(now, 'cancelled', error),
            },
          },
          { ...leaseAttempt(job.leaseId!), new: true },
        )
        .lean<JobDocument>(),
      );
    if (job.cancelRequested) return cancel();
    const returned = await this.jobs
      .findOneAndUpdate(
        { ...expired, cancelRequested: { $ne: true } },
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
    return returned ? toJob(returned) : cancel();
  }

  /**
   * Extends the lease. With `irreversible`, also records that the job passed a point of no return
   * (its handler is about to move money), but only while no cancel is requested; a cancel is in
   * turn refused once that is recorded. Both writes meet on this one document, so exactly one of
   * them comes first, and both callers learn which. Returns null when the caller does not hold the lease.
   */
  async heartbeat(params: FinishParams & { leaseExpiresAt: Date; progress: number | undefined; irreversible?: boolean }): Promise<Job | null> {
    const set: Record<string, unknown> = { leaseExpiresAt: params.leaseExpiresAt, updatedAt: params.now };
    if (params.progress !== undefined) set.progress = params.progress;
    const filter = { _id: params.jobId, status: 'leased', ...holderFilter(params.holder) };
    if (params.irreversible) {
      const marked = await this.jobs
        .findOneAndUpdate({ ...filter, cancelRequested: { $ne: true }, irreversibleAt: null }, { $set: { ...set, irreversibleAt: params.now } }, { new: true })
        .lean<JobDocument>();
      if (marked) return toJob(marked);
    }
    return orNull(await this.jobs.findOneAndUpdate(filter, { $set: set }, { new: true }).lean<JobDocument>());
  }

  async succeed(params: FinishParams & { result: unknown; partial: boolean }): Promise<SucceededJob | null> {
    const { now } = params;
    type Before = Omit<SucceededJob, 'jobId'> & { _id: string };
    // The driver's collection with a projection: one conditional update, and only the fields the
    // caller needs come back (the hot path of every job).
    const before = (await this.rawJobs().findOneAndUpdate(
        { _id: params.jobId, status: 'leased', ...holderFilter(params.holder) },
        {
          $set: {
            ...CLEARED_LEASE,
            status: 'succeeded',
            result: params.result ?? null,
            partial: params.partial,
            progress: 100,
            completedAt: now,
            updatedAt: now,
            ...closeAttempt(now, 'succeeded', null),
          },
        },
        // The document before the update: the caller needs the slot it held.
        { ...leaseAttempt(params.holder.leaseId), returnDocument: 'before', projection: SUCCEEDED_FIELDS },
      )) as Before | null;
    if (!before) return null;
    return { ...pickedJob(before), tenant: before.tenant ?? null, slotId: before.slotId ?? null, hasChildren: before.hasChildren ?? false };
  }

  /**
   * Ends the current lease with a failure. `next` says where the job goes; the update is
   * conditional on the lease, the attempt the caller computed `next` from, and the cancel flag it
   * read (`next.status === 'cancelled'` exactly when the flag was set): a cancel acknowledged after
   * the read makes this miss, and the caller reads again.
   */
  async fail(
    params: FinishParams & {
      attempt: number;
      error: JobError;
      outcome: AttemptOutcome;
      next: { status: Extract<JobStatus, 'queued' | 'failed' | 'dlq' | 'cancelled'>; nextRunAt?: Date };
    },
  ): Promise<Job | null> {
    const { now, next } = params;
    const terminal = next.status !== 'queued';
    const cancelled = next.status === 'cancelled';
    const before = await this.jobs
      .findOneAndUpdate(
        {
          _id: params.jobId,
          status: 'leased',
          attempt: params.attempt,
          cancelRequested: cancelled ? true : { $ne: true },
          ...holderFilter(params.holder),
        },
        {
          $set: {
            ...CLEARED_LEASE,
            status: next.status,
            lastError: cancelled ? CANCELLED_WHILE_LEASED : params.error,
            updatedAt: now,
            ...(next.nextRunAt ? { nextRunAt: next.nextRunAt } : {}),
            ...(terminal ? { completedAt: now } : {}),
            ...closeAttempt(now, params.outcome, params.error),
          },
        },
        { ...leaseAttempt(params.holder.leaseId), new: false },
      )
      .lean<JobDocument>();
    return orNull(before);
  }

  /**
   * Lists a stored result file on the job, conditional on the caller still holding the lease (as a
   * report is) and on the job holding fewer than `maxFiles`; null when either no longer holds.
   */
  async addResultFile(params: { jobId: string; holder: LeaseHolder & { leaseId: string }; file: ResultFile; maxFiles: number; now: Date }): Promise<Job | null> {
    return orNull(
      await this.jobs
        .findOneAndUpdate(
          { _id: params.jobId, status: 'leased', ...holderFilter(params.holder), [`files.${params.maxFiles - 1}`]: { $exists: false } },
          { $push: { files: params.file }, $set: { updatedAt: params.now } },
          { new: true },
        )
        .lean<JobDocument>(),
    );
  }

  /**
   * Deletes those of the jobs that are finished (succeeded, failed, cancelled, dlq) — never an
   * unfinished one, whatever it was when it was chosen — within the tenant when one is given.
   */
  async deleteFinished(params: { jobIds: readonly string[]; tenant?: string }): Promise<number> {
    if (params.jobIds.length === 0) return 0;
    const result = await this.jobs.deleteMany({
      _id: { $in: [...params.jobIds] },
      status: { $in: ['succeeded', 'failed', 'dlq', 'cancelled'] },
      ...(params.tenant === undefined ? {} : { tenant: params.tenant }),
    });
    return result.deletedCount;
  }

  /** Queued (or waiting) → cancelled, conditional on the job still being in that state. */
  async cancelQueued(params: { jobId: string; now: Date }): Promise<Job | null> {
    const { jobId, now } = params;
    return orNull(
      await this.jobs
        .findOneAndUpdate(
          { _id: jobId, status: { $in: ['queued', 'waiting'] } },
          { $set: { status: 'cancelled', completedAt: now, updatedAt: now, lastError: { code: 'cancelled', message: 'cancelled before it ran' } } },
          { new: true },
        )
        .lean<JobDocument>(),
    );
  }

  /**
   * Leased → cancelRequested (the worker learns of it on its next heartbeat), unless the job has
   * passed a point of no return (money may have moved): then nothing changes and null comes back.
   * The first acknowledgement's time is kept; a repeat finds the flag already set.
   */
  async requestCancel(params: { jobId: string; now: Date }): Promise<Job | null> {
    const { jobId, now } = params;
    const flagged = await this.jobs
      .findOneAndUpdate(
        { _id: jobId, status: 'leased', cancelRequested: { $ne: true }, irreversibleAt: null },
        { $set: { cancelRequested: true, cancelRequestedAt: now, updatedAt: now } },
        { new: true },
      )
      .lean<JobDocument>();
    return orNull(flagged ?? (await this.jobs.findOne({ _id: jobId, status: 'leased', cancelRequested: true }).lean<JobDocument>()));
  }

  /**
   * failed/dlq/cancelled → queued with a fresh attempt budget; the history is kept. `rearmCallback`
   * (the job has a callbackUrl): its next ending is notified again, under a new delivery (one still
   * pending from the last ending is replaced by it).
   */
  async requeue(params: { jobId: string; now: Date; rearmCallback?: boolean }): Promise<Job | null> {
    const { jobId, now } = params;
    const requeued = await this.jobs
      .findOneAndUpdate(
        { _id: jobId, status: { $in: ['failed', 'dlq', 'cancelled'] } },
        {
          ...(params.rearmCallback ? { $unset: { callback: '', callbackLeaseId: '' } } : {}),
          $set: {
            ...(params.rearmCallback ? { callbackDueAt: CALLBACK_ARMED } : {}),
            ...CLEARED_LEASE,
            status: 'queued',
            attempt: 0,
            nextRunAt: now,
            workerId: null,
            cancelRequested: false,
            cancelRequestedAt: null,
            completedAt: null,
            progress: 0,
            updatedAt: now,
          },
        },
        { new: true },
      )
      .lean<JobDocument>();
    return orNull(requeued);
  }
}

/** What a change event says about the job it concerns. */
function workOf(change: Record<string, unknown>): { jobId: string; type: string | null; tenant: string | null } {
  const key = change.documentKey as { _id?: unknown } | undefined;
  const doc = change.fullDocument as { _id?: unknown; type?: unknown; tenant?: unknown } | undefined;
  const jobId = String(key?._id ?? doc?._id ?? '');
  if (change.operationType !== 'insert' || typeof doc?.type !== 'string') return { jobId, type: null, tenant: null };
  return { jobId, type: doc.type, tenant: typeof doc.tenant === 'string' ? doc.tenant : null };
}

/** The epoch: callbackDueAt of a job whose callback is owed as soon as it finishes. */
export const CALLBACK_ARMED = new Date(0);

const FINISHED: ReadonlySet<string> = new Set(['succeeded', 'failed', 'dlq', 'cancelled']);

/**
 * The delivery as the job shows it: the stored one, or — for a finished job whose delivery no
 * dispatcher has taken up yet — pending with no attempt.
 */
function callbackOf(doc: JobDocument): Job['callback'] {
  const stored = doc.callback;
  if (stored) {
    const inFlight = doc.callbackLeaseId !== undefined && doc.callbackLeaseId !== null;
    return {
      url: stored.url,
      status: stored.status,
      attempts: stored.attempts,
      lastError: stored.lastError ?? null,
      deliveredAt: stored.deliveredAt ?? null,
      deliveryId: stored.deliveryId,
      nextAttemptAt: stored.status === 'pending' && !inFlight ? (doc.callbackDueAt ?? null) : null,
    };
  }
  if (!doc.callbackUrl || !doc.callbackDueAt || !FINISHED.has(doc.status)) return null;
  return { url: doc.callbackUrl, status: 'pending', attempts: 0, lastError: null, deliveredAt: null, deliveryId: null, nextAttemptAt: doc.completedAt ?? null };
}

function orNull(doc: JobDocument | null | undefined): Job | null {
  return doc ? toJob(doc) : null;
}

function availableFilter(params: { types: readonly string[] | null; excludeTypes?: readonly string[]; now: Date; tenant?: string }): Record<string, unknown> {
  const filter: Record<string, unknown> = { status: 'queued', nextRunAt: { $lte: params.now } };
  if (params.tenant !== undefined) filter.tenant = params.tenant;
  if (params.types) filter.type = params.types.length === 1 ? params.types[0] : { $in: params.types };
  else if (params.excludeTypes && params.excludeTypes.length > 0) filter.type = { $nin: params.excludeTypes };
  return filter;
}

/**
 * Idempotency keys are scoped by the creating principal (tenant, role, sub): another service reusing
 * a key gets a job of its own, never someone else's. The scheduler's subjects (`schedule:<name>`) are
 * refused in tokens, so its keys cannot be taken by a client.
 */
function idempotencyScope(job: Pick<NewJob, 'tenant' | 'createdBy' | 'createdByRole'>): string {
  return `${job.tenant ?? ''}/${job.createdByRole}:${job.createdBy}/`;
}

/** The stored form of a new job. */
function newJobDocument(job: NewJob): JobDocument {
  const dedupeKey = job.idempotencyKey === null ? undefined : idempotencyScope(job) + `${job.type}:${job.idempotencyKey}`;
  const status = job.status ?? 'queued';
  return {
    _id: job.jobId,
    type: job.type,
    status,
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
    lastError: job.lastError ?? null,
    attempts: [],
    cancelRequested: false,
    idempotencyKey: job.idempotencyKey,
    ...(dedupeKey === undefined ? {} : { dedupeKey }),
    tenant: job.tenant,
    dependsOn: job.dependsOn ?? [],
    pendingParents: job.pendingParents ?? [],
    hasChildren: false,
    ...(job.tags && job.tags.length > 0 ? { tags: [...job.tags] } : {}),
    // Owed from the moment the job finishes, whichever update finishes it (see JobDocument.callbackDueAt).
    ...(job.callbackUrl ? { callbackUrl: job.callbackUrl, callbackDueAt: CALLBACK_ARMED } : {}),
    ...(job.traceparent ? { traceparent: job.traceparent } : {}),
    partial: false,
    createdBy: job.createdBy,
    createdByRole: job.createdByRole,
    cancelRequestedAt: null,
    irreversibleAt: null,
    createdAt: job.now,
    updatedAt: job.now,
    startedAt: null,
    completedAt: status === 'cancelled' ? job.now : null,
  };
}
