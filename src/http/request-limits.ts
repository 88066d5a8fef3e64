import { Router, type Request, type RequestHandler } from 'express';

import { MAX_JOB_PAYLOAD_BYTES } from '../contract/jobs';
import { ROUTES } from '../contract/routes';
import { PayloadTooLargeError } from '../errors';
import { requirePermission } from './auth';
import { jsonBodyReader } from './body';
import { rateLimit, TokenBuckets } from './rate-limit';

// The limit is part of the contract (docs/api.md states it); re-exported for the guards' callers.
export { MAX_JOB_PAYLOAD_BYTES };

export interface RequestLimits {
  /** Jobs enqueued per minute per token (sub + role; a batch counts its jobs); 0 or absent: no limit. */
  enqueuePerMinute?: number;
  /** Lease calls per minute per token (sub + role); 0 or absent: no limit. */
  leasePerMinute?: number;
  /** Milliseconds clock for the buckets (tests). */
  now?: () => number;
}

/** The items of a batch enqueue body, when it has the shape; the route validates it fully. */
function batchItems(req: Request): unknown[] {
  const body: unknown = req.body;
  const jobs = typeof body === 'object' && body !== null ? (body as { jobs?: unknown }).jobs : undefined;
  return Array.isArray(jobs) ? jobs : [];
}

function checkPayloadSize(item: unknown, field: string): void {
  if (typeof item !== 'object' || item === null || !('payload' in item)) return;
  const bytes = Buffer.byteLength(JSON.stringify((item as { payload: unknown }).payload) ?? '');
  if (bytes > MAX_JOB_PAYLOAD_BYTES) {
    throw new PayloadTooLargeError(`${field} is ${bytes} bytes as JSON; at most ${MAX_JOB_PAYLOAD_BYTES} are accepted`);
  }
}

/** 413 `payload_too_large` when an enqueued payload, as JSON, exceeds MAX_JOB_PAYLOAD_BYTES. */
export const limitJobPayloadSize: RequestHandler = (req, _res, next) => {
  checkPayloadSize(req.body, 'the payload');
  next();
};

/** The same for every job of a batch: one payload over the limit refuses the whole batch. */
export const limitBatchPayloadSizes: RequestHandler = (req, _res, next) => {
  batchItems(req).forEach((item, index) => checkPayloadSize(item, `the payload of jobs[${index}]`));
  next();
};

/**
 * Guards that run before the job routes: per-token rate limits on enqueue and lease, and the payload
 * size limit on enqueue. Each checks the permission first, so a caller without it gets the route's
 * 403, not a 429 or 413, and its body is not read.
 */
export function requestLimitRoutes(limits: RequestLimits = {}): Router {
  const router = Router();
  const clock = limits.now ? { now: limits.now } : {};
  const enqueueBuckets = limits.enqueuePerMinute ? new TokenBuckets({ perMinute: limits.enqueuePerMinute, ...clock }) : undefined;
  const leaseBuckets = limits.leasePerMinute ? new TokenBuckets({ perMinute: limits.leasePerMinute, ...clock }) : undefined;

  const enqueue = requirePermission('jobs:enqueue');
  // The body is read after the permission and the (per-call) rate limit; a batch's cost needs its body.
  // Each read as its route's contract says (the batch's items are judged one by one by the route).
  router.post('/jobs', enqueue, ...(enqueueBuckets ? [rateLimit(enqueueBuckets)] : []), jsonBodyReader(ROUTES.enqueueJob.body), limitJobPayloadSize);
  router.post('/jobs/batch', enqueue, jsonBodyReader(ROUTES.enqueueJobs.body), ...(enqueueBuckets ? [rateLimit(enqueueBuckets, (req) => batchItems(req).length)] : []), limitBatchPayloadSizes);
  if (leaseBuckets) router.get('/jobs/lease', requirePermission('jobs:work'), rateLimit(leaseBuckets));
  return router;
}
