import { Router, type Request } from 'express';
import { z } from 'zod';

import { AppError, ValidationError, type FieldError } from '../errors';
import type { Job } from '../model/job';
import { MAX_BATCH, type EnqueueInput, type JobService, type ReportTarget } from '../jobs/job-service';
import { requirePermission } from './auth';
import { readJsonBody } from './body';
import { principalOf } from './request-context';
import { parseRequest } from './validation';

const jobIdParams = z.object({ jobId: z.string().regex(/^job_[0-9a-f]{24}$/, 'must be a job id (job_ + 24 hex digits)') });

function errorItem(err: AppError): Record<string, unknown> {
  return { error: { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) } };
}
const workerIdHeader = z.object({
  'x-worker-id': z
    .string({ error: 'X-Worker-Id header is required' })
    .regex(/^[\x21-\x7e]{5,128}$/, 'X-Worker-Id must be 5-128 printable characters'),
});
const leaseId = z.string().min(1).max(128).optional();

const jobId = z.string().regex(/^job_[0-9a-f]{24}$/, 'must be a job id (job_ + 24 hex digits)');

const enqueueBody = z.strictObject({
  type: z.string({ error: 'type must be a string' }).min(1).max(128),
  payload: z.unknown().optional(),
  priority: z.number().int().min(0).max(100).optional(),
  scheduleAt: z.iso.datetime({ offset: true, error: 'scheduleAt must be an ISO-8601 date-time' }).optional(),
  maxAttempts: z.number().int().min(1).max(1_000).optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
  dependsOn: z.array(jobId).min(1).max(100).optional(),
});
type EnqueueBody = z.infer<typeof enqueueBody>;

const batchBody = z.strictObject({
  // Items are checked one by one below, so one bad item does not refuse the others.
  jobs: z.array(z.unknown()).min(1).max(MAX_BATCH, `at most ${MAX_BATCH} jobs per batch`),
});

function toEnqueueInput(body: EnqueueBody): EnqueueInput {
  return {
    type: body.type,
    payload: body.payload,
    ...(body.priority === undefined ? {} : { priority: body.priority }),
    ...(body.scheduleAt === undefined ? {} : { scheduleAt: new Date(body.scheduleAt) }),
    ...(body.maxAttempts === undefined ? {} : { maxAttempts: body.maxAttempts }),
    ...(body.idempotencyKey === undefined ? {} : { idempotencyKey: body.idempotencyKey }),
    ...(body.dependsOn === undefined ? {} : { dependsOn: body.dependsOn }),
  };
}

function enqueueAnswer(job: Job): Record<string, unknown> {
  return { jobId: job.jobId, status: job.status, type: job.type, nextRunAt: job.nextRunAt, attempt: job.attempt };
}

const leaseQuery = z.object({
  limit: z
    .string()
    .regex(/^\d+$/, 'limit must be a whole number from 1 to 100')
    .transform(Number)
    .pipe(z.number().int().min(1, 'limit must be from 1 to 100').max(100, 'limit must be from 1 to 100'))
    .optional(),
  wait: z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'wait must be a number of seconds from 0 to 30')
    .transform(Number)
    .pipe(z.number().min(0).max(30, 'wait must be at most 30 seconds'))
    .optional(),
  type: z
    .string()
    .max(2_000)
    .transform((raw) => [...new Set(raw.split(',').map((t) => t.trim()).filter(Boolean))])
    .optional(),
});

const durationMs = z.number().min(0).max(7 * 24 * 3_600_000).optional();
const heartbeatBody = z.strictObject({
  leaseId,
  progress: z.number().min(0).max(100).optional(),
  // The handler is about to do what cannot be undone: recorded only while no cancel is requested.
  irreversible: z.boolean().optional(),
});
const succeedBody = z.strictObject({ leaseId, result: z.unknown().optional(), durationMs });
const failBody = z.strictObject({
  leaseId,
  durationMs,
  error: z.strictObject({
    message: z.string().min(1).max(10_000),
    code: z.string().min(1).max(200).optional(),
    retryable: z.boolean().optional(),
  }),
});

function reportTarget(req: Request, body: { leaseId?: string | undefined }): ReportTarget {
  const { jobId } = parseRequest(jobIdParams, req.params, 'params');
  const headers = parseRequest(workerIdHeader, req.headers, 'headers');
  return {
    jobId,
    workerId: headers['x-worker-id'],
    principal: principalOf(req),
    ...(body.leaseId === undefined ? {} : { leaseId: body.leaseId }),
  };
}

