import { Schema, type Connection, type Model } from 'mongoose';

import { ROLES, type Role } from '../model/principal';
import { DEDUPE_MODES, JOB_STATUSES, type AttemptRecord, type Dedupe, type Job, type JobError, type ResultFile } from '../model/job';

/**
 * A job as stored: the model's Job with `_id` as the public jobId (so no second unique index is
 * needed) and the one field only storage needs. Nothing outside src/storage sees this type.
 */
/** A callback delivery as stored (its next attempt is the job's callbackDueAt). */
export interface StoredCallback {
  url: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastError: string | null;
  deliveredAt: Date | null;
  deliveryId: string;
}

export interface JobDocument extends Omit<Job, 'jobId' | 'tags' | 'files' | 'callbackUrl' | 'callback' | 'traceparent' | 'actsFor'> {
  /** Absent when the enqueue was not traced. */
  traceparent?: string | null;
  /** Absent unless the job acts for another principal than its creator (a schedule's jobs). */
  actsFor?: { sub: string; role: Role } | null;
  _id: string;
  /** Absent when the job has no tags (see the `tag_newest` index). */
  tags?: string[];
  /** Absent until a run uploads one. */
  files?: ResultFile[];
  /** Absent when the job has none. */
  callbackUrl?: string | null;
  /** Absent until a dispatcher first takes the delivery of a finished job up. */
  callback?: StoredCallback | null;
  /**
   * Present while a callback is owed: set (to the epoch) at enqueue for a job with a callbackUrl, so
   * whatever update finishes the job, the finished document itself says its callback is due: no
   * separate record (and no crash window between the two). A dispatcher moves it forward to lease an
   * attempt, to the next retry after a failure, and removes it once delivered or given up.
   */
  callbackDueAt?: Date;
  /** The dispatcher attempt in flight (its outcome is written only while this is still its lease). */
  callbackLeaseId?: string;
  /**
   * `<tenant>/<role>:<sub>/<type>:<idempotencyKey>`, absent (not null) when there is no key: a sparse
   * unique index then enforces "unique when present" (partial indexes act as plain unique ones on the
   * test server).
   */
  dedupeKey?: string;
  /**
   * Dedupe `active`: `<tenant>/<type>:<key>` while the job is unfinished (waiting, queued, leased),
   * $unset by every transition to a finished status. Sparse unique: at most one unfinished job per key.
   */
  activeKey?: string;
  /**
   * Dedupe `debounce`: `<tenant>/<type>:<key>` while the job is queued and has never been leased
   * ($unset by its first claim, or a cancel). Sparse unique: at most one such job per key.
   */
  debounceKey?: string;
}

const errorSchema = new Schema<JobError>({ code: String, message: { type: String, required: true } }, { _id: false });

const actsForSchema = new Schema<{ sub: string; role: Role }>({ sub: { type: String, required: true }, role: { type: String, enum: ROLES, required: true } }, { _id: false });

const dedupeSchema = new Schema<Dedupe>({ key: { type: String, required: true }, mode: { type: String, enum: DEDUPE_MODES, required: true }, seconds: Number }, { _id: false });

const attemptSchema = new Schema<AttemptRecord>(
  {
    attempt: Number,
    leaseId: String,
    workerId: String,
    leasedAt: Date,
    finishedAt: { type: Date, default: null },
    outcome: { type: String, default: null },
    error: { type: errorSchema, default: null },
  },
  { _id: false },
);

const resultFileSchema = new Schema<ResultFile>(
  { fileId: String, name: String, contentType: String, size: Number, createdAt: Date },
  { _id: false },
);

const callbackSchema = new Schema<StoredCallback>(
  { url: String, status: String, attempts: Number, lastError: { type: String, default: null }, deliveredAt: { type: Date, default: null }, deliveryId: String },
  { _id: false },
);

