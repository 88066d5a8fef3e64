import type mongoose from 'mongoose';
import type { Connection } from 'mongoose';

import type { Role } from '../model/principal';
import type { AttemptOutcome, Dedupe, Job, JobError, JobStatus, ResultFile } from '../model/job';
import type { HeldJob } from '../model/worker';
import { ConflictError } from '../errors';
import { operationBoundMs } from './connection';
import { isDuplicateKeyError } from './errors';
import { jobModel, type JobDocument, type JobModel } from './job-model';
import { throttleModel, type ThrottleModel } from './throttle-model';

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
  concurrencyKey?: string | null;
  /** How to deduplicate (active: via insert; throttle: insertThrottled; debounce: insertDebounced). */
  dedupe?: Dedupe | null;
  tags?: readonly string[];
  /** Checked by the enqueue use case against CALLBACK_ALLOWED_HOSTS. */
  callbackUrl?: string | null;
  traceparent?: string | null;
  /** Set only for a schedule's jobs: they act for the schedule's owner (see Job.actsFor). */
  actsFor?: { sub: string; role: Role } | null;
}

/** An insert's outcome: `created: false` returns an earlier job (an idempotency key, or a dedupe). */
export interface InsertResult {
  job: Job;
  created: boolean;
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
  /** The per-key slot (keyConcurrencyLimit) taken under the same lease id. */
  keySlotId?: string | null;
}

/** Where a failed report sends the job (computed by the domain from what it read). */
export interface FailNext {
  status: Extract<JobStatus, 'queued' | 'failed' | 'dlq' | 'cancelled'>;
  nextRunAt?: Date;
}

/** What a report does to the job it ends the lease of. */
export type ReportChange =
  | { outcome: 'succeeded'; result: unknown; partial: boolean }
  | { outcome: 'failed'; attempt: number; error: JobError; attemptOutcome: AttemptOutcome; next: FailNext }
  | { outcome: 'snoozed'; attempt: number; cancelled: boolean; nextRunAt: Date };

/** One report of a batch, as written: its own id marks the history entry it closes. */
export interface BatchReportWrite {
  jobId: string;
  holder: LeaseHolder & { leaseId: string };
  change: ReportChange;
  reportId: string;
}

/** What a batch report is judged on (read for the whole batch at once). */
export type ReportTarget = Pick<
  Job,
  'jobId' | 'type' | 'tenant' | 'status' | 'leaseId' | 'workerId' | 'attempt' | 'maxAttempts' | 'nextRunAt' | 'cancelRequested' | 'slotId' | 'keySlotId' | 'hasChildren'
>;

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
    concurrencyKey: doc.concurrencyKey ?? null,
    keySlotId: doc.keySlotId ?? null,
    dedupe: doc.dedupe ? { key: doc.dedupe.key, mode: doc.dedupe.mode, ...(typeof doc.dedupe.seconds === 'number' ? { seconds: doc.dedupe.seconds } : {}) } : null,
    checkpoint: doc.checkpoint ?? null,
    hasChildren: doc.hasChildren ?? false,
    tags: doc.tags ?? [],
    files: (doc.files ?? []).map((f) => ({ fileId: f.fileId, name: f.name, contentType: f.contentType, size: f.size, createdAt: f.createdAt })),
    callbackUrl: doc.callbackUrl ?? null,
    traceparent: doc.traceparent ?? null,
    callback: callbackOf(doc),
    createdBy: doc.createdBy,
    createdByRole: doc.createdByRole ?? null,
    actsFor: doc.actsFor ? { sub: doc.actsFor.sub, role: doc.actsFor.role } : null,
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

const CLEARED_LEASE = { leaseId: null, leaseExpiresAt: null, slotId: null, keySlotId: null };
/**
 * Every transition to a finished status $unsets these: the dedupe keys apply only while a job is
 * unfinished (active) or queued and never leased (debounce). Exported so any new way of finishing
 * jobs (bulk actions) unsets them too.
 */
export const FINISHED_UNSET = { activeKey: '', debounceKey: '' } as const;
const CANCELLED_WHILE_LEASED: JobError = { code: 'cancelled', message: 'cancelled while it ran' };

