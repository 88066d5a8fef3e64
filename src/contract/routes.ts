import { z } from 'zod';

import { IMAGE_CONTENT_TYPES } from '../model/asset';
import { MAX_ENQUEUE_BATCH } from '../model/job';
import { workerList, bulkRequest, bulkResponse, DEFAULT_PER_PAGE, MAX_PER_PAGE, ownJobsQuery, paginationQuery, queuePage, queueQuery, queueStats, requeueParams, requeueResponse, throughput, throughputQuery } from './admin';
import { asset, assetIdParams, MAX_ASSET_BYTES, uploadQuery, uploadReceipt } from './assets';
import { escrow, escrowIdParams, escrowPage, escrowRequest } from './escrows';
import {
  anyJobIdParams,
  batchEnqueueEnvelope,
  batchReportEnvelope,
  batchReportRequest,
  batchReportResponse,
  batchEnqueueRequest,
  batchEnqueueResponse,
  enqueueRequest,
  enqueueRequestByType,
  enqueueResponse,
  failRequest,
  failResponse,
  getJobQuery,
  heartbeatRequest,
  heartbeatResponse,
  jobDocument,
  jobIdParams,
  jobStatusResponse,
  leaseQuery,
  resultFileParams,
  resultFileReceipt,
  resultFileUploadQuery,
  leaseResponse,
  MAX_BATCH_REPORTS,
  MAX_CHECKPOINT_BYTES,
  MAX_JOB_PAYLOAD_BYTES,
  snoozeRequest,
  snoozeResponse,
  succeedRequest,
  workerIdHeaders,
} from './jobs';
import { dashboardContract, health, principal, ready } from './operations';
import { defineRoute, type Example, type RouteDef } from './route';
import { createScheduleRequest, schedule, scheduleList, scheduleNameParams, updateScheduleRequest } from './schedules';
import { jobTypeEntry, jobTypeList, jobTypeParams, updateJobTypeRequest } from './type-settings';

/**
 * The route table: every route the service serves, once. The routers register their routes from
 * it (src/http/mount-route.ts), so a route cannot exist in one and not the other; /openapi.json and
 * docs/api.md are generated from it; test/integration/contract.test.ts checks the app, this table,
 * the document and docs/api.md against each other and every answer against its schema.
 *
 * Keys are the operation ids. Order matters where paths overlap (`/jobs/lease` before
 * `/jobs/:jobId`): the routers mount in table order.
 */

const html = ['text/html'] as const;

function examples<S extends z.ZodType>(_schema: S, values: Record<string, Example<z.input<S>>>): Record<string, Example<unknown>> {
  return values;
}

const UPLOAD_400 = 'The body could not be read (the client hung up mid-upload).';
const UPLOAD_413 = `The image is over ${MAX_ASSET_BYTES / 1024 / 1024} MB (a declared Content-Length is refused before the body is read).`;
const JOB_READ_403 = 'Not the creator of the job, or no such job: a non-admin learns nothing about existence.';
const LEASE_409 = 'The caller does not hold the current lease: the job is not leased, is leased to another worker, or `leaseId` is not the current lease (a worker whose lease was reclaimed can never report on it).';

function workerReport<B extends z.ZodType, R extends z.ZodType, const P extends string>(params: {
  path: P;
  summary: string;
  description: string;
  body: B;
  required: boolean;
  response: R;
}) {
  return {
    method: 'post',
    path: params.path,
    tag: 'worker',
    summary: params.summary,
    description: params.description,
    access: 'jobs:work',
    params: jobIdParams,
    headers: workerIdHeaders,
    body: { schema: params.body, required: params.required },
    responses: { 200: { description: 'The report was accepted.', json: params.response } },
    errors: { job_not_found: 'No job with this id (or one of another tenant).', lease_conflict: LEASE_409 },
  } as const;
}