/** Enqueue, lease, report, cancel and read jobs (API.md). Each route maps onto one JobService call. */
export function jobRoutes(deps: { jobs: JobService }): Router {
  const { jobs } = deps;
  const router = Router();

  router.post('/jobs', requirePermission('jobs:enqueue'), readJsonBody, async (req, res) => {
    const body = parseRequest(enqueueBody, req.body, 'body');
    const { job, created } = await jobs.enqueue(principalOf(req), toEnqueueInput(body));
    res.status(created ? 201 : 200).json(enqueueAnswer(job));
  });

  // Up to 1,000 jobs, each validated on its own; 200 with one result per job, in request order.
  router.post('/jobs/batch', requirePermission('jobs:enqueue'), readJsonBody, async (req, res) => {
    const { jobs: items } = parseRequest(batchBody, req.body, 'body');
    const inputs: (EnqueueInput | AppError)[] = items.map((item, index) => {
      try {
        return toEnqueueInput(parseRequest(enqueueBody, item, 'body'));
      } catch (err) {
        if (err instanceof ValidationError) {
          const details = (err.details as FieldError[] | undefined)?.map((d) => ({ ...d, field: d.field.replace(/^body/, `body.jobs.${index}`) }));
          return new ValidationError(err.message, details);
        }
        throw err;
      }
    });
    const valid = inputs.flatMap((input, index) => (input instanceof AppError ? [] : [{ input, index }]));
    const outcomes = await jobs.enqueueBatch(principalOf(req), valid.map((v) => v.input));
    const results: Record<string, unknown>[] = inputs.map((input) => (input instanceof AppError ? errorItem(input) : {}));
    for (const [i, outcome] of outcomes.entries()) {
      results[valid[i]!.index] = 'error' in outcome ? errorItem(outcome.error) : { ...enqueueAnswer(outcome.job), created: outcome.created };
    }
    const count = (test: (r: Record<string, unknown>) => boolean) => results.filter(test).length;
    res.json({
      created: count((r) => r.created === true),
      existing: count((r) => r.created === false),
      rejected: count((r) => r.error !== undefined),
      results,
    });
  });

  router.get('/jobs/lease', requirePermission('jobs:work'), async (req, res) => {
    const { 'x-worker-id': workerId } = parseRequest(workerIdHeader, req.headers, 'headers');
    const query = parseRequest(leaseQuery, req.query, 'query');
    // A long-poll ends early when the worker hangs up.
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const result = await jobs.lease({
      workerId,
      types: query.type && query.type.length > 0 ? query.type : null,
      limit: query.limit ?? 1,
      waitMs: (query.wait ?? 0) * 1000,
      signal: gone.signal,
      ...(principalOf(req).tenant === undefined ? {} : { tenant: principalOf(req).tenant }),
    });
    res.json(result);
  });

  router.post('/jobs/:jobId/heartbeat', requirePermission('jobs:work'), readJsonBody, async (req, res) => {
    const body = parseRequest(heartbeatBody, req.body ?? {}, 'body');
    res.json(await jobs.heartbeat(reportTarget(req, body), { progress: body.progress, irreversible: body.irreversible }));
  });

  router.post('/jobs/:jobId/succeed', requirePermission('jobs:work'), readJsonBody, async (req, res) => {
    const body = parseRequest(succeedBody, req.body ?? {}, 'body');
    res.json(await jobs.succeed(reportTarget(req, body), body.result, body.durationMs));
  });

  router.post('/jobs/:jobId/fail', requirePermission('jobs:work'), readJsonBody, async (req, res) => {
    const body = parseRequest(failBody, req.body, 'body');
    res.json(await jobs.fail(reportTarget(req, body), body.error, body.durationMs));
  });

  router.post('/jobs/:jobId/cancel', requirePermission('jobs:cancel'), async (req, res) => {
    const { jobId } = parseRequest(jobIdParams, req.params, 'params');
    res.json(await jobs.cancel(principalOf(req), jobId));
  });

  router.get('/jobs/:jobId', requirePermission('jobs:read'), async (req, res) => {
    const parsed = jobIdParams.safeParse(req.params);
    // A malformed id is just an id that does not exist: same answer, nothing revealed.
    const jobId = parsed.success ? parsed.data.jobId : String(req.params.jobId);
    res.json(await jobs.getJob(principalOf(req), jobId));
  });

  return router;
}