const jobSchema = new Schema<JobDocument>(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    status: { type: String, enum: JOB_STATUSES, required: true },
    priority: { type: Number, required: true },
    payload: { type: Schema.Types.Mixed },
    attempt: { type: Number, required: true },
    maxAttempts: { type: Number, required: true },
    nextRunAt: { type: Date, required: true },
    leaseId: { type: String, default: null },
    leaseExpiresAt: { type: Date, default: null },
    workerId: { type: String, default: null },
    slotId: { type: String, default: null },
    concurrencyKey: { type: String, default: null },
    keySlotId: { type: String, default: null },
    dedupe: { type: dedupeSchema, default: null },
    activeKey: { type: String },
    debounceKey: { type: String },
    checkpoint: { type: Schema.Types.Mixed, default: null },
    progress: { type: Number, default: 0 },
    result: { type: Schema.Types.Mixed, default: null },
    lastError: { type: errorSchema, default: null },
    attempts: { type: [attemptSchema], default: [] },
    cancelRequested: { type: Boolean, default: false },
    idempotencyKey: { type: String, default: null },
    dedupeKey: { type: String },
    tenant: { type: String, default: null },
    dependsOn: { type: [String], default: [] },
    pendingParents: { type: [String], default: [] },
    hasChildren: { type: Boolean, default: false },
    // Absent (not []) when the job has none, so the sparse `tags` index holds tagged jobs only.
    tags: { type: [String], default: undefined },
    files: { type: [resultFileSchema], default: undefined },
    callbackUrl: { type: String },
    traceparent: { type: String },
    actsFor: { type: actsForSchema, default: undefined },
    callback: { type: callbackSchema, default: undefined },
    callbackDueAt: { type: Date },
    callbackLeaseId: { type: String },
    partial: { type: Boolean, default: false },
    createdBy: { type: String, required: true },
    createdByRole: { type: String, default: null },
    cancelRequestedAt: { type: Date, default: null },
    irreversibleAt: { type: Date, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    startedAt: { type: Date, default: null },
    completedAt: { type: Date, default: null },
  },
  { collection: 'jobs', versionKey: false, minimize: false, strict: 'throw' },
);

// Equality, then sort, then range (ESR). The claim asks for status=queued (equality), sorts by
// priority desc and nextRunAt asc, and bounds nextRunAt (range, served by the same key).
jobSchema.index({ status: 1, priority: -1, nextRunAt: 1 }, { name: 'claim' });
jobSchema.index({ status: 1, type: 1, priority: -1, nextRunAt: 1 }, { name: 'claim_by_type' });
// Tenant tokens claim within their tenant: the tenant is one more equality field, first.
jobSchema.index({ tenant: 1, status: 1, priority: -1, nextRunAt: 1 }, { name: 'claim_by_tenant' });
// Children of a finished parent (multikey), so releasing them is no scan.
jobSchema.index({ dependsOn: 1, status: 1 }, { name: 'children' });
// The reclaim step: status=leased with an expired lease.
jobSchema.index({ status: 1, leaseExpiresAt: 1 }, { name: 'reclaim' });
jobSchema.index({ dedupeKey: 1 }, { name: 'dedupe', unique: true, sparse: true });
// Sparse, not partial: the test server treats a partial unique index as a plain one (TESTING.md).
jobSchema.index({ activeKey: 1 }, { name: 'dedupe_active', unique: true, sparse: true });
jobSchema.index({ debounceKey: 1 }, { name: 'dedupe_debounce', unique: true, sparse: true });
// Admin listings (newest first), optionally by status or creator, and the stats' oldest queued job.
jobSchema.index({ createdAt: -1 }, { name: 'newest' });
jobSchema.index({ status: 1, createdAt: -1 }, { name: 'status_newest' });
jobSchema.index({ createdBy: 1, createdAt: -1 }, { name: 'creator_newest' });
// Listings by tag (GET /jobs?tag=, the admin queue's tag filter, bulk actions): multikey on the tags,
// newest first within one tag, so a tag's page is a bounded index walk (the other tags asked for and
// the owner are checked on the way). Sparse: untagged jobs (the field absent) cost it nothing. The
// caller's own listing (GET /jobs without a tag) walks creator_newest: equality on createdBy, then
// createdAt in order, its role, tenant, status and type checked on the way.
jobSchema.index({ tags: 1, createdAt: -1 }, { name: 'tag_newest', sparse: true });
// Callbacks due: finished jobs (status equality, four ranges) whose callbackDueAt has come. Partial:
// only jobs with a callback owed are in it, so jobs without callbacks cost it nothing.
jobSchema.index({ status: 1, callbackDueAt: 1 }, { name: 'callbacks_due', partialFilterExpression: { callbackDueAt: { $exists: true } } });

export type JobModel = Model<JobDocument>;

export function jobModel(connection: Connection): JobModel {
  return (connection.models.Job as JobModel | undefined) ?? connection.model<JobDocument>('Job', jobSchema);
}

export async function ensureJobIndexes(connection: Connection): Promise<void> {
  await jobModel(connection).createIndexes();
}
