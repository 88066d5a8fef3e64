import type { CallbackDelivery } from './callback';
import type { Role } from './principal';

/**
 * Glossary
 * - job: one unit of work of a registered type, with a payload.
 * - lease: a worker's exclusive, time-limited claim on a job; identified by a lease id, fresh per lease.
 * - attempt: how many times the job has been leased since it was created (or last requeued).
 * - dead letter (`dlq`): a job whose attempts are used up; it waits for an admin to requeue it.
 */
/** `waiting`: the job depends on other jobs (dependsOn) that have not all succeeded yet. */
export const JOB_STATUSES = ['waiting', 'queued', 'leased', 'succeeded', 'failed', 'cancelled', 'dlq'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** The priority of a job enqueued without one (0–100, higher first). */
export const DEFAULT_PRIORITY = 50;

/** The most jobs one batch enqueue takes. */
export const MAX_ENQUEUE_BATCH = 1_000;

export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'dlq'];

export function isTerminalStatus(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Tags: labels a job is found by (`GET /jobs?tag=`), at most MAX_TAGS of TAG_PATTERN each. */
export const MAX_TAGS = 20;
export const TAG_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** An admin requeue takes a job from these back to `queued`. */
export const REQUEUEABLE_STATUSES = ['failed', 'dlq', 'cancelled'] as const satisfies readonly JobStatus[];

/** A cancel ends these at once (`waiting`, `queued`) or asks the worker to stop (`leased`). */
export const CANCELLABLE_STATUSES = ['waiting', 'queued', 'leased'] as const satisfies readonly JobStatus[];

/** `snoozed`: the worker put the job back for later; the attempt did not count. */
export const ATTEMPT_OUTCOMES = ['succeeded', 'failed', 'expired', 'cancelled', 'abandoned', 'snoozed'] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

/**
 * Dedupe modes (scope: one type, one tenant): `active` returns the unfinished job with the key;
 * `throttle` the job created with it less than `seconds` ago; `debounce` replaces a queued,
 * never-leased job's payload and pushes its run back by `seconds`.
 */
export const DEDUPE_MODES = ['active', 'throttle', 'debounce'] as const;
export type DedupeMode = (typeof DEDUPE_MODES)[number];

export interface Dedupe {
  key: string;
  mode: DedupeMode;
  /** Required for throttle and debounce; absent for active. */
  seconds?: number;
}

export interface JobError {
  code?: string;
  message: string;
}

export interface AttemptRecord {
  attempt: number;
  leaseId: string;
  workerId: string;
  leasedAt: Date;
  finishedAt: Date | null;
  outcome: AttemptOutcome | null;
  error: JobError | null;
}

/** A file a job's run uploaded (a report, an export), stored beside the job and deleted with it. */
export interface ResultFile {
  fileId: string;
  name: string;
  contentType: string;
  size: number;
  createdAt: Date;
}

/** The most result files one job may hold (its document lists them all). */
export const MAX_RESULT_FILES = 100;

/** A job as the domain sees it (a plain object; storage details stay in src/storage). */
export interface Job {
  jobId: string;
  type: string;
  status: JobStatus;
  priority: number;
  payload: unknown;
  attempt: number;
  maxAttempts: number;
  nextRunAt: Date;
  leaseId: string | null;
  leaseExpiresAt: Date | null;
  workerId: string | null;
  progress: number;
  result: unknown;
  lastError: JobError | null;
  attempts: AttemptRecord[];
  cancelRequested: boolean;
  idempotencyKey: string | null;
  /** The tenant of the token that created it; null when the token had no tenant claim. */
  tenant: string | null;
  /** Jobs that must succeed before this one runs. */
  dependsOn: string[];
  /** Of dependsOn, those that have not succeeded yet (empty unless `waiting`). */
  pendingParents: string[];
  /** Succeeded with some items failed: `result.partial` is true and `result.itemErrors` lists them. */
  partial: boolean;
  /** The concurrency slot the current lease holds, for types with a concurrencyLimit. */
  slotId: string | null;
  /** Jobs of a type with a keyConcurrencyLimit and the same key run at most that many at once. */
  concurrencyKey: string | null;
  /** The per-key slot the current lease holds (keyConcurrencyLimit). */
  keySlotId: string | null;
  /** How the enqueue that created it deduplicated (null: it did not). */
  dedupe: Dedupe | null;
  /** What the handler saved last (heartbeat `checkpoint`), handed to every later lease; null when none. */
  checkpoint: unknown;
  /** Set once another job depends on this one: only then does finishing it look for children. */
  hasChildren: boolean;
  /** Labels given at enqueue (`GET /jobs?tag=` finds the jobs carrying all the tags asked for). */
  tags: string[];
  /** Files its runs uploaded (POST /jobs/:jobId/files), oldest first. */
  files: ResultFile[];
  /** Where the outcome is POSTed when the job finishes (null: nowhere). */
  callbackUrl: string | null;
  /** The delivery of that POST, once the job has finished (null before, or without a callbackUrl). */
  callback: CallbackDelivery | null;
  /** The W3C trace context of the request that enqueued it (its runs are spans of that trace), or null. */
  traceparent: string | null;
  createdBy: string;
  /** The role of the token that created it (null on jobs stored before roles were). */
  createdByRole: Role | null;
  /**
   * Whose reach the job's work has when that is not its creator's: a schedule's jobs (created by
   * `schedule:<name>`) act for the schedule's owner. null: for the creator. The tenant is the job's.
   */
  actsFor: { sub: string; role: Role } | null;
  /** When a cancel of the running job was first acknowledged. */
  cancelRequestedAt: Date | null;
  /** When a run of the job passed its point of no return (heartbeat `irreversible`); a cancel is refused from then on. */
  irreversibleAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
}

/** What a worker receives for each leased job. */
export interface LeasedJob {
  jobId: string;
  type: string;
  payload: unknown;
  attempt: number;
  leaseId: string;
  leaseExpiresAt: Date;
  /** The checkpoint an earlier run saved (null when none), so a retried job resumes where it stopped. */
  checkpoint: unknown;
  /** The trace the job's run belongs to (see Job.traceparent). */
  traceparent: string | null;
  /** Who the job acts for: its handler works only on resources this principal may reach. */
  owner: JobOwner;
}

/** The principal a job acts for (src/auth/access.ts rule 4); `tenant` null when it has none. */
export interface JobOwner {
  sub: string;
  role: Role;
  tenant: string | null;
}
