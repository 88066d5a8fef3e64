import { z } from 'zod';

import { CATCH_UP_POLICIES } from '../model/schedule';
import { cronProblem, timeZoneProblem } from '../schedules/cron';
import { DEFAULT_CATCH_UP, DEFAULT_TIME_ZONE, SCHEDULE_NAME } from '../schedules/schedule';
import { anyJson, jobId, nullableWireDate, wireDate } from './schema';

/**
 * `/admin/schedules`. What a cron expression, a time zone and a schedule name are is decided by
 * the schedules module's pure checks (cron-parser and Intl), so the contract validates with them
 * rather than with a copy of the rules.
 */

const NAME_RULE = 'name must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit';

export const scheduleName = z.string({ error: 'name must be a string' }).regex(SCHEDULE_NAME, NAME_RULE).meta({ examples: ['nightly-reindex'] });

const cron = z
  .string({ error: 'cron must be a string' })
  .max(200, 'cron must be at most 200 characters')
  .superRefine((value, ctx) => {
    const problem = cronProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({
    description:
      'Five fields (minute hour day-of-month month day-of-week), six with seconds first, or a predefined expression such as `@daily`; `L`, `#` and `H` (hashed by the schedule name) are supported.',
    examples: ['0 3 * * *', '*/15 * * * *'],
  });

const timeZone = z
  .string({ error: 'timeZone must be a string' })
  // Each check its own message: the string's `error` would otherwise answer for these too.
  .min(1, 'timeZone must not be empty')
  .max(64, 'timeZone must be at most 64 characters (an IANA zone name)')
  .superRefine((value, ctx) => {
    const problem = timeZoneProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({ description: 'IANA time zone the cron expression is read in; DST is honoured. A UTC offset is refused (write `Etc/GMT-2` for +02:00).', examples: ['Europe/Berlin'] });

// As POST /jobs: any string, and one that is not registered is a 404.
const type = z.string({ error: 'type must be a string' }).meta({ description: 'A registered job type (else 404 `job_type_not_found`).' });
const catchUp = z.enum(CATCH_UP_POLICIES, { error: `catchUp must be one of ${CATCH_UP_POLICIES.join(', ')}` }).meta({
  description:
    'What happens to occurrences missed beyond the misfire grace (SCHEDULER_MISFIRE_GRACE_MS), e.g. after a restart: `none` skips them (the next future one runs), `last` enqueues the most recent one once.',
});
const priority = z.number().int().min(0).max(100).nullable().meta({ description: "The jobs' priority; null: the default (50)." });
const paused = z.boolean({ error: 'paused must be true or false' });
const payload = anyJson.optional().meta({ description: 'The jobs\' payload, validated against the type exactly as by `POST /jobs`.' });

export const createScheduleRequest = z.strictObject({
  name: scheduleName,
  type,
  payload,
  cron,
  timeZone: timeZone.default(DEFAULT_TIME_ZONE),
  paused: paused.default(false),
  catchUp: catchUp.default(DEFAULT_CATCH_UP),
  priority: priority.optional(),
});

export const updateScheduleRequest = z
  .strictObject({
    type: type.optional(),
    payload,
    cron: cron.optional(),
    timeZone: timeZone.optional(),
    paused: paused.optional(),
    catchUp: catchUp.optional(),
    priority: priority.optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), {
    message: 'give at least one field to change',
    // Only for an otherwise valid body: an unknown field is reported alone.
    when: (payload) => payload.issues.length === 0,
  })
  .meta({
    description:
      'Any of the fields (at least one). Pausing clears nextRunAt; resuming or re-timing computes it from now (occurrences missed while paused are not caught up).',
  });

export const scheduleNameParams = z.object({ name: scheduleName });

export const schedule = z
  .strictObject({
    name: scheduleName,
    type: z.string(),
    payload: anyJson,
    cron: z.string(),
    timeZone: z.string(),
    paused: z.boolean(),
    catchUp: z.enum(CATCH_UP_POLICIES),
    priority: z.number().int().min(0).max(100).nullable(),
    nextRunAt: nullableWireDate.meta({ description: 'The next occurrence that will be enqueued; null while paused.' }),
    lastRunAt: nullableWireDate.meta({ description: 'The occurrence whose job was enqueued last.' }),
    lastJobId: jobId.nullable(),
    lastError: z
      .strictObject({ code: z.string().optional(), message: z.string(), at: wireDate })
      .nullable()
      .meta({ description: 'Why the last occurrence could not be enqueued (it was skipped).' }),
    createdBy: z.string(),
    tenant: z.string().nullable().meta({ description: 'The tenant of the token that created it; its jobs carry that tenant.' }),
    createdAt: wireDate,
    updatedAt: wireDate,
  })
  .meta({ description: 'A recurring enqueue. Each occurrence is enqueued exactly once across all API instances; its job has `createdBy` `schedule:<name>`.' });

export const scheduleList = z.strictObject({ data: z.array(schedule).meta({ description: 'By name.' }) });