const SUCCEEDED_FIELDS = { _id: 1, type: 1, tenant: 1, attempt: 1, leaseId: 1, slotId: 1, keySlotId: 1, hasChildren: 1 } as const;
/** What `succeed` returns of the job as it was before: enough to free its slots and settle its children. */
export type SucceededJob = Pick<Job, 'jobId' | 'type' | 'tenant' | 'attempt' | 'leaseId' | 'slotId' | 'keySlotId' | 'hasChildren'>;

/** A waiting job that depends on a finished parent. */
export type WaitingChild = Pick<Job, 'jobId' | 'type' | 'tenant' | 'nextRunAt' | 'hasChildren'>;

/** What the reclaim step reads of an expired lease (its writes are conditional on these values). */
export type ExpiredLease = Pick<Job, 'jobId' | 'type' | 'tenant' | 'leaseId' | 'slotId' | 'keySlotId' | 'attempt' | 'maxAttempts' | 'hasChildren' | 'cancelRequested'>;

const EXPIRED_LEASE_FIELDS = { _id: 1, type: 1, tenant: 1, leaseId: 1, slotId: 1, keySlotId: 1, attempt: 1, maxAttempts: 1, hasChildren: 1, cancelRequested: 1 } as const;

const REPORT_TARGET_FIELDS = {
  _id: 1,
  type: 1,
  tenant: 1,
  status: 1,
  leaseId: 1,
  workerId: 1,
  attempt: 1,
  maxAttempts: 1,
  nextRunAt: 1,
  cancelRequested: 1,
  slotId: 1,
  keySlotId: 1,
  hasChildren: 1,
} as const;

/**
 * The one conditional update of each report (succeed, fail, snooze), for the single endpoints and
 * batches alike. Always conditional on the lease the caller holds; a failure and a snooze also on
 * the attempt and the cancel flag read (see `fail`). Every way out of a lease but `queued` again
 * unsets the dedupe keys (FINISHED_UNSET).
 */
function reportUpdate(params: { jobId: string; holder: LeaseHolder & { leaseId: string }; now: Date; change: ReportChange; reportId?: string }): {
  filter: Record<string, unknown>;
  update: Record<string, unknown>;
  arrayFilters: Record<string, unknown>[];
} {
  const { now, change } = params;
  const marker = params.reportId === undefined ? {} : { 'attempts.$[lease].reportId': params.reportId };
  const base = { _id: params.jobId, status: 'leased', ...holderFilter(params.holder) };
  const { arrayFilters } = leaseAttempt(params.holder.leaseId);
  if (change.outcome === 'succeeded') {
    return {
      filter: base,
      update: {
        $set: {
          ...CLEARED_LEASE,
          status: 'succeeded',
          result: change.result ?? null,
          partial: change.partial,
          progress: 100,
          completedAt: now,
          updatedAt: now,
          ...closeAttempt(now, 'succeeded', null),
          ...marker,
        },
        $unset: FINISHED_UNSET,
      },
      arrayFilters,
    };
  }
  if (change.outcome === 'snoozed') {
    const filter = { ...base, attempt: change.attempt, cancelRequested: change.cancelled ? true : { $ne: true } };
    if (change.cancelled) {
      return {
        filter,
        update: {
          $set: { ...CLEARED_LEASE, status: 'cancelled', lastError: CANCELLED_WHILE_LEASED, completedAt: now, updatedAt: now, ...closeAttempt(now, 'cancelled', null), ...marker },
          $unset: FINISHED_UNSET,
        },
        arrayFilters,
      };
    }
    return {
      filter,
      update: { $set: { ...CLEARED_LEASE, status: 'queued', attempt: change.attempt - 1, nextRunAt: change.nextRunAt, updatedAt: now, ...closeAttempt(now, 'snoozed', null), ...marker } },
      arrayFilters,
    };
  }
  const { next } = change;
  const terminal = next.status !== 'queued';
  const cancelled = next.status === 'cancelled';
  return {
    filter: { ...base, attempt: change.attempt, cancelRequested: cancelled ? true : { $ne: true } },
    update: {
      $set: {
        ...CLEARED_LEASE,
        status: next.status,
        lastError: cancelled ? CANCELLED_WHILE_LEASED : change.error,
        updatedAt: now,
        ...(next.nextRunAt ? { nextRunAt: next.nextRunAt } : {}),
        ...(terminal ? { completedAt: now } : {}),
        ...closeAttempt(now, change.attemptOutcome, change.error),
        ...marker,
      },
      ...(terminal ? { $unset: FINISHED_UNSET } : {}),
    },
    arrayFilters,
  };
}

