import type { Logger } from '../logger';
import type { Principal } from '../model/principal';

/**
 * What a handler gets for one job. Handlers never write job state: they return a result or throw.
 * They must honour `signal` (aborted on timeout, cancellation or shutdown).
 */
export interface JobContext<Payload> {
  jobId: string;
  type: string;
  payload: Payload;
  /** 1 on the first run, 2 on the first retry, ... */
  attempt: number;
  /**
   * Whom the job acts for (its creator; a schedule's owner for a schedule's jobs): a handler works
   * only on resources this principal may reach (src/auth/access.ts `mayAccess`), and answers others
   * as missing ones. Undefined when the API is older and sends no owner: handlers then check nothing
   * beyond what the worker itself may reach, as before.
   */
  owner?: Principal;
  signal: AbortSignal;
  /** 0-100; sent with the next heartbeat. */
  reportProgress(percent: number): void;
  /**
   * Call right before work that cannot be undone (moving money). Resolves once the API has recorded
   * that this run passed its point of no return; if a cancel was requested first, the job is aborted
   * (`signal` fires) and this rejects, so the work never starts after an acknowledged cancel.
   */
  pointOfNoReturn(): Promise<void>;
  /**
   * What an earlier run of this job saved with `saveCheckpoint` (null when none): a retried job
   * resumes from here. After a save in this run, the value saved.
   */
  readonly checkpoint: unknown;
  /**
   * Saves how far the job got (any JSON, at most 64 KiB as text): sent with a heartbeat now, and
   * handed to every later lease of the job, so a run that crashes resumes from it. Rejects (and
   * aborts `signal`) if the lease was lost or a cancel was requested.
   */
  saveCheckpoint(value: unknown): Promise<void>;
  /**
   * Streams a result file (a report, an export) to the API under this run's lease; the job lists it
   * with a URL its owner downloads it from. The stream is read once, never held whole.
   */
  uploadFile(name: string, contentType: string, stream: AsyncIterable<Uint8Array> | Uint8Array): Promise<UploadedFile>;
  logger: Logger;
}

/** What `uploadFile` resolves with. */
export interface UploadedFile {
  fileId: string;
  name: string;
  contentType: string;
  size: number;
}

export type JobHandler<Payload = unknown, Result = unknown> = (context: JobContext<Payload>) => Promise<Result>;

export interface ItemError {
  /** Which item failed (an id, a file name, an index). */
  item: string | number;
  message: string;
  code?: string;
}

/**
 * Returned by a handler that finished its work but not for every item: the job still succeeds,
 * with `result.partial: true` and the failed items in `result.itemErrors`.
 */
export class PartialResult<Value extends Record<string, unknown> = Record<string, unknown>> {
  constructor(
    readonly value: Value,
    readonly itemErrors: readonly ItemError[],
  ) {}

  toJSON(): Record<string, unknown> {
    return { ...this.value, partial: true, itemErrors: this.itemErrors };
  }
}

/** Thrown by a handler when retrying cannot help (bad input, missing data): the job ends `failed`. */
export class PermanentJobError extends Error {
  constructor(
    message: string,
    readonly code = 'permanent_failure',
  ) {
    super(message);
    this.name = 'PermanentJobError';
  }
}

/**
 * Thrown by a handler to put the job back for later (a provider said "not now", a resource is
 * busy): it runs again after `seconds` (1–86400), and this run does not count as an attempt.
 */
export class SnoozeJobError extends Error {
  constructor(
    readonly seconds: number,
    message = `snoozed for ${seconds} s`,
  ) {
    super(message);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400) throw new RangeError(`SnoozeJobError: seconds must be a whole number from 1 to 86400, not ${seconds}`);
    this.name = 'SnoozeJobError';
  }
}

/** Thrown by a handler for a failure worth retrying, with a stable code for the attempt history. */
export class RetryableJobError extends Error {
  constructor(
    message: string,
    readonly code = 'retryable_failure',
  ) {
    super(message);
    this.name = 'RetryableJobError';
  }
}
