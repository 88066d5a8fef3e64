import { Router } from 'express';
import type { z } from 'zod';

import { batchReportItem, enqueueRequest, type batchEnqueueResponse, type batchReportResponse } from '../contract/jobs';
import { ROUTES } from '../contract/routes';
import { AppError, PayloadInvalidError, ValidationError, type FieldError } from '../errors';
import type { BatchReport, EnqueueInput, JobService, ReportTarget } from '../jobs/job-service';
import type { JobListing } from '../jobs/job-listing';
import type { Principal } from '../model/principal';
import { noTracing, type Tracing } from '../tracing/tracing';
import { mountRoute } from './mount-route';
import { unsafeKeyError } from './sanitize';
import { parseRequest } from './validation';
import { toEnqueueWire, toFailWire, toHeartbeatWire, toJobWire, toLeaseWire, toQueuePageWire, toSnoozeWire } from './wire';

type BatchResult = z.input<typeof batchEnqueueResponse>['results'][number];

function errorItem(err: AppError): BatchResult {
  return { error: { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details as FieldError[] }) } };
}

type BatchReportWire = z.input<typeof batchReportResponse>['results'][number];

function toBatchReport(item: z.output<typeof batchReportItem>): BatchReport {
  const base = { jobId: item.jobId, leaseId: item.leaseId, ...(item.durationMs === undefined ? {} : { durationMs: item.durationMs }) };
  switch (item.outcome) {
    case 'succeeded':
      return { ...base, outcome: 'succeeded', ...('result' in item ? { result: item.result } : {}) };
    case 'failed':
      return { ...base, outcome: 'failed', error: { message: item.error.message, ...(item.error.code === undefined ? {} : { code: item.error.code }), ...(item.error.retryable === undefined ? {} : { retryable: item.error.retryable }) } };
    case 'snoozed':
      return { ...base, outcome: 'snoozed', seconds: item.seconds };
  }
}

function toEnqueueInput(body: z.output<typeof enqueueRequest>, traceparent: string | null): EnqueueInput {
  return {
    ...(traceparent === null ? {} : { traceparent }),
    type: body.type,
    payload: body.payload,
    ...(body.priority === undefined ? {} : { priority: body.priority }),
    ...(body.scheduleAt === undefined ? {} : { scheduleAt: new Date(body.scheduleAt) }),
    ...(body.maxAttempts === undefined ? {} : { maxAttempts: body.maxAttempts }),
    ...(body.idempotencyKey === undefined ? {} : { idempotencyKey: body.idempotencyKey }),
    ...(body.dependsOn === undefined ? {} : { dependsOn: body.dependsOn }),
    ...(body.concurrencyKey === undefined ? {} : { concurrencyKey: body.concurrencyKey }),
    ...(body.dedupe === undefined ? {} : { dedupe: { key: body.dedupe.key, mode: body.dedupe.mode, ...(body.dedupe.seconds === undefined ? {} : { seconds: body.dedupe.seconds }) } }),
    ...(body.tags === undefined ? {} : { tags: body.tags }),
    ...(body.callbackUrl === undefined ? {} : { callbackUrl: body.callbackUrl }),
  };
}

function reportTarget(params: { jobId: string; workerId: string; principal: Principal; leaseId: string | undefined }): ReportTarget {
  return {
    jobId: params.jobId,
    workerId: params.workerId,
    principal: params.principal,
    ...(params.leaseId === undefined ? {} : { leaseId: params.leaseId }),
  };
}

/**
 * One item of a batch, judged as its single endpoint judges its body: unsafe keys (the body's own
 * check left the items to this one), then the schema. A 422 names its fields inside the batch
 * (`at`: `body.jobs.3`) and is the item's answer alone.
 */
function parseBatchItem<S extends z.ZodType>(schema: S, item: unknown, at: string): z.output<S> | AppError {
  const unsafe = unsafeKeyError(item, 'body');
  // A payload's problem names its fields from the payload, as its type's schema does in a batch.
  if (unsafe instanceof PayloadInvalidError) return unsafe;
  if (unsafe) return insideBatch(unsafe, at);
  try {
    return parseRequest(schema, item, 'body');
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return insideBatch(err, at);
  }
}

/** The same 422 with its fields named inside the batch (`body.x` → `body.jobs.3.x`). */
function insideBatch(err: ValidationError, at: string): ValidationError {
  const details = (err.details as FieldError[] | undefined)?.map((d) => ({ ...d, field: d.field.replace(/^body/, at) }));
  return new ValidationError(err.message, details);
}