function pickedJob<T extends { _id: string }>(doc: T): Omit<T, '_id'> & { jobId: string } {
  const { _id, ...rest } = doc;
  return { ...rest, jobId: _id };
}

/** The atomic operations on jobs. Every state change is one conditional update. */
export class JobRepository {
  private readonly jobs: JobModel;
  private readonly throttles: ThrottleModel;

  constructor(connection: Connection) {
    this.jobs = jobModel(connection);
    this.throttles = throttleModel(connection);
  }

  /**
   * Bounds each operation of the hot path (inserts, claims, reports) as a whole: see
   * operationBoundMs. Read at each use: a repository may be built before its connection is open.
   */
  private get bounded(): { timeoutMS: number } {
    return { timeoutMS: operationBoundMs(this.jobs.db) };
  }

  /** The driver's collection behind the model, typed with the stored shape. */
  private rawJobs(): mongoose.mongo.Collection<JobDocument> {
    return this.jobs.collection as unknown as mongoose.mongo.Collection<JobDocument>;
  }

  /**
   * Inserts a job; when its idempotency key was used before for the type, returns the first job
   * instead (`created: false`). With dedupe `active`, an unfinished job holding the key is returned
   * instead; one that finished in between frees the key, and the insert is tried again.
   */
  async insert(job: NewJob): Promise<InsertResult> {
    const doc = newJobDocument(job);
    for (let round = 0; ; round += 1) {
      try {
        await this.jobs.collection.insertOne(doc as unknown as Record<string, unknown>, this.bounded);
        return { job: toJob(doc), created: true };
      } catch (err) {
        if (!isDuplicateKeyError(err)) throw err;
        if (doc.dedupeKey !== undefined) {
          const existing = await this.jobs.findOne({ dedupeKey: doc.dedupeKey }).lean<JobDocument>();
          if (!existing) throw err;
          return { job: toJob(existing), created: false };
        }
        if (doc.activeKey === undefined || round >= MAX_DEDUPE_ROUNDS) throw err;
        const holder = await this.activeHolder(doc.activeKey);
        if (holder) return { job: holder, created: false };
      }
    }
  }

  /**
   * The unfinished job holding an `active` dedupe key, or null when none does any more. A finished
   * job found holding one (a way of finishing jobs that forgot to unset it) gives it up here, so a
   * stale key can never block its key for good.
   */
  private async activeHolder(activeKey: string): Promise<Job | null> {
    const holder = await this.jobs.findOne({ activeKey }).lean<JobDocument>();
    if (!holder) return null;
    if (['waiting', 'queued', 'leased'].includes(holder.status)) return toJob(holder);
    await this.jobs.updateOne({ _id: holder._id, activeKey, status: holder.status }, { $unset: { activeKey: '' } });
    return null;
  }

