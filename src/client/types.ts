import type { z } from 'zod';

import type { bulkRequest, bulkResponse, pageMeta, queuePage, queueStats, requeueResponse, throughput, workerList } from '../contract/admin';
import type { asset, uploadReceipt } from '../contract/assets';
import type { errorBody } from '../contract/errors';
import type { escrow, escrowPage, escrowRequest } from '../contract/escrows';
import type {
  attemptRecord,
  batchEnqueueResponse,
  batchReportItem,
  batchReportRequest,
  batchReportResponse,
  snoozeRequest,
  snoozeResponse,
  enqueueRequest,
  enqueueResponse,
  failRequest,
  failResponse,
  heartbeatRequest,
  heartbeatResponse,
  jobDocument,
  jobStatus,
  jobStatusResponse,
  leasedJob,
  leaseResponse,
  resultFileReceipt,
  succeedRequest,
} from '../contract/jobs';
import type { health, principal, ready } from '../contract/operations';
import type { createScheduleRequest, schedule, scheduleList, updateScheduleRequest } from '../contract/schedules';
import type { jobTypeEntry, jobTypeList, updateJobTypeRequest } from '../contract/type-settings';
import type { JOB_TYPES } from '../jobs/job-types';
import type { ImageContentType } from '../model/asset';

/**
 * Shapes of the jobs API as seen on the wire (dates are ISO-8601 strings), read from the contract's
 * schemas (src/contract): what a request may carry is their input type, what an answer carries
 * their output type. Type-only imports: the client carries no schema code (packages/client ships
 * these declarations, and zod for their types).
 */

// ---- Job types ---------------------------------------------------------------------------------

type JobTypeDefinitions = (typeof JOB_TYPES)[number];

/** A registered job type (src/jobs/job-types.ts): a misspelt one does not compile. */
export type JobType = JobTypeDefinitions['name'];

/** The payload a job of type `T` is enqueued with: its type's zod schema's input. */
export type PayloadOf<T extends JobType> = z.input<Extract<JobTypeDefinitions, { name: T }>['payload']>;

/** The payload as the API parsed and stored it (what a worker leases): the schema's output. */
export type ParsedPayloadOf<T extends JobType> = z.output<Extract<JobTypeDefinitions, { name: T }>['payload']>;

// ---- Jobs --------------------------------------------------------------------------------------

export type JobStatus = z.output<typeof jobStatus>;

/** Everything an enqueue may carry besides its type and payload (priority, scheduleAt, dependsOn, ...). */
export type EnqueueOptions = Omit<z.input<typeof enqueueRequest>, 'type' | 'payload'>;

/**
 * One job to enqueue. With `T` a single type, its payload is that type's; without it, the union of
 * every type's request (what a batch holds), so each item is checked against its own type.
 */
export type EnqueueRequest<T extends JobType = JobType> = T extends JobType ? EnqueueOptions & { type: T; payload: PayloadOf<T> } : never;

export type EnqueueResponse<T extends JobType = JobType> = Omit<z.output<typeof enqueueResponse>, 'type'> & {
  type: T;
  /** false when an earlier job was returned (HTTP 200): the same idempotency key, or a dedupe. */
  created: boolean;
};

export interface BatchEnqueueRequest {
  /** Up to 1,000 jobs, each judged on its own. */
  jobs: readonly EnqueueRequest[];
}
export type BatchEnqueueResponse = z.output<typeof batchEnqueueResponse>;

export type AttemptWire = z.output<typeof attemptRecord>;
/** A job document. `type` and `payload` stay wide: the API may hold types newer than this client. */
export type JobWire = z.output<typeof jobDocument>;
export type JobStatusResponse = z.output<typeof jobStatusResponse>;

// ---- Workers -----------------------------------------------------------------------------------

export type LeasedJobWire = z.output<typeof leasedJob>;
/** A leased job of one of the types asked for: its payload typed by its type. */
export type LeasedJob<T extends JobType = JobType> = T extends JobType ? Omit<LeasedJobWire, 'type' | 'payload'> & { type: T; payload: ParsedPayloadOf<T> } : never;

export type LeaseResponse = z.output<typeof leaseResponse>;
export type TypedLeaseResponse<T extends JobType> = Omit<LeaseResponse, 'jobs'> & { jobs: LeasedJob<T>[] };

export interface LeaseParams {
  /** 1-100 (default 1). */
  limit?: number;
  /** Long-poll: the API holds an empty answer up to this many seconds (0-30) until work arrives. */
  waitSeconds?: number;
  /** Ends a long-poll early. */
  signal?: AbortSignal;
}

export type HeartbeatRequest = z.input<typeof heartbeatRequest>;
export type HeartbeatResponse = z.output<typeof heartbeatResponse>;
export type SucceedRequest = z.input<typeof succeedRequest>;
export type FailRequest = z.input<typeof failRequest>;
export type FailResponse = z.output<typeof failResponse>;
export type SnoozeRequest = z.input<typeof snoozeRequest>;
export type SnoozeResponse = z.output<typeof snoozeResponse>;