/** Enqueue, lease, report, cancel and read jobs (API.md). Each route maps onto one JobService call. */
export function jobRoutes(deps: { jobs: JobService; listing: JobListing; tracing?: Tracing }): Router {
  const { jobs, listing } = deps;
  const tracing = deps.tracing ?? noTracing;
  const router = Router();

  mountRoute(router, ROUTES.listJobs)(async ({ principal, query }) => {
    const filter = {
      ...(query.status && query.status.length > 0 ? { statuses: query.status } : {}),
      ...(query.type && query.type.length > 0 ? { types: query.type } : {}),
      ...(query.tag && query.tag.length > 0 ? { tags: query.tag } : {}),
    };
    return { status: 200, body: toQueuePageWire(await listing.listOwn({ principal, filter, page: query.page, perPage: query.per_page })) };
  });

  mountRoute(router, ROUTES.enqueueJob)(async ({ principal, body: request }) => {
    // The request's trace context goes with the job: its runs become spans of this trace.
    const { job, created, deduplicated } = await jobs.enqueue(principal, toEnqueueInput(request, tracing.currentTraceparent()));
    const body = toEnqueueWire(job, deduplicated);
    return created ? { status: 201, body } : { status: 200, body };
  });

  // Up to 1,000 jobs, each validated on its own; 200 with one result per job, in request order.
  mountRoute(router, ROUTES.enqueueJobs)(async ({ principal, body }) => {
    const traceparent = tracing.currentTraceparent();
    const inputs: (EnqueueInput | AppError)[] = body.jobs.map((item, index) => {
      const parsed = parseBatchItem(enqueueRequest, item, `body.jobs.${index}`);
      return parsed instanceof AppError ? parsed : toEnqueueInput(parsed, traceparent);
    });
    const valid = inputs.flatMap((input, index) => (input instanceof AppError ? [] : [{ input, index }]));
    const outcomes = await jobs.enqueueBatch(principal, valid.map((v) => v.input));
    const results: (BatchResult | undefined)[] = inputs.map((input) => (input instanceof AppError ? errorItem(input) : undefined));
    for (const [i, outcome] of outcomes.entries()) {
      results[valid[i]!.index] = 'error' in outcome ? errorItem(outcome.error) : { ...toEnqueueWire(outcome.job, outcome.deduplicated), created: outcome.created };
    }
    const answered = results.map((r) => r ?? errorItem(new AppError('internal', 'no outcome for this job')));
    const count = (test: (r: BatchResult) => boolean) => answered.filter(test).length;
    return {
      status: 200,
      body: {
        created: count((r) => 'created' in r && r.created),
        existing: count((r) => 'created' in r && !r.created),
        rejected: count((r) => 'error' in r),
        results: answered,
      },
    };
  });

  mountRoute(router, ROUTES.leaseJobs)(async ({ principal, headers, query, res }) => {
    // A long-poll ends early when the worker hangs up.
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const result = await jobs.lease({
      workerId: headers['x-worker-id'],
      types: query.type && query.type.length > 0 ? query.type : null,
      limit: query.limit ?? 1,
      waitMs: (query.wait ?? 0) * 1000,
      signal: gone.signal,
      ...(principal.tenant === undefined ? {} : { tenant: principal.tenant }),
    });
    if (tracing.enabled) {
      // Each leased job's trace shows the lease (the worker's job.run span follows it).
      for (const job of result.jobs) {
        void tracing.withSpan(
          'job.leased',
          { parent: job.traceparent, attributes: { 'job.id': job.jobId, 'job.type': job.type, 'job.attempt': job.attempt, 'worker.id': headers['x-worker-id'] } },
          async () => undefined,
        );
      }
    }
    return { status: 200, body: toLeaseWire(result) };
  });

  mountRoute(router, ROUTES.heartbeatJob)(async ({ principal, params, headers, body }) => {
    const target = reportTarget({ jobId: params.jobId, workerId: headers['x-worker-id'], principal, leaseId: body.leaseId });
    return {
      status: 200,
      body: toHeartbeatWire(await jobs.heartbeat(target, { progress: body.progress, irreversible: body.irreversible, ...('checkpoint' in body ? { checkpoint: body.checkpoint ?? null } : {}) })),
    };
  });

  mountRoute(router, ROUTES.succeedJob)(async ({ principal, params, headers, body }) => {
    const target = reportTarget({ jobId: params.jobId, workerId: headers['x-worker-id'], principal, leaseId: body.leaseId });
    return { status: 200, body: await jobs.succeed(target, body.result, body.durationMs) };
  });

  mountRoute(router, ROUTES.failJob)(async ({ principal, params, headers, body }) => {
    const target = reportTarget({ jobId: params.jobId, workerId: headers['x-worker-id'], principal, leaseId: body.leaseId });
    return { status: 200, body: toFailWire(await jobs.fail(target, body.error, body.durationMs)) };
  });

  mountRoute(router, ROUTES.snoozeJob)(async ({ principal, params, headers, body }) => {
    const target = reportTarget({ jobId: params.jobId, workerId: headers['x-worker-id'], principal, leaseId: body.leaseId });
    return { status: 200, body: toSnoozeWire(await jobs.snooze(target, body.seconds, body.durationMs)) };
  });

  // Up to 100 reports, each validated and judged on its own; 200 with one result per report, in order.
  mountRoute(router, ROUTES.reportJobs)(async ({ principal, headers, body }) => {
    const reports: (BatchReport | AppError)[] = body.reports.map((item, index) => {
      const parsed = parseBatchItem(batchReportItem, item, `body.reports.${index}`);
      return parsed instanceof AppError ? parsed : toBatchReport(parsed);
    });
    const results = await jobs.reportBatch({ workerId: headers['x-worker-id'], principal, reports });
    const jobIdOf = (i: number): string | null => {
      const item = body.reports[i];
      const id = typeof item === 'object' && item !== null ? (item as { jobId?: unknown }).jobId : undefined;
      return typeof id === 'string' ? id : null;
    };
    const wire: BatchReportWire[] = results.map((r, i) =>
      'error' in r ? { jobId: r.jobId ?? jobIdOf(i), ...errorItem(r.error) } : { jobId: r.jobId, status: r.status },
    );
    return { status: 200, body: { results: wire } };
  });

  mountRoute(router, ROUTES.cancelJob)(async ({ principal, params }) => ({ status: 200, body: await jobs.cancel(principal, params.jobId) }));

  // A malformed id is just an id that does not exist: same answer, nothing revealed (the schema takes any string).
  mountRoute(router, ROUTES.getJob)(async ({ principal, params, query, res }) => {
    // A held answer ends early when the caller hangs up.
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const job = await jobs.getJob(principal, params.jobId, { waitMs: (query.wait ?? 0) * 1000, signal: gone.signal });
    return { status: 200, body: toJobWire(job) };
  });

  return router;
}