export const ROUTES = {
  // ---- Public ------------------------------------------------------------------------------
  healthz: defineRoute({
    method: 'get',
    path: '/healthz',
    tag: 'health',
    summary: 'Liveness: 200 while the process is up',
    access: 'public',
    responses: { 200: { description: 'The process is up.', json: health } },
    errors: {},
  }),
  readyz: defineRoute({
    method: 'get',
    path: '/readyz',
    tag: 'health',
    summary: 'Readiness: 200 only while MongoDB answers',
    access: 'public',
    responses: { 200: { description: 'The database answers.', json: ready } },
    errors: { unavailable: 'The database does not answer (within the readiness timeout).' },
  }),
  metrics: defineRoute({
    method: 'get',
    path: '/metrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    description:
      'Prometheus text exposition format. Counters `jobs_enqueued_total`, `jobs_leased_total`, `jobs_succeeded_total`, `jobs_failed_total` (failed attempts), `jobs_dead_lettered_total`, `jobs_retries_scheduled_total`, `jobs_reclaimed_total`, `jobs_cancelled_total`, `jobs_requeued_total` by `type`; gauges `jobs_queue_depth`, `jobs_scheduled` (queued, not yet due), `jobs_oldest_queued_age_seconds` (how long the longest-waiting due job has been due) by `type` and `jobs_status_count` by `type` and `status` (refreshed every few seconds by one aggregation, not per scrape); histograms `http_request_duration_seconds` by `method`, `route`, `status` and `job_run_duration_seconds` by `type`, `outcome`.',
    access: 'public',
    responses: {
      200: {
        description: 'The metrics.',
        raw: ['text/plain'],
        example: '# HELP jobs_queue_depth Jobs in status queued\n# TYPE jobs_queue_depth gauge\njobs_queue_depth{type="thumbnail.create"} 3\n',
      },
    },
    errors: {},
  }),
  openapi: defineRoute({
    method: 'get',
    path: '/openapi.json',
    tag: 'operations',
    summary: 'This document (OpenAPI 3.1), generated from the route table',
    access: 'public',
    responses: { 200: { description: 'The OpenAPI 3.1 document.', raw: ['application/json'] } },
    errors: {},
  }),
  docs: defineRoute({
    method: 'get',
    path: '/docs',
    tag: 'operations',
    summary: 'Interactive API documentation (Swagger UI, served locally)',
    access: 'public',
    responses: { 200: { description: 'An HTML page.', raw: html } },
    errors: {},
  }),
  dashboard: defineRoute({
    method: 'get',
    path: '/dashboard',
    tag: 'operations',
    summary: 'The operator dashboard (a static page; its data calls carry the admin token entered on it)',
    access: 'public',
    responses: { 200: { description: 'An HTML page.', raw: html } },
    errors: {},
  }),
  dashboardContract: defineRoute({
    method: 'get',
    path: '/dashboard/contract.json',
    tag: 'operations',
    summary: 'The lists the dashboard page works with (job statuses, which can be requeued or cancelled)',
    access: 'public',
    responses: { 200: { description: 'Generated from the model\'s constants.', json: dashboardContract } },
    errors: {},
  }),

  // ---- Authentication ------------------------------------------------------------------------
  whoami: defineRoute({
    method: 'get',
    path: '/auth/whoami',
    tag: 'auth',
    summary: 'Who the token names',
    access: 'authenticated',
    responses: { 200: { description: 'The verified claims.', json: principal } },
    errors: {},
  }),

  // ---- Jobs ----------------------------------------------------------------------------------
  enqueueJob: defineRoute({
    method: 'post',
    path: '/jobs',
    tag: 'jobs',
    summary: 'Enqueue a job (service, admin)',
    description:
      "`type` must be a registered job type (else 404 `job_type_not_found`) and `payload` must match its schema (else 422 `payload_invalid`, the failing fields in `details`). `maxAttempts` defaults to the type's policy; `scheduleAt` delays the first run; `dependsOn` makes the job wait (`waiting`) until its parents have succeeded. With an `idempotencyKey`, a second enqueue with the same key and type returns the first job (200) instead of creating another.",
    access: 'jobs:enqueue',
    body: {
      schema: enqueueRequest,
      documented: enqueueRequestByType,
      required: true,
      examples: examples(enqueueRequestByType, {
        noop: { summary: 'noop: succeeds after a second', value: { type: 'noop', payload: { sleepMs: 1000 } } },
        noopFailing: { summary: 'noop that fails every attempt: retried, then dead-lettered', value: { type: 'noop', payload: { fail: 'retryable' }, maxAttempts: 2 } },
        scheduled: { summary: 'noop that runs at a given time (scheduleAt)', value: { type: 'noop', payload: {}, scheduleAt: '2030-01-01T09:00:00Z', priority: 80 } },
        thumbnail: {
          summary: 'thumbnail.create for an uploaded asset (POST /assets gives the id)',
          value: { type: 'thumbnail.create', payload: { assetId: 'asset_65f0c2a1b3d4e5f60718293a', versionNumber: 1, sizes: [128, 512] } },
        },
        payout: {
          summary: 'payout.execute for an escrow (POST /escrows gives the id), at most once per key',
          value: {
            type: 'payout.execute',
            payload: { batchId: 'batch_1', escrowId: 'escrow_65f0c2a1b3d4e5f60718293a' },
            idempotencyKey: 'payout:escrow_65f0c2a1b3d4e5f60718293a',
          },
        },
      }),
    },
    responses: {
      201: {
        description:
          'Created: status `queued` (or `waiting` with dependsOn; `cancelled`, with lastError `dependency_failed`, when a parent has already failed, gone to the dead letter or been cancelled), attempt 0 (with `dedupe`: `deduplicated: false`).',
        json: enqueueResponse,
      },
      200: {
        description: 'The idempotency key was used before for this type: the first job. With `dedupe`: the job its key names (`deduplicated: true`; debounce: updated).',
        json: enqueueResponse,
      },
    },
    errors: {
      job_type_not_found: 'The type is not registered.',
      payload_too_large: `The body is over 1 MB, or the payload over ${MAX_JOB_PAYLOAD_BYTES} bytes as JSON.`,
      validation_error: 'A field is invalid (including a dependsOn id that does not exist, `dedupe` with `idempotencyKey`, `seconds` missing or refused for the dedupe mode).',
      conflict: "The dedupe key's job kept changing hands while the enqueue looked (extreme contention); retry.",
      payload_invalid: "The payload does not match its type's schema (`details` lists the failing fields).",
      rate_limited: 'Too many enqueues with this token (RATE_LIMIT_ENQUEUE_PER_MINUTE, per API instance).',
    },
  }),
  enqueueJobs: defineRoute({
    method: 'post',
    path: '/jobs/batch',
    tag: 'jobs',
    summary: `Enqueue up to ${MAX_ENQUEUE_BATCH.toLocaleString('en-US')} jobs at once (service, admin)`,
    description:
      'Each job is validated on its own (a bad one does not refuse the others) exactly as by `POST /jobs`; the valid ones are inserted in one round trip. Idempotency keys are honoured per job. The answer lists one result per job, in request order.',
    access: 'jobs:enqueue',
    body: {
      schema: batchEnqueueEnvelope,
      documented: batchEnqueueRequest,
      required: true,
      itemsJudgedAlone: 'jobs',
      examples: examples(batchEnqueueRequest, {
        mixed: {
          summary: 'Three jobs in one request',
          value: { jobs: [{ type: 'noop', payload: {} }, { type: 'noop', payload: { sleepMs: 500 }, priority: 90 }, { type: 'noop', payload: { failItems: ['b'] } }] },
        },
      }),
    },
    responses: { 200: { description: 'One result per job, in request order.', json: batchEnqueueResponse } },
    errors: {
      payload_too_large: `The body is over 1 MB, or a job's payload over ${MAX_JOB_PAYLOAD_BYTES} bytes as JSON (the whole batch is refused).`,
      rate_limited: 'Too many enqueues with this token (each job of the batch counts).',
    },
  }),
  listJobs: defineRoute({
    method: 'get',
    path: '/jobs',
    tag: 'jobs',
    summary: "The caller's own jobs, newest first (service, user, admin)",
    description: `A service or user token sees the jobs it created (its sub, role and tenant); an admin sees every job (a tenant admin: its tenant's). Filters combine with AND; \`tag\` matches jobs carrying all the tags listed. \`per_page\` 1–${MAX_PER_PAGE} (default ${DEFAULT_PER_PAGE}); pages beyond the last answer 200 with an empty \`data\`.`,
    access: 'jobs:read',
    query: ownJobsQuery,
    responses: { 200: { description: 'One page of jobs, with the `meta` of the admin queue.', json: queuePage } },
    errors: {},
  }),
  leaseJobs: defineRoute({
    method: 'get',
    path: '/jobs/lease',
    tag: 'worker',
    summary: 'Lease available jobs (worker, admin)',
    description:
      "Atomically claims up to `limit` available jobs: `queued` with nextRunAt ≤ now, or `leased` with an expired lease; priority desc, then nextRunAt asc. Each becomes `leased` to this worker for the policy's timeoutSeconds with `attempt + 1`; no job is ever handed to two workers for one lease. A type's `concurrencyLimit` caps its leased jobs across all workers; a reclaimed job with no attempts left goes to `dlq` instead. With `wait`, an empty answer is held until work arrives or the time is up. A tenant token leases its tenant's jobs only. Unknown query parameters are ignored.",
    access: 'jobs:work',
    headers: workerIdHeaders,
    query: leaseQuery,
    responses: { 200: { description: 'The leased jobs (possibly none).', json: leaseResponse } },
    errors: { rate_limited: 'Too many lease calls with this token (RATE_LIMIT_LEASE_PER_MINUTE, per API instance).' },
  }),
  heartbeatJob: defineRoute(
    workerReport({
      path: '/jobs/:jobId/heartbeat',
      summary: 'Extend the lease and record progress (worker, admin)',
      description: `Extends leaseExpiresAt by the policy timeout and records \`progress\`; \`cancelRequested\` in the answer tells the worker to stop. A \`checkpoint\` (any JSON, at most ${MAX_CHECKPOINT_BYTES} bytes as text, else 413) is stored on the job and returned with every later lease of it, so a retried job resumes where it stopped.`,
      body: heartbeatRequest,
      required: false,
      response: heartbeatResponse,
    }),
  ),
  succeedJob: defineRoute(
    workerReport({
      path: '/jobs/:jobId/succeed',
      summary: 'Report success (worker, admin)',
      description:
        'The job becomes `succeeded` and `completedAt` is set; a result with `partial: true` marks it partial. A report that arrives after leaseExpiresAt but before the reclaim is accepted (the work was done).',
      body: succeedRequest,
      required: false,
      response: jobStatusResponse,
    }),
  ),
  failJob: defineRoute(
    workerReport({
      path: '/jobs/:jobId/fail',
      summary: 'Report a failure (worker, admin)',
      description:
        '`retryable: false` → `failed` (the handler\'s verdict wins); attempts used up → `dlq`; otherwise `queued` again at now + min(cap, base · 2^(attempt−1)) scaled by a random factor in [0.5, 1] (base and cap from the policy).',
      body: failRequest,
      required: true,
      response: failResponse,
    }),
  ),
  snoozeJob: defineRoute(
    workerReport({
      path: '/jobs/:jobId/snooze',
      summary: 'Put the job back for later without spending the attempt (worker, admin)',
      description:
        'The job goes back to `queued` with nextRunAt = now + `seconds`; `attempt` returns to its value before this lease (the run does not count against maxAttempts) and the history entry\'s outcome is `snoozed`. A cancel requested meanwhile wins: the job ends `cancelled`.',
      body: snoozeRequest,
      required: true,
      response: snoozeResponse,
    }),
  ),
  reportJobs: defineRoute({
    method: 'post',
    path: '/jobs/reports',
    tag: 'worker',
    summary: `Report up to ${MAX_BATCH_REPORTS} finished jobs at once (worker, admin)`,
    description:
      "Each report is judged on its own exactly as the single endpoint of its outcome would judge it (`succeed`, `fail`, `snooze`: validation, lease rules, effects); one bad item never fails the others. The answer has one result per report, in request order: `{ jobId, status }`, or `{ jobId, error: { code, message } }` with the code (and meaning) the single endpoint would have answered (`lease_conflict`, `job_not_found`, `validation_error`, ...). The whole batch is applied in one bulk write.",
    access: 'jobs:work',
    headers: workerIdHeaders,
    body: {
      schema: batchReportEnvelope,
      documented: batchReportRequest,
      required: true,
      itemsJudgedAlone: 'reports',
      examples: examples(batchReportRequest, {
        mixed: {
          summary: 'A success, a failure and a snooze',
          value: {
            reports: [
              { jobId: 'job_65f0c2a1b3d4e5f60718293a', leaseId: 'lease_1', outcome: 'succeeded', result: { ok: true }, durationMs: 120 },
              { jobId: 'job_65f0c2a1b3d4e5f60718293b', leaseId: 'lease_2', outcome: 'failed', error: { message: 'upstream timed out', code: 'timeout' } },
              { jobId: 'job_65f0c2a1b3d4e5f60718293c', leaseId: 'lease_3', outcome: 'snoozed', seconds: 30 },
            ],
          },
        },
      }),
    },
    responses: { 200: { description: 'One result per report, in request order.', json: batchReportResponse } },
    errors: { validation_error: `The envelope is malformed (no \`reports\` array of 1–${MAX_BATCH_REPORTS}); a malformed item is answered in its own result.` },
  }),
  uploadResultFile: defineRoute({
    method: 'post',
    path: '/jobs/:jobId/files',
    tag: 'worker',
    summary: 'Upload a result file of the job (worker, admin; the current leaseholder only)',
    description:
      'The raw bytes as the body with their `Content-Type` (any media type; `application/octet-stream` when none is given), streamed into GridFS, never held whole. Only the holder of the current lease may upload: the lease is checked before a byte is read and again when the file is listed on the job (a lease lost meanwhile keeps no file). The job document lists its files with their URLs; retention deletes them with the job.',
    access: 'jobs:work',
    params: jobIdParams,
    headers: workerIdHeaders,
    query: resultFileUploadQuery,
    rawBody: {
      contentTypes: ['*/*'],
      description:
        'The file\'s bytes (not compressed: no Content-Encoding), at most RESULT_FILE_MAX_BYTES (default 100 MB). A declared Content-Length over the limit is refused before the body is read; a chunked body as soon as it passes the limit.',
    },
    responses: { 201: { description: 'Stored and listed on the job.', json: resultFileReceipt } },
    errors: {
      bad_request: UPLOAD_400,
      job_not_found: 'No job with this id (or one of another tenant).',
      lease_conflict: LEASE_409,
      invalid_state: 'The job already holds 100 result files.',
      payload_too_large: 'The file is over RESULT_FILE_MAX_BYTES (default 100 MB).',
      unsupported_media_type: 'A Content-Type that is not a media type, or a compressed body.',
      validation_error: 'A missing or bad `name` (1–200 characters, no control characters), a repeated `leaseId`, or a bad X-Worker-Id.',
      rate_limited: 'This API instance already streams RESULT_FILE_UPLOAD_CONCURRENCY result file uploads.',
    },
  }),
  getResultFile: defineRoute({
    method: 'get',
    path: '/jobs/:jobId/files/:fileId',
    tag: 'jobs',
    summary: 'Download a result file of the job (owner, admin)',
    description: 'Streams the bytes with the content type given at upload, as an attachment.',
    access: 'jobs:read',
    params: resultFileParams,
    responses: {
      200: {
        description: 'The file, with its content type.',
        raw: ['*/*'],
        headers: { 'Content-Disposition': { description: '`attachment` with the file name.', schema: { type: 'string' } } },
      },
    },
    errors: { access_denied: JOB_READ_403, job_not_found: 'Admin only: no job with this id.', not_found: 'The job has no file with this id.' },
  }),
  cancelJob: defineRoute({
    method: 'post',
    path: '/jobs/:jobId/cancel',
    tag: 'jobs',
    summary: 'Cancel a job (owner, admin)',
    description:
      '`waiting` or `queued`: `cancelled` at once. `leased`: `cancelRequested` is set (the status stays `leased`) and the worker sees it on its next heartbeat. Already `cancelled`: 200 again (a retried cancel is safe).',
    access: 'jobs:cancel',
    params: jobIdParams,
    responses: { 200: { description: 'Cancelled, or cancellation requested.', json: jobStatusResponse } },
    errors: {
      access_denied: JOB_READ_403,
      job_not_found: 'Admin only: no job with this id.',
      invalid_state: 'The job has finished (`succeeded`, `failed`, `dlq`), or its run has passed its point of no return.',
    },
  }),
  getJob: defineRoute({
    method: 'get',
    path: '/jobs/:jobId',
    tag: 'jobs',
    summary: 'Job detail (owner, admin)',
    description:
      'With `wait`, an unfinished job is answered when it finishes (within a second of the finish, whichever API instance recorded it) or when the wait is over, whichever comes first; access is checked before any waiting.',
    access: 'jobs:read',
    params: anyJobIdParams,
    query: getJobQuery,
    responses: { 200: { description: 'The job document.', json: jobDocument } },
    errors: { access_denied: JOB_READ_403, job_not_found: 'Admin only: no job with this id.' },
  }),

  // ---- Escrows -------------------------------------------------------------------------------
  createEscrow: defineRoute({
    method: 'post',
    path: '/escrows',
    tag: 'escrows',
    summary: 'Hold money for a payee until its payout batch runs (admin)',
    description: 'Validation errors name the field itself (`amount`, not `body.amount`), as the payouts module reports them to every caller.',
    access: 'admin',
    body: { schema: escrowRequest, required: true },
    responses: { 201: { description: 'Created, status `held`.', json: escrow } },
    errors: { conflict: 'The escrow id is in use. Escrow ids are global, like schedule names: one taken in another tenant answers the same 409, without saying where.' },
  }),
  listEscrows: defineRoute({
    method: 'get',
    path: '/escrows',
    tag: 'escrows',
    summary: "List escrows, newest first (admin; a tenant admin sees its tenant's)",
    access: 'admin',
    query: paginationQuery,
    responses: { 200: { description: 'One page of escrows.', json: escrowPage } },
    errors: {},
  }),
  getEscrow: defineRoute({
    method: 'get',
    path: '/escrows/:escrowId',
    tag: 'escrows',
    summary: "An escrow (admin; a tenant admin sees its tenant's)",
    access: 'admin',
    params: escrowIdParams,
    responses: { 200: { description: 'The escrow.', json: escrow } },
    errors: { escrow_not_found: '' },
  }),

  // ---- Assets --------------------------------------------------------------------------------
  createAsset: defineRoute({
    method: 'post',
    path: '/assets',
    tag: 'assets',
    summary: 'Upload an image as a new asset (service, admin)',
    description: 'Stored as version 1, owned by the caller (its sub, role and tenant).',
    access: 'assets:write',
    query: uploadQuery,
    rawBody: {
      contentTypes: IMAGE_CONTENT_TYPES,
      description: `The raw image bytes (at most ${MAX_ASSET_BYTES / 1024 / 1024} MB, not compressed) with their Content-Type; streamed into storage. A declared Content-Length over the limit is refused before the body is read; a chunked body as soon as it passes the limit.`,
    },
    responses: { 201: { description: 'Stored as version 1.', json: uploadReceipt } },
    errors: {
      bad_request: UPLOAD_400,
      payload_too_large: UPLOAD_413,
      unsupported_media_type: `Content-Type is not one of ${IMAGE_CONTENT_TYPES.join(', ')}, the bytes are not such an image, or the body is compressed.`,
      validation_error: 'An empty body, or a bad `filename`.',
      rate_limited: 'This API instance already streams ASSET_UPLOAD_CONCURRENCY uploads.',
    },
  }),
  addAssetVersion: defineRoute({
    method: 'post',
    path: '/assets/:assetId',
    tag: 'assets',
    summary: 'Upload a new version of an asset (service, admin)',
    description: 'Stored as versionNumber + 1; `processed` is reset. Only its owner (or an admin, within the tenant) may add versions.',
    access: 'assets:write',
    params: assetIdParams,
    query: uploadQuery,
    rawBody: {
      contentTypes: IMAGE_CONTENT_TYPES,
      description: `The raw image bytes (at most ${MAX_ASSET_BYTES / 1024 / 1024} MB, not compressed) with their Content-Type.`,
    },
    responses: { 201: { description: 'Stored as versionNumber + 1.', json: uploadReceipt } },
    errors: {
      asset_not_found: 'No asset with this id that the caller may change (its owner or an admin, within the tenant).',
      invalid_state: 'A thumbnail takes no new versions.',
      conflict: 'Too many concurrent uploads to this asset; retry.',
      bad_request: UPLOAD_400,
      payload_too_large: UPLOAD_413,
      unsupported_media_type: '',
      validation_error: 'A malformed asset id, an empty body, or a bad `filename`.',
      rate_limited: 'This API instance already streams ASSET_UPLOAD_CONCURRENCY uploads.',
    },
  }),
  getAsset: defineRoute({
    method: 'get',
    path: '/assets/:assetId',
    tag: 'assets',
    summary: 'Asset metadata (service, worker, admin)',
    access: 'assets:read',
    params: assetIdParams,
    responses: { 200: { description: 'The asset, including `processed` and `thumbnailAssetIds`.', json: asset } },
    errors: { asset_not_found: 'No asset with this id that the caller may see (owner, admin, or worker; within the tenant).' },
  }),
  getAssetContent: defineRoute({
    method: 'get',
    path: '/assets/:assetId/content',
    tag: 'assets',
    summary: 'The bytes of the current version (service, worker, admin)',
    access: 'assets:read',
    params: assetIdParams,
    responses: {
      200: {
        description: 'The image bytes, with their content type.',
        raw: IMAGE_CONTENT_TYPES,
        headers: { 'X-Asset-Version': { description: 'The version served.', schema: { type: 'integer', minimum: 1 } } },
      },
    },
    errors: { asset_not_found: 'No asset with this id that the caller may see.' },
  }),

  // ---- Admin ---------------------------------------------------------------------------------
  listQueue: defineRoute({
    method: 'get',
    path: '/admin/jobs/queue',
    tag: 'admin',
    summary: 'List jobs, newest first (admin)',
    description: `Filters combine with AND. \`per_page\` 1–${MAX_PER_PAGE} (default ${DEFAULT_PER_PAGE}); pages beyond the last answer 200 with an empty \`data\`.`,
    access: 'admin',
    query: queueQuery,
    responses: { 200: { description: 'One page of jobs.', json: queuePage } },
    errors: {},
  }),
  queueStats: defineRoute({
    method: 'get',
    path: '/admin/jobs/stats',
    tag: 'admin',
    summary: 'Counts by status and type, oldest queued job age (admin)',
    description: 'Computed with one aggregation over the jobs; every status key is present (0 when none).',
    access: 'admin',
    responses: { 200: { description: 'The stats.', json: queueStats } },
    errors: {},
  }),
  throughput: defineRoute({
    method: 'get',
    path: '/admin/jobs/throughput',
    tag: 'admin',
    summary: 'Jobs finished per minute, by outcome (admin)',
    description:
      'Counts jobs by the minute of their `completedAt`: succeeded (throughput) and failed / dlq (failures). A requeued job leaves the chart until it finishes again.',
    access: 'admin',
    query: throughputQuery,
    responses: { 200: { description: 'One bucket per minute.', json: throughput } },
    errors: {},
  }),
  bulkJobs: defineRoute({
    method: 'post',
    path: '/admin/jobs/bulk',
    tag: 'admin',
    summary: 'Requeue, cancel or delete every job matching a filter (admin)',
    description:
      "Each job goes through the same conditional update as its single action (`POST /admin/jobs/{jobId}/requeue`, `POST /jobs/{jobId}/cancel`; delete: finished jobs only, never an unfinished one, with their result files), in bounded batches, within the admin's tenant. A job that changes meanwhile (leased by a worker, finished) is judged as it is then: a queued job leased meanwhile gets its cancel requested, one past its point of no return is left; a job its single action would refuse (a requeue whose `active` dedupe key another unfinished job holds now) is left as it is and not counted in `affected`. `dryRun` counts without changing anything. A call works for at most about 20 s: with many jobs it may answer `complete: false`, and repeating it goes on with the jobs that still match.",
    access: 'admin',
    body: {
      schema: bulkRequest,
      required: true,
      examples: examples(bulkRequest, {
        requeueDead: { summary: 'Count the dead letters of a type (dry run)', value: { action: 'requeue', filter: { status: 'dlq', type: 'payout.execute' }, dryRun: true } },
        cancelBatch: { summary: 'Cancel an import batch', value: { action: 'cancel', filter: { type: 'noop', tag: 'import:batch-7' } } },
      }),
    },
    responses: { 200: { description: 'What matched and what changed.', json: bulkResponse } },
    errors: { validation_error: 'A bad field, or a filter naming neither status nor type.' },
  }),
  listWorkers: defineRoute({
    method: 'get',
    path: '/admin/workers',
    tag: 'admin',
    summary: 'Who is working: the worker processes seen in the last five minutes, with the jobs they hold (admin)',
    description: 'Each lease call and heartbeat records its worker (at most once per 10 s per worker and API instance, so `lastSeenAt` may lag that much); a tenant admin sees its tenant’s workers and jobs.',
    access: 'admin',
    responses: { 200: { description: 'The workers, most recently seen first.', json: workerList } },
    errors: {},
  }),
  requeueJob: defineRoute({
    method: 'post',
    path: '/admin/jobs/:jobId/requeue',
    tag: 'admin',
    summary: 'Put a failed, dead-lettered or cancelled job back in the queue (admin)',
    description:
      '`attempt` resets to 0 (a fresh attempt budget), `nextRunAt` is now, the attempt history is kept. A job with `dependsOn` whose parents have not all succeeded goes back to `waiting` on them instead (requeue the parent too; its success releases the job); one whose parent no longer exists (retention deleted it) is refused (409).',
    access: 'admin',
    params: requeueParams,
    responses: { 200: { description: 'Queued again.', json: requeueResponse } },
    errors: {
      job_not_found: 'No job with this id (or one of another tenant).',
      invalid_state: 'The job is not failed, dlq or cancelled.',
      conflict: 'It was enqueued with dedupe `active` and another unfinished job holds its key now.',
    },
  }),
  listJobTypes: defineRoute({
    method: 'get',
    path: '/admin/types',
    tag: 'admin',
    summary: 'Every job type: effective policy, pause, live counts (admin)',
    description: "A tenant admin sees every type's settings (they are global) and its own tenant's counts.",
    access: 'admin',
    responses: { 200: { description: 'Every registered type.', json: jobTypeList } },
    errors: {},
  }),
  updateJobType: defineRoute({
    method: 'patch',
    path: '/admin/types/:type',
    tag: 'admin',
    summary: 'Pause, resume or re-limit a job type at run time (admin without a tenant)',
    description:
      'Stored in MongoDB (survives restarts); every API instance honours the change within 2 seconds of this answer (the one answering at once). Run-time settings win over JOB_POLICY_OVERRIDES, which win over the registry; `null` removes a run-time setting. `paused`: no job of the type is leased (enqueues are accepted, leased jobs finish normally). Types are global configuration: a tenant admin may not change them (403).',
    access: 'admin',
    params: jobTypeParams,
    body: {
      schema: updateJobTypeRequest,
      required: true,
      examples: examples(updateJobTypeRequest, {
        pause: { summary: 'Pause it', value: { paused: true } },
        limits: { summary: 'One job per key, at most 10 a second', value: { keyConcurrencyLimit: 1, rateLimit: { jobs: 10, perSeconds: 1 } } },
        reset: { summary: 'Back to the configured limits', value: { concurrencyLimit: null, keyConcurrencyLimit: null, rateLimit: null } },
      }),
    },
    responses: { 200: { description: "The type's entry after the change.", json: jobTypeEntry } },
    errors: {
      job_type_not_found: 'The type is not registered.',
      permission_denied: 'A non-admin token, or an admin token with a tenant (types are global configuration).',
    },
  }),

  // ---- Schedules -----------------------------------------------------------------------------
  createSchedule: defineRoute({
    method: 'post',
    path: '/admin/schedules',
    tag: 'admin',
    summary: 'Create a recurring schedule (admin)',
    description: 'The payload is validated against the type exactly as by `POST /jobs`. `nextRunAt` is the first occurrence after now (null when created paused).',
    access: 'admin',
    body: {
      schema: createScheduleRequest,
      required: true,
      examples: examples(createScheduleRequest, {
        nightly: { summary: 'A noop every night at 03:00 Berlin time', value: { name: 'nightly-noop', type: 'noop', payload: {}, cron: '0 3 * * *', timeZone: 'Europe/Berlin' } },
      }),
    },
    responses: { 201: { description: 'Created.', json: schedule } },
    errors: {
      job_type_not_found: 'The type is not registered.',
      conflict: 'A schedule with this name exists (names are unique across tenants).',
      validation_error: 'A field is invalid (an unparsable cron expression, an unknown time zone, ...).',
      payload_invalid: "The payload does not match its type's schema.",
    },
  }),
  listSchedules: defineRoute({
    method: 'get',
    path: '/admin/schedules',
    tag: 'admin',
    summary: "List schedules with their next and last runs (admin; a tenant admin sees its tenant's)",
    access: 'admin',
    responses: { 200: { description: 'Every schedule, by name.', json: scheduleList } },
    errors: {},
  }),
  getSchedule: defineRoute({
    method: 'get',
    path: '/admin/schedules/:name',
    tag: 'admin',
    summary: 'A schedule (admin)',
    access: 'admin',
    params: scheduleNameParams,
    responses: { 200: { description: 'The schedule.', json: schedule } },
    errors: { not_found: 'No schedule with this name (or one of another tenant).' },
  }),
  updateSchedule: defineRoute({
    method: 'patch',
    path: '/admin/schedules/:name',
    tag: 'admin',
    summary: 'Edit, pause (`{"paused": true}`) or resume (`{"paused": false}`) a schedule (admin)',
    access: 'admin',
    params: scheduleNameParams,
    body: {
      schema: updateScheduleRequest,
      required: true,
      examples: examples(updateScheduleRequest, {
        pause: { summary: 'Pause it', value: { paused: true } },
        retime: { summary: 'Run it at 04:30 instead', value: { cron: '30 4 * * *' } },
      }),
    },
    responses: { 200: { description: 'The schedule after the edit.', json: schedule } },
    errors: {
      not_found: 'No schedule with this name (or one of another tenant).',
      job_type_not_found: 'The new type is not registered.',
      conflict: 'The schedule kept changing during the edit; retry.',
      payload_invalid: "The payload does not match its type's schema.",
    },
  }),
  deleteSchedule: defineRoute({
    method: 'delete',
    path: '/admin/schedules/:name',
    tag: 'admin',
    summary: 'Delete a schedule (admin); the jobs it already enqueued stay',
    access: 'admin',
    params: scheduleNameParams,
    responses: { 204: { description: 'Deleted.', empty: true } },
    errors: { not_found: 'No schedule with this name (or one of another tenant).' },
  }),
} satisfies Record<string, RouteDef>;

export type OperationId = keyof typeof ROUTES;

export interface ContractRoute {
  operationId: OperationId;
  route: RouteDef;
}

/** The table as a list, in order. */
export const ROUTE_LIST: readonly ContractRoute[] = (Object.keys(ROUTES) as OperationId[]).map((operationId) => ({ operationId, route: ROUTES[operationId] }));

/** `GET /jobs/:jobId` style keys, as test/helpers/route-table.ts lists the app's routes. */
export function routeKey(route: Pick<RouteDef, 'method' | 'path'>): string {
  return `${route.method.toUpperCase()} ${route.path}`;
}
