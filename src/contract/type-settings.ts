import { z } from 'zod';

import { MAX_CONCURRENCY_LIMIT, MAX_RATE_LIMIT_JOBS, MAX_RATE_LIMIT_PER_SECONDS } from '../model/job-type';
import { statusCounts } from './admin';

/** `/admin/types`: each registered type's effective policy, pause and counts; run-time settings. */

export const rateLimit = z
  .strictObject({
    jobs: z.number().int().min(1).max(MAX_RATE_LIMIT_JOBS),
    perSeconds: z.number().int().min(1).max(MAX_RATE_LIMIT_PER_SECONDS),
  })
  .meta({ description: 'At most `jobs` leases of the type in any window of `perSeconds`, across all workers and API instances.' });

const limit = z.number().int().min(1).max(MAX_CONCURRENCY_LIMIT);

export const typePolicy = z
  .strictObject({
    maxAttempts: z.number().int().min(1),
    timeoutSeconds: z.number().min(0),
    concurrencyLimit: limit.nullable().meta({ description: 'Jobs of the type leased at once, across all workers (null: no limit).' }),
    keyConcurrencyLimit: limit.nullable().meta({ description: 'Jobs of the type with one concurrencyKey leased at once (null: no limit).' }),
    rateLimit: rateLimit.nullable(),
    backoffBaseSeconds: z.number().min(0),
    backoffCapSeconds: z.number().min(0),
  })
  .meta({ description: 'The effective policy: run-time settings over JOB_POLICY_OVERRIDES over the registry.' });

export const typeOverrides = z
  .strictObject({
    paused: z.boolean().optional(),
    concurrencyLimit: limit.optional(),
    keyConcurrencyLimit: limit.optional(),
    rateLimit: rateLimit.optional(),
  })
  .meta({ description: 'The run-time settings stored for the type (PATCH /admin/types/{type}); a field absent falls back to the environment and the registry.' });

export const jobTypeEntry = z
  .strictObject({
    type: z.string(),
    policy: typePolicy,
    paused: z.boolean().meta({ description: 'No job of a paused type is leased; enqueues are still accepted and leased jobs finish normally.' }),
    counts: statusCounts.meta({ description: "The type's jobs per status, now (a tenant token: its tenant's only)." }),
    overrides: typeOverrides,
  })
  .meta({ description: 'A registered job type, as it is now.' });

export const jobTypeList = z.strictObject({ data: z.array(jobTypeEntry).meta({ description: 'Every registered type, in registry order.' }) });

export const jobTypeParams = z.object({ type: z.string().min(1).max(128).meta({ description: 'A registered job type.', examples: ['noop'] }) });

export const updateJobTypeRequest = z
  .strictObject({
    paused: z.boolean().nullable().optional().meta({ description: 'true: pause; false or null: resume.' }),
    concurrencyLimit: limit.nullable().optional(),
    keyConcurrencyLimit: limit.nullable().optional(),
    rateLimit: rateLimit.nullable().optional(),
  })
  .meta({ description: 'Any of the fields; a value sets the run-time override, `null` removes it (the environment and the registry apply again). Omitted fields are left as they are.' });
