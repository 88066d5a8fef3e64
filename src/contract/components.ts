import type { z } from 'zod';

import { pageMeta, queuePage, queueStats, requeueResponse, statusCounts, throughput, throughputBucket } from './admin';
import { asset, assetVersion, uploadReceipt } from './assets';
import { errorBody, fieldError } from './errors';
import { escrow, escrowPage, escrowRequest } from './escrows';
import {
  attemptRecord,
  batchEnqueueRequest,
  batchEnqueueResponse,
  enqueueRequestByType,
  enqueueResponse,
  failRequest,
  failResponse,
  heartbeatRequest,
  heartbeatResponse,
  JOB_TYPE_SCHEMAS,
  jobDocument,
  jobError,
  jobStatus,
  jobStatusResponse,
  leasedJob,
  leaseResponse,
  batchReportItem,
  batchReportRequest,
  batchReportResponse,
  dedupeOption,
  snoozeRequest,
  snoozeResponse,
  succeedRequest,
} from './jobs';
import { jobTypeEntry, jobTypeList, rateLimit, typePolicy, updateJobTypeRequest } from './type-settings';
import { dashboardContract, health, principal, ready } from './operations';
import { createScheduleRequest, schedule, scheduleList, updateScheduleRequest } from './schedules';

/**
 * The shapes the OpenAPI document names (components.schemas), in the order it lists them. Every
 * other schema of the route table is inlined where it is used; a named one is a `$ref` wherever it
 * appears. Names that no operation reaches are left out of the document.
 */
export const COMPONENTS: readonly (readonly [name: string, schema: z.ZodType])[] = [
  ['Error', errorBody],
  ['FieldError', fieldError],
  ['JobStatus', jobStatus],
  ['JobError', jobError],
  ['AttemptRecord', attemptRecord],
  ['Job', jobDocument],
  ...JOB_TYPE_SCHEMAS.flatMap((t) => [[t.payloadId, t.payload] as const, [t.requestId, t.request] as const]),
  ['EnqueueRequest', enqueueRequestByType],
  ['EnqueueResponse', enqueueResponse],
  ['BatchEnqueueRequest', batchEnqueueRequest],
  ['BatchEnqueueResponse', batchEnqueueResponse],
  ['LeasedJob', leasedJob],
  ['LeaseResponse', leaseResponse],
  ['HeartbeatRequest', heartbeatRequest],
  ['HeartbeatResponse', heartbeatResponse],
  ['SucceedRequest', succeedRequest],
  ['FailRequest', failRequest],
  ['FailResponse', failResponse],
  ['JobStatusResponse', jobStatusResponse],
  ['SnoozeRequest', snoozeRequest],
  ['SnoozeResponse', snoozeResponse],
  ['BatchReportItem', batchReportItem],
  ['BatchReportRequest', batchReportRequest],
  ['BatchReportResponse', batchReportResponse],
  ['Dedupe', dedupeOption],
  ['RateLimit', rateLimit],
  ['TypePolicy', typePolicy],
  ['JobType', jobTypeEntry],
  ['JobTypeList', jobTypeList],
  ['UpdateJobTypeRequest', updateJobTypeRequest],
  ['PageMeta', pageMeta],
  ['QueuePage', queuePage],
  ['StatusCounts', statusCounts],
  ['QueueStats', queueStats],
  ['ThroughputBucket', throughputBucket],
  ['Throughput', throughput],
  ['RequeueResponse', requeueResponse],
  ['Schedule', schedule],
  ['ScheduleList', scheduleList],
  ['CreateScheduleRequest', createScheduleRequest],
  ['UpdateScheduleRequest', updateScheduleRequest],
  ['UploadReceipt', uploadReceipt],
  ['AssetVersion', assetVersion],
  ['Asset', asset],
  ['EscrowInput', escrowRequest],
  ['Escrow', escrow],
  ['EscrowPage', escrowPage],
  ['Principal', principal],
  ['Health', health],
  ['Ready', ready],
  ['DashboardContract', dashboardContract],
];