  /**
   * Dedupe `throttle`: the job created with this key less than `seconds` ago is returned
   * (`created: false`); otherwise `job` is created and starts the key's period. The period is taken
   * first (a conditional update of its document, or the insert of the first one) with the job's id
   * in it; then whoever inserts a job with that id first creates it. So a period never has two
   * jobs, and one whose creator crashed before inserting gets its job from the next caller.
   */
  async insertThrottled(job: NewJob & { dedupe: Dedupe & { seconds: number } }): Promise<InsertResult> {
    const scope = dedupeScope(job, job.dedupe.key);
    const until = new Date(job.now.getTime() + job.dedupe.seconds * 1000);
    for (let round = 0; round < MAX_DEDUPE_ROUNDS; round += 1) {
      const period = await this.throttles.findById(scope).lean<{ jobId: string; until: Date }>();
      if (period && period.until.getTime() > job.now.getTime()) {
        const existing = await this.findById(period.jobId);
        if (existing) return { job: existing, created: false };
        // Its creator has not inserted it yet (or crashed): insert it with that id; first one wins.
        return this.insertWithId({ ...job, jobId: period.jobId });
      }
      const taken = period
        ? await this.throttles.updateOne({ _id: scope, jobId: period.jobId, until: period.until }, { $set: { jobId: job.jobId, until } })
        : await this.throttles.collection.insertOne({ _id: scope, jobId: job.jobId, until } as unknown as Record<string, unknown>).then(
            () => ({ matchedCount: 1 }),
            (err: unknown) => {
              if (isDuplicateKeyError(err)) return { matchedCount: 0 };
              throw err;
            },
          );
      if (taken.matchedCount === 1) return this.insertWithId(job);
    }
    throw new ConflictError('the throttle period of this dedupe key kept changing; retry');
  }

  /** Inserts a job whose id another caller may insert too: the second gets the first's job. */
  private async insertWithId(job: NewJob): Promise<InsertResult> {
    try {
      await this.jobs.collection.insertOne(newJobDocument(job) as unknown as Record<string, unknown>, this.bounded);
      return { job: toJob(newJobDocument(job)), created: true };
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const existing = await this.findById(job.jobId);
      if (!existing) throw err;
      return { job: existing, created: false };
    }
  }

