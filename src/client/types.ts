import type { z } from 'zod';

import type {
  attemptRecord,
  batchEnqueueRequest,
  batchEnqueueResponse,
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
import type { errorBody } from '../contract/errors';
import type { bulkRequest, bulkResponse, ownJobsQuery, queuePage, workerList } from '../contract/admin';

/**
 * Shapes of the jobs API as seen on the wire (dates are ISO-8601 strings), read from the contract's
 * schemas (src/contract): what a request may carry is their input type, what an answer carries
 * their output type. Type-only imports: the client carries no schema code.
 */

export type JobStatus = z.output<typeof jobStatus>;

export type EnqueueRequest = z.input<typeof enqueueRequest>;

export type EnqueueResponse = z.output<typeof enqueueResponse> & {
  /** false when an earlier job with the same idempotency key was returned (HTTP 200). */
  created: boolean;
};

export type BatchEnqueueRequest = z.input<typeof batchEnqueueRequest>;
export type BatchEnqueueResponse = z.output<typeof batchEnqueueResponse>;

export type LeasedJobWire = z.output<typeof leasedJob>;
export type LeaseResponse = z.output<typeof leaseResponse>;

export type HeartbeatRequest = z.input<typeof heartbeatRequest>;
export type HeartbeatResponse = z.output<typeof heartbeatResponse>;

export type SucceedRequest = z.input<typeof succeedRequest>;
export type FailRequest = z.input<typeof failRequest>;
export type FailResponse = z.output<typeof failResponse>;
export type JobStatusResponse = z.output<typeof jobStatusResponse>;

export type AttemptWire = z.output<typeof attemptRecord>;
export type JobWire = z.output<typeof jobDocument>;

export type ErrorBody = z.output<typeof errorBody>;

export type ResultFileReceipt = z.output<typeof resultFileReceipt>;

/** `GET /jobs` query (values as the API reads them: comma lists as strings). */
export type ListJobsQuery = Partial<Record<keyof z.input<typeof ownJobsQuery>, string | number>>;
export type JobPage = z.output<typeof queuePage>;
export type BulkRequest = z.input<typeof bulkRequest>;
export type BulkResponse = z.output<typeof bulkResponse>;
export type WorkerList = z.output<typeof workerList>;
export type ResultFileWire = JobWire['files'][number];
