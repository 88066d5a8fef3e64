import type { z } from 'zod';

import type {
  attemptRecord,
  batchEnqueueRequest,
  batchReportItem,
  batchReportRequest,
  batchReportResponse,
  snoozeRequest,
  snoozeResponse,
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
  succeedRequest,
} from '../contract/jobs';
import type { errorBody } from '../contract/errors';
import type { jobTypeEntry, jobTypeList, updateJobTypeRequest } from '../contract/type-settings';

/**
 * Shapes of the jobs API as seen on the wire (dates are ISO-8601 strings), read from the contract's
 * schemas (src/contract): what a request may carry is their input type, what an answer carries
 * their output type. Type-only imports: the client carries no schema code.
 */

export type JobStatus = z.output<typeof jobStatus>;

export type EnqueueRequest = z.input<typeof enqueueRequest>;

export type EnqueueResponse = z.output<typeof enqueueResponse> & {
  /** false when an earlier job was returned (HTTP 200): the same idempotency key, or a dedupe. */
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

export type SnoozeRequest = z.input<typeof snoozeRequest>;
export type SnoozeResponse = z.output<typeof snoozeResponse>;

export type BatchReportItem = z.input<typeof batchReportItem>;
export type BatchReportRequest = z.input<typeof batchReportRequest>;
export type BatchReportResponse = z.output<typeof batchReportResponse>;

export type JobTypeEntry = z.output<typeof jobTypeEntry>;
export type JobTypeList = z.output<typeof jobTypeList>;
export type UpdateJobTypeRequest = z.input<typeof updateJobTypeRequest>;

export type AttemptWire = z.output<typeof attemptRecord>;
export type JobWire = z.output<typeof jobDocument>;

export type ErrorBody = z.output<typeof errorBody>;