  /**
   * Dedupe `debounce`: a queued, never-leased job with this key gets the new payload and priority
   * and runs at `job.nextRunAt` (now + seconds) instead, and is returned (`created: false`);
   * otherwise `job` is created holding the key. The replacement is conditional on the job still
   * being queued with attempt 0, and its claim unsets the key, so a job being leased is never
   * changed under its worker: then a new job is created.
   */
  async insertDebounced(job: NewJob): Promise<InsertResult> {
    const debounceKey = dedupeScope(job, job.dedupe!.key);
    // payload, priority and tags are replaced (API.md), tags by none when the new enqueue has none
    // (stored only when there are some, as newJobDocument does).
    const fields = { payload: job.payload, priority: job.priority, nextRunAt: job.nextRunAt, updatedAt: job.now };
    const replacement = job.tags && job.tags.length > 0 ? { $set: { ...fields, tags: [...job.tags] } } : { $set: fields, $unset: { tags: '' } };
    for (let round = 0; round < MAX_DEDUPE_ROUNDS; round += 1) {
      const replaced = await this.jobs.findOneAndUpdate({ debounceKey, status: 'queued', attempt: 0 }, replacement, { new: true }).lean<JobDocument>();
      if (replaced) return { job: toJob(replaced), created: false };
      const holder = await this.jobs.findOne({ debounceKey }, { _id: 1, status: 1, attempt: 1 }).lean<Pick<JobDocument, '_id' | 'status' | 'attempt'>>();
      // A holder that is no longer queued-and-never-leased gives the key up (see FINISHED_UNSET).
      if (holder && !(holder.status === 'queued' && holder.attempt === 0)) {
        await this.jobs.updateOne({ _id: holder._id, debounceKey }, { $unset: { debounceKey: '' } });
        continue;
      }
      if (holder) continue;
      try {
        const doc = newJobDocument(job);
        await this.jobs.collection.insertOne(doc as unknown as Record<string, unknown>, this.bounded);
        return { job: toJob(doc), created: true };
      } catch (err) {
        if (!isDuplicateKeyError(err)) throw err;
      }
    }
    throw new ConflictError('the debounced job of this dedupe key kept changing; retry');
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
      await this.jobs.collection.insertMany(docs as unknown as Record<string, unknown>[], { ordered: false, ...this.bounded });
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
          { $set: { status: 'cancelled', lastError: params.error, completedAt: now, updatedAt: now }, $unset: FINISHED_UNSET },
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
    /** Per type, concurrency keys to leave out (keys at their keyConcurrencyLimit). */
    excludeKeys?: ReadonlyMap<string, ReadonlySet<string>>;
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

  /** Type and concurrency key of the jobs findAvailable would return (for the long-poll probe). */
  async findAvailableEntries(params: { types: readonly string[] | null; excludeTypes?: readonly string[]; now: Date; limit: number; tenant?: string }): Promise<{ type: string; concurrencyKey: string | null }[]> {
    const docs = await this.jobs
      .find(availableFilter(params), { _id: 0, type: 1, concurrencyKey: 1 })
      .sort({ priority: -1, nextRunAt: 1 })
      .limit(params.limit)
      .lean<{ type: string; concurrencyKey?: string | null }[]>();
    return docs.map((doc) => ({ type: doc.type, concurrencyKey: doc.concurrencyKey ?? null }));
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
      requests.map(({ candidate, leaseId, workerId, leaseExpiresAt, slotId, keySlotId }) => ({
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
              keySlotId: keySlotId ?? null,
              attempt: candidate.attempt + 1,
              progress: 0,
              updatedAt: now,
              startedAt: candidate.startedAt ?? now,
            },
            // Leased once, a debounced job takes no more replacements.
            $unset: { debounceKey: '' },
            $push: {
              attempts: {
                $each: [{ attempt: candidate.attempt + 1, leaseId, workerId, leasedAt: now, finishedAt: null, outcome: null, error: null }],
                $slice: -HISTORY_LIMIT,
              },
            },
          },
        },
      })),
      { ordered: false, ...this.bounded },
    );
    const won = (job: Job, request: ClaimRequest): Job => ({
      ...job,
      status: 'leased',
      leaseId: request.leaseId,
      workerId: request.workerId,
      leaseExpiresAt: request.leaseExpiresAt,
      slotId: request.slotId,
      keySlotId: request.keySlotId ?? null,
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
      keySlotId: doc.keySlotId ?? null,
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
            $unset: FINISHED_UNSET,
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
          ...(toDeadLetter ? { $unset: FINISHED_UNSET } : {}),
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
  async heartbeat(params: FinishParams & { leaseExpiresAt: Date; progress: number | undefined; irreversible?: boolean; checkpoint?: unknown }): Promise<Job | null> {
    const set: Record<string, unknown> = { leaseExpiresAt: params.leaseExpiresAt, updatedAt: params.now };
    if (params.progress !== undefined) set.progress = params.progress;
    if (params.checkpoint !== undefined) set.checkpoint = params.checkpoint;
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
    type Before = Omit<SucceededJob, 'jobId'> & { _id: string };
    const op = reportUpdate({ ...params, change: { outcome: 'succeeded', result: params.result, partial: params.partial } });
    // The driver's collection with a projection: one conditional update, and only the fields the
    // caller needs come back (the hot path of every job).
    const before = (await this.rawJobs().findOneAndUpdate(op.filter, op.update, {
      arrayFilters: op.arrayFilters,
      // The document before the update: the caller needs the slot it held.
      returnDocument: 'before',
      projection: SUCCEEDED_FIELDS,
      ...this.bounded,
    })) as Before | null;
    if (!before) return null;
    return { ...pickedJob(before), tenant: before.tenant ?? null, slotId: before.slotId ?? null, keySlotId: before.keySlotId ?? null, hasChildren: before.hasChildren ?? false };
  }

  /**
   * Ends the current lease with a failure. `next` says where the job goes; the update is
   * conditional on the lease, the attempt the caller computed `next` from, and the cancel flag it
   * read (`next.status === 'cancelled'` exactly when the flag was set): a cancel acknowledged after
   * the read makes this miss, and the caller reads again.
   */
  async fail(params: FinishParams & { attempt: number; error: JobError; outcome: AttemptOutcome; next: FailNext }): Promise<Job | null> {
    const op = reportUpdate({ ...params, change: { outcome: 'failed', attempt: params.attempt, error: params.error, attemptOutcome: params.outcome, next: params.next } });
    return orNull(await this.jobs.findOneAndUpdate(op.filter, op.update, { arrayFilters: op.arrayFilters, new: false }).lean<JobDocument>());
  }

  /**
   * The leaseholder puts the job back to `queued` at `nextRunAt`; the attempt does not count
   * (`attempt` returns to its value before this lease) and the history entry's outcome is
   * `snoozed`. Like `fail`, conditional on the lease, the attempt and the cancel flag read
   * (`cancelled` exactly when it was set): a flagged cancel wins, the job ends `cancelled`. The job
   * keeps an `active` dedupe key (it is still unfinished). Returns the job as it was before.
   */
  async snooze(params: FinishParams & { attempt: number; cancelled: boolean; nextRunAt: Date }): Promise<Job | null> {
    const op = reportUpdate({ ...params, change: { outcome: 'snoozed', attempt: params.attempt, cancelled: params.cancelled, nextRunAt: params.nextRunAt } });
    return orNull(await this.jobs.findOneAndUpdate(op.filter, op.update, { arrayFilters: op.arrayFilters, new: false }).lean<JobDocument>());
  }

  /** What batch reports need to judge each report before writing (one query for the whole batch). */
  async findReportTargets(jobIds: readonly string[]): Promise<Map<string, ReportTarget>> {
    if (jobIds.length === 0) return new Map();
    const docs = await this.rawJobs()
      .find({ _id: { $in: [...new Set(jobIds)] } }, { projection: REPORT_TARGET_FIELDS, ...this.bounded })
      .toArray();
    return new Map(
      docs.map((doc) => [
        doc._id,
        {
          jobId: doc._id,
          type: doc.type,
          tenant: doc.tenant ?? null,
          status: doc.status,
          leaseId: doc.leaseId ?? null,
          workerId: doc.workerId ?? null,
          attempt: doc.attempt,
          maxAttempts: doc.maxAttempts,
          nextRunAt: doc.nextRunAt,
          cancelRequested: doc.cancelRequested ?? false,
          slotId: doc.slotId ?? null,
          keySlotId: doc.keySlotId ?? null,
          hasChildren: doc.hasChildren ?? false,
        },
      ]),
    );
  }

  /**
   * Applies many reports in ONE bulk write: each the same conditional update its single endpoint
   * makes, marked with its own report id in the lease's history entry. Returns the ids of the
   * reports that took effect; only when some missed (a race lost) does it read which.
   */
  async applyReports(params: { reports: readonly BatchReportWrite[]; now: Date }): Promise<Set<string>> {
    const { reports, now } = params;
    if (reports.length === 0) return new Set();
    const ops = reports.map((report) => reportUpdate({ ...report, now }));
    const result = await this.rawJobs().bulkWrite(
      ops.map((op) => ({ updateOne: { filter: op.filter, update: op.update, arrayFilters: op.arrayFilters } })),
      { ordered: false, ...this.bounded },
    );
    if (result.matchedCount === reports.length) return new Set(reports.map((r) => r.reportId));
    const docs = await this.rawJobs()
      .find({ _id: { $in: reports.map((r) => r.jobId) } }, { projection: { _id: 1, attempts: 1 } })
      .toArray();
    const marked = new Set(docs.flatMap((doc) => (doc.attempts ?? []).flatMap((a) => ((a as { reportId?: string }).reportId ? [(a as { reportId?: string }).reportId!] : []))));
    return new Set(reports.map((r) => r.reportId).filter((id) => marked.has(id)));
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
          { $set: { status: 'cancelled', completedAt: now, updatedAt: now, lastError: { code: 'cancelled', message: 'cancelled before it ran' } }, $unset: FINISHED_UNSET },
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
   * failed/dlq/cancelled → queued with a fresh attempt budget; the history is kept. With
   * `pendingParents` (dependsOn parents that have not succeeded) → waiting on them instead, so it
   * never runs before they have. A job enqueued with dedupe `active` takes its key again: 409
   * `conflict` when another unfinished job holds it. `rearmCallback` (the job has a callbackUrl): its
   * next ending is notified again, under a new delivery (one still pending from the last ending is
   * replaced by it).
   */
  async requeue(params: { jobId: string; now: Date; rearmCallback?: boolean; pendingParents?: readonly string[] }): Promise<Job | null> {
    const { jobId, now } = params;
    const current = await this.jobs.findById(jobId, { _id: 1, type: 1, tenant: 1, dedupe: 1 }).lean<Pick<JobDocument, '_id' | 'type' | 'tenant' | 'dedupe'>>();
    const activeKey = current?.dedupe?.mode === 'active' ? dedupeScope({ tenant: current.tenant ?? null, type: current.type }, current.dedupe.key) : undefined;
    for (let round = 0; ; round += 1) {
      try {
        return await this.requeueOnce({
          jobId,
          now,
          pendingParents: params.pendingParents ?? [],
          ...(activeKey === undefined ? {} : { activeKey }),
          ...(params.rearmCallback ? { rearmCallback: true } : {}),
        });
      } catch (err) {
        if (activeKey === undefined || !isDuplicateKeyError(err)) throw err;
        if (round >= MAX_DEDUPE_ROUNDS || (await this.activeHolder(activeKey))) {
          throw new ConflictError(`another unfinished job holds its dedupe key "${current!.dedupe!.key}"; requeue it once that job has finished`);
        }
      }
    }
  }

  private async requeueOnce(params: { jobId: string; now: Date; pendingParents: readonly string[]; activeKey?: string; rearmCallback?: boolean }): Promise<Job | null> {
    const { jobId, now } = params;
    const requeued = await this.jobs
      .findOneAndUpdate(
        { _id: jobId, status: { $in: ['failed', 'dlq', 'cancelled'] } },
        {
          ...(params.rearmCallback ? { $unset: { callback: '', callbackLeaseId: '' } } : {}),
          $set: {
            ...(params.activeKey === undefined ? {} : { activeKey: params.activeKey }),
            ...(params.rearmCallback ? { callbackDueAt: CALLBACK_ARMED } : {}),
            ...CLEARED_LEASE,
            status: params.pendingParents.length > 0 ? 'waiting' : 'queued',
            pendingParents: [...params.pendingParents],
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

function availableFilter(params: {
  types: readonly string[] | null;
  excludeTypes?: readonly string[];
  excludeKeys?: ReadonlyMap<string, ReadonlySet<string>>;
  now: Date;
  tenant?: string;
}): Record<string, unknown> {
  const filter: Record<string, unknown> = { status: 'queued', nextRunAt: { $lte: params.now } };
  if (params.tenant !== undefined) filter.tenant = params.tenant;
  if (params.types) filter.type = params.types.length === 1 ? params.types[0] : { $in: params.types };
  else if (params.excludeTypes && params.excludeTypes.length > 0) filter.type = { $nin: params.excludeTypes };
  // Keys at their limit: a filter on top of the claim index's scan, so a busy key's backlog never
  // fills the candidates and holds back other keys.
  const keys = [...(params.excludeKeys ?? [])].filter(([, set]) => set.size > 0);
  if (keys.length > 0) filter.$nor = keys.map(([type, set]) => ({ type, concurrencyKey: { $in: [...set] } }));
  return filter;
}

/** The scope of a dedupe key: one type, one tenant (never the principal, unlike idempotency keys). */
function dedupeScope(job: { tenant: string | null; type: string }, key: string): string {
  return `${job.tenant ?? ''}/${job.type}:${key}`;
}

/** How often a dedupe enqueue retries after losing a race (the holder finished, the period moved...). */
const MAX_DEDUPE_ROUNDS = 10;

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
  const dedupe = job.dedupe ?? null;
  // A job created cancelled (a parent had failed) is finished from the start: it holds no key.
  const activeKey = dedupe?.mode === 'active' && status !== 'cancelled' ? dedupeScope(job, dedupe.key) : undefined;
  const debounceKey = dedupe?.mode === 'debounce' && status === 'queued' ? dedupeScope(job, dedupe.key) : undefined;
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
    concurrencyKey: job.concurrencyKey ?? null,
    keySlotId: null,
    dedupe,
    ...(activeKey === undefined ? {} : { activeKey }),
    ...(debounceKey === undefined ? {} : { debounceKey }),
    checkpoint: null,
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
    ...(job.actsFor ? { actsFor: { sub: job.actsFor.sub, role: job.actsFor.role } } : {}),
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
