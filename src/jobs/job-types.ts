import { z } from 'zod';

import { defineJobType } from '../model/job-type';

/**
 * Every job type the service knows. Adding a type is one entry here (plus its handler in
 * src/worker/handlers). Payload schemas are strict: unknown fields and wrong types are rejected.
 */
export const thumbnailCreate = defineJobType({
  name: 'thumbnail.create',
  payload: z.strictObject({
    assetId: z.string().min(1).max(128),
    versionNumber: z.number().int().min(1),
    sizes: z.array(z.number().int().min(1).max(4096)).min(1).max(16).optional(),
  }),
  policy: { maxAttempts: 3, timeoutSeconds: 300, concurrencyLimit: null, backoffBaseSeconds: 5, backoffCapSeconds: 600 },
});

export const payoutExecute = defineJobType({
  name: 'payout.execute',
  payload: z.strictObject({
    batchId: z.string().min(1).max(128),
    escrowId: z.string().min(1).max(128),
    isRetry: z.boolean().optional(),
  }),
  policy: { maxAttempts: 10, timeoutSeconds: 60, concurrencyLimit: 5, backoffBaseSeconds: 2, backoffCapSeconds: 300 },
});

/**
 * Does nothing (optionally waits): for benchmarks, fault drills and checking a deployment end to end
 * without touching assets or money.
 */
export const noop = defineJobType({
  name: 'noop',
  payload: z.strictObject({
    /** How long the handler waits before succeeding, honouring its abort signal. */
    sleepMs: z.number().int().min(0).max(60_000).optional(),
    /** Items to report as failed: the job then succeeds with a partial result. */
    failItems: z.array(z.string().min(1).max(200)).max(100).optional(),
    /**
     * Fail on demand (after sleepMs), to watch retries and the dead letter without waiting for a
     * timeout: `retryable` fails every attempt (retried with backoff, then `dlq`), `permanent` fails
     * at once (`failed`, no retry).
     */
    fail: z.enum(['retryable', 'permanent']).optional(),
    /**
     * Resumable work, to watch checkpoints: sleepMs is split into this many steps; after each a
     * checkpoint `{ step }` is saved, and a later run (after a crash, a retry) resumes after the
     * last saved step. The result says where it resumed (`resumedFrom`).
     */
    steps: z.number().int().min(1).max(100).optional(),
  }),
  policy: { maxAttempts: 3, timeoutSeconds: 30, concurrencyLimit: null, backoffBaseSeconds: 1, backoffCapSeconds: 30 },
});

export const JOB_TYPES = [thumbnailCreate, payoutExecute, noop] as const;

export type ThumbnailPayload = z.infer<typeof thumbnailCreate.payload>;
export type PayoutPayload = z.infer<typeof payoutExecute.payload>;
export type NoopPayload = z.infer<typeof noop.payload>;