/** One report of a batch (POST /jobs/reports): its outcome, and the body of that outcome's single endpoint. */
export type BatchReportItem = z.input<typeof batchReportItem>;
export type BatchReportRequest = z.input<typeof batchReportRequest>;
export type BatchReportResponse = z.output<typeof batchReportResponse>;

// ---- Admin -------------------------------------------------------------------------------------

export interface PageParams {
  /** 1-based (default 1); pages beyond the last answer an empty `data`. */
  page?: number;
  /** 1-100 (default 20). */
  per_page?: number;
}

/** `GET /jobs`: the caller's own jobs (an admin's: all). */
export interface OwnJobsQuery extends PageParams {
  status?: JobStatus | readonly JobStatus[];
  type?: JobType | readonly JobType[];
  /** Jobs carrying every one of these tags. */
  tag?: string | readonly string[];
}

export interface QueueQuery extends PageParams {
  status?: JobStatus | readonly JobStatus[];
  type?: JobType | readonly JobType[];
  /** Jobs carrying every one of these tags. */
  tag?: string | readonly string[];
  /** Jobs enqueued with this idempotency key (by any creator). */
  idempotencyKey?: string;
  /** The `sub` of the token that enqueued the jobs. */
  createdBy?: string;
  /** Inclusive. */
  createdFrom?: Date | string;
  /** Exclusive. */
  createdTo?: Date | string;
}

export type PageMeta = z.output<typeof pageMeta>;
export type QueuePage = z.output<typeof queuePage>;
export type QueueStats = z.output<typeof queueStats>;
export type Throughput = z.output<typeof throughput>;
export type RequeueResponse = z.output<typeof requeueResponse>;
export type BulkRequest = z.input<typeof bulkRequest>;
export type BulkResponse = z.output<typeof bulkResponse>;
export type WorkerList = z.output<typeof workerList>;

// ---- Result files ------------------------------------------------------------------------------

export type ResultFileReceipt = z.output<typeof resultFileReceipt>;
export type ResultFileWire = JobWire['files'][number];

export interface ResultFileUpload {
  /** The lease the upload is made under (the caller must hold it). */
  leaseId: string;
  /** 1-200 characters. */
  name: string;
  /** Default application/octet-stream. */
  contentType?: string;
  /** The bytes; a stream (or async iterable) is sent as it is read, never held whole, and never retried. */
  body: Blob | ArrayBuffer | Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
}

export interface ResultFileContent {
  contentType: string;
  size: number;
  /** Streamed: read it (or cancel it) to release the connection. */
  body: ReadableStream<Uint8Array>;
}

/** A job type's effective policy, pause and counts (GET /admin/types). */
export type JobTypeEntry = z.output<typeof jobTypeEntry>;
export type JobTypeList = z.output<typeof jobTypeList>;
export type UpdateJobTypeRequest = z.input<typeof updateJobTypeRequest>;

// ---- Schedules ---------------------------------------------------------------------------------

export type CreateScheduleRequest<T extends JobType = JobType> = T extends JobType
  ? Omit<z.input<typeof createScheduleRequest>, 'type' | 'payload'> & { type: T; payload: PayloadOf<T> }
  : never;

type ScheduleTiming = Omit<z.input<typeof updateScheduleRequest>, 'type' | 'payload'>;
/**
 * A schedule edit (at least one field). A new `type` takes a payload of that type; a payload alone
 * must fit the schedule's current type (the API checks it).
 */
export type UpdateScheduleRequest<T extends JobType = JobType> = ScheduleTiming &
  ({ type: T; payload?: PayloadOf<T> } | { type?: undefined; payload?: PayloadOf<JobType> });

export type Schedule = z.output<typeof schedule>;
export type ScheduleList = z.output<typeof scheduleList>;

// ---- Escrows -----------------------------------------------------------------------------------

export type EscrowRequest = z.input<typeof escrowRequest>;
export type Escrow = z.output<typeof escrow>;
export type EscrowPage = z.output<typeof escrowPage>;

// ---- Assets ------------------------------------------------------------------------------------

export type { ImageContentType };

export interface UploadRequest {
  /** The image bytes; a stream is sent as it is read (and never retried). */
  body: Blob | ArrayBuffer | Uint8Array | ReadableStream<Uint8Array>;
  contentType: ImageContentType;
  filename?: string;
}
export type UploadReceipt = z.output<typeof uploadReceipt>;
export type AssetWire = z.output<typeof asset>;

export interface AssetContent {
  contentType: string;
  /** The version served (X-Asset-Version). */
  versionNumber: number;
  bytes: Uint8Array;
}

// ---- Operations --------------------------------------------------------------------------------

export type Health = z.output<typeof health>;
export type Ready = z.output<typeof ready>;
export type Principal = z.output<typeof principal>;

export type ErrorBody = z.output<typeof errorBody>;
