import { z } from 'zod';

import { IMAGE_CONTENT_TYPES, MAX_ASSET_BYTES } from '../model/asset';
import { ROLES } from '../model/principal';
import type { ErrorCode } from '../errors';
import { JOB_STATUSES } from '../model/job';
import type { JobTypeDefinition } from '../model/job-type';
import { JOB_TYPES } from '../jobs/job-types';
import { escrowInputSchema } from '../payouts/escrow-input';
import { MAX_JOB_PAYLOAD_BYTES } from './request-limits';
import { CATCH_UP_POLICIES } from '../model/schedule';
import { DEFAULT_CATCH_UP, DEFAULT_TIME_ZONE, SCHEDULE_NAME } from '../schedules/schedule';
import { MAX_SCHEDULES_LISTED } from '../schedules/schedule-service';
import { DEFAULT_PER_PAGE, MAX_PER_PAGE, MAX_THROUGHPUT_MINUTES } from './admin-routes';

/**
 * The OpenAPI 3.1 description of every route the service serves (test/integration/openapi.test.ts
 * fails when a route and this document disagree). Payload and escrow schemas are generated from the
 * zod schemas that validate them, so they cannot drift; the rest mirrors the routers and API.md.
 */

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Every error code, checked against ErrorCode at compile time in both directions. */
const ERROR_CODES = [
  'bad_request',
  'validation_error',
  'payload_invalid',
  'unauthenticated',
  'permission_denied',
  'access_denied',
  'not_found',
  'job_not_found',
  'job_type_not_found',
  'asset_not_found',
  'escrow_not_found',
  'lease_conflict',
  'invalid_state',
  'conflict',
  'payload_too_large',
  'request_timeout',
  'unsupported_media_type',
  'rate_limited',
  'unavailable',
  'internal',
] as const satisfies readonly ErrorCode[];
type MissingErrorCode = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>;
const everyErrorCodeDocumented: [MissingErrorCode] extends [never] ? true : MissingErrorCode = true;
void everyErrorCodeDocumented;

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: JsonObject): JsonObject => ({ oneOf: [schema, { type: 'null' }] });
const dateTime: JsonObject = { type: 'string', format: 'date-time' };
const nullableDateTime: JsonObject = { type: ['string', 'null'], format: 'date-time' };
const jobId: JsonObject = { type: 'string', pattern: '^job_[0-9a-f]{24}$', examples: ['job_65f0c2a1b3d4e5f60718293a'] };
const assetId: JsonObject = { type: 'string', pattern: '^asset_[0-9a-f]{24}$' };
const anyValue: JsonObject = { description: 'Any JSON value.' };

function jsonBody(schema: JsonObject, description?: string): JsonObject {
  return { ...(description ? { description } : {}), content: { 'application/json': { schema } } };
}

/**
 * A request body with ready-to-send examples: /docs' "Try it out" starts from the first one (its
 * generated sample would leave out `type`), and test/integration/openapi.test.ts sends every one.
 */
function jsonBodyWithExamples(schema: JsonObject, examples: Record<string, { summary: string; value: Json }>): JsonObject {
  return { content: { 'application/json': { schema, examples } } };
}

const ENQUEUE_EXAMPLES: Record<string, { summary: string; value: Json }> = {
  noop: { summary: 'noop: succeeds after a second', value: { type: 'noop', payload: { sleepMs: 1000 } } },
  noopFailing: { summary: 'noop that fails every attempt: retried, then dead-lettered', value: { type: 'noop', payload: { fail: 'retryable' }, maxAttempts: 2 } },
  scheduled: { summary: 'noop that runs at a given time (scheduleAt)', value: { type: 'noop', payload: {}, scheduleAt: '2030-01-01T09:00:00Z', priority: 80 } },
  thumbnail: {
    summary: 'thumbnail.create for an uploaded asset (POST /assets gives the id)',
    value: { type: 'thumbnail.create', payload: { assetId: 'asset_65f0c2a1b3d4e5f60718293a', versionNumber: 1, sizes: [128, 512] } },
  },
  payout: {
    summary: 'payout.execute for an escrow (POST /escrows gives the id), at most once per key',
    value: { type: 'payout.execute', payload: { batchId: 'batch_1', escrowId: 'escrow_65f0c2a1b3d4e5f60718293a' }, idempotencyKey: 'payout:escrow_65f0c2a1b3d4e5f60718293a' },
  },
};

/** Turns a zod schema into a JSON Schema 2020-12 object for components.schemas. */
function fromZod(schema: z.ZodType): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as JsonObject;
  return rest;
}

function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

// ---- Errors ----------------------------------------------------------------------------------

const ERROR_RESPONSES: Record<string, { status: string; description: string; codes: string[] }> = {
  BadRequest: { status: '400', description: 'Malformed JSON or an unreadable body.', codes: ['bad_request'] },
  Unauthenticated: {
    status: '401',
    description: 'Missing, malformed, expired or wrongly signed token (including alg "none").',
    codes: ['unauthenticated'],
  },
  PermissionDenied: { status: '403', description: 'Valid token, but its role may not do this.', codes: ['permission_denied'] },
  PayloadTooLarge: { status: '413', description: 'The body is over the size limit.', codes: ['payload_too_large'] },
  UnsupportedMediaType: { status: '415', description: 'Not an accepted media type or charset.', codes: ['unsupported_media_type'] },
  ValidationFailed: {
    status: '422',
    description: 'Input validation failed; `details` lists every failing field as `{ field, message }`.',
    codes: ['validation_error'],
  },
  Unavailable: { status: '503', description: 'The database does not answer; retry later.', codes: ['unavailable'] },
};

function errorResponse(description: string, codes: readonly string[]): JsonObject {
  return {
    description: `${description} Error code${codes.length > 1 ? 's' : ''}: ${codes.map((c) => `\`${c}\``).join(', ')}.`,
    content: {
      'application/json': {
        schema: ref('Error'),
        example: { error: { code: codes[0]!, message: description } },
      },
    },
  };
}

type ErrorResponseName = keyof typeof ERROR_RESPONSES;

/** Shared error responses by name, plus operation-specific ones as [status, description, codes]. */
function errors(shared: ErrorResponseName[], specific: [status: number, description: string, codes: string[]][] = []): JsonObject {
  const out: JsonObject = {};
  for (const name of shared) out[ERROR_RESPONSES[name]!.status] = { $ref: `#/components/responses/${name}` };
  for (const [status, description, codes] of specific) out[String(status)] = errorResponse(description, codes);
  return out;
}

// Every authenticated route can answer these.
const AUTHED: ErrorResponseName[] = ['Unauthenticated', 'PermissionDenied', 'Unavailable'];

// ---- Schemas ---------------------------------------------------------------------------------

const statusCounts: JsonObject = {
  type: 'object',
  description: 'Jobs per status; every status key is present (0 when none).',
  properties: Object.fromEntries(JOB_STATUSES.map((s) => [s, { type: 'integer', minimum: 0 }])),
  required: [...JOB_STATUSES],
  additionalProperties: false,
};

function payloadSchemas(types: readonly JobTypeDefinition[]): JsonObject {
  return Object.fromEntries(
    types.map((t) => [`${pascal(t.name)}Payload`, { ...fromZod(t.payload), description: `Payload of \`${t.name}\` (unknown fields are rejected).` }]),
  );
}

function enqueueRequestSchemas(types: readonly JobTypeDefinition[]): JsonObject {
  return Object.fromEntries(
    types.map((t) => [
      `Enqueue${pascal(t.name)}`,
      {
        type: 'object',
        description: `Enqueue a \`${t.name}\` job. Policy: maxAttempts ${t.policy.maxAttempts}, timeoutSeconds ${t.policy.timeoutSeconds}, concurrencyLimit ${t.policy.concurrencyLimit ?? 'none'}.`,
        properties: {
          type: { const: t.name },
          payload: ref(`${pascal(t.name)}Payload`),
          priority: { type: 'integer', minimum: 0, maximum: 100, default: 50, description: 'Higher runs first.' },
          scheduleAt: { ...dateTime, description: 'Delays the first run until then.' },
          maxAttempts: { type: 'integer', minimum: 1, maximum: 1000, description: `Defaults to the type's policy (${t.policy.maxAttempts}).` },
          idempotencyKey: {
            type: 'string',
            minLength: 1,
            maxLength: 200,
            description: 'A second enqueue with the same key and type returns the first job (200) instead of creating another.',
          },
          dependsOn: {
            type: 'array',
            items: jobId,
            minItems: 1,
            maxItems: 100,
            uniqueItems: true,
            description:
              'Existing jobs that must all succeed first: the job waits (status `waiting`) until then, and is cancelled (lastError `dependency_failed`) if one ends failed, dlq or cancelled. Unknown ids: 422.',
          },
        },
        required: ['type', 'payload'],
        additionalProperties: false,
      },
    ]),
  );
}

// ---- Schedules (/admin/schedules) -----------------------------------------------------------

const scheduleName: JsonObject = { type: 'string', pattern: SCHEDULE_NAME.source, examples: ['nightly-reindex'] };
const cronField: JsonObject = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  description: 'Five fields (minute hour day-of-month month day-of-week), six with seconds first, or a predefined expression such as `@daily`; `L`, `#` and `H` (hashed by the schedule name) are supported.',
  examples: ['0 3 * * *', '*/15 * * * *'],
};
const timeZoneField: JsonObject = { type: 'string', minLength: 1, maxLength: 64, description: 'IANA time zone the cron expression is read in; DST is honoured.', examples: ['Europe/Berlin'] };
const catchUpField: JsonObject = {
  type: 'string',
  enum: [...CATCH_UP_POLICIES],
  description: 'What happens to occurrences missed beyond the misfire grace (SCHEDULER_MISFIRE_GRACE_MS), e.g. after a restart: `none` skips them (the next future one runs), `last` enqueues the most recent one once.',
};
const schedulePriority: JsonObject = { type: ['integer', 'null'], minimum: 0, maximum: 100, description: "The jobs' priority; null: the default (50)." };

const SCHEDULE_SCHEMAS: JsonObject = {
  Schedule: {
    type: 'object',
    description: 'A recurring enqueue. Each occurrence is enqueued exactly once across all API instances; its job has `createdBy` `schedule:<name>`.',
    properties: {
      name: scheduleName,
      type: { type: 'string', enum: JOB_TYPES.map((t) => t.name) },
      payload: anyValue,
      cron: cronField,
      timeZone: timeZoneField,
      paused: { type: 'boolean' },
      catchUp: catchUpField,
      priority: schedulePriority,
      nextRunAt: { ...nullableDateTime, description: 'The next occurrence that will be enqueued; null while paused.' },
      lastRunAt: { ...nullableDateTime, description: 'The occurrence whose job was enqueued last.' },
      lastJobId: { oneOf: [jobId, { type: 'null' }] },
      lastError: nullable({
        type: 'object',
        description: 'Why the last occurrence could not be enqueued (it was skipped).',
        properties: { code: { type: 'string' }, message: { type: 'string' }, at: dateTime },
        required: ['message', 'at'],
      }),
      createdBy: { type: 'string' },
      tenant: { type: ['string', 'null'], description: 'The tenant of the token that created it; its jobs carry that tenant.' },
      createdAt: dateTime,
      updatedAt: dateTime,
    },
    required: ['name', 'type', 'payload', 'cron', 'timeZone', 'paused', 'catchUp', 'priority', 'nextRunAt', 'lastRunAt', 'lastJobId', 'lastError', 'createdBy', 'tenant', 'createdAt', 'updatedAt'],
    additionalProperties: false,
  },
  ScheduleList: {
    type: 'object',
    properties: { data: { type: 'array', items: ref('Schedule'), description: `By name (at most ${MAX_SCHEDULES_LISTED}).` } },
    required: ['data'],
    additionalProperties: false,
  },
  CreateScheduleRequest: {
    type: 'object',
    description: 'The payload is validated against the type exactly as by POST /jobs.',
    properties: {
      name: scheduleName,
      type: { type: 'string', enum: JOB_TYPES.map((t) => t.name) },
      payload: anyValue,
      cron: cronField,
      timeZone: { ...timeZoneField, default: DEFAULT_TIME_ZONE },
      paused: { type: 'boolean', default: false },
      catchUp: { ...catchUpField, default: DEFAULT_CATCH_UP },
      priority: schedulePriority,
    },
    required: ['name', 'type', 'cron'],
    additionalProperties: false,
  },
  UpdateScheduleRequest: {
    type: 'object',
    description: 'Any of the fields (at least one). Pausing clears nextRunAt; resuming or re-timing computes it from now (occurrences missed while paused are not caught up).',
    properties: {
      type: { type: 'string', enum: JOB_TYPES.map((t) => t.name) },
      payload: anyValue,
      cron: cronField,
      timeZone: timeZoneField,
      paused: { type: 'boolean' },
      catchUp: catchUpField,
      priority: schedulePriority,
    },
    minProperties: 1,
    additionalProperties: false,
  },
};

const scheduleNameParam: JsonObject = { name: 'name', in: 'path', required: true, schema: scheduleName };
const scheduleNotFound: [number, string, string[]] = [404, 'No schedule with this name (or one of another tenant).', ['not_found']];
const scheduleInvalid: [number, string, string[]] = [
  422,
  'A field is invalid (an unparsable cron expression, an unknown time zone, ...), or the payload does not match its type\'s schema.',
  ['validation_error', 'payload_invalid'],
];

const SCHEDULE_PATHS: JsonObject = {
  '/admin/schedules': {
    post: {
      tags: ['admin'],
      operationId: 'createSchedule',
      summary: 'Create a recurring schedule (admin)',
      requestBody: {
        required: true,
        ...jsonBodyWithExamples(ref('CreateScheduleRequest'), {
          nightly: { summary: 'A noop every night at 03:00 Berlin time', value: { name: 'nightly-noop', type: 'noop', payload: {}, cron: '0 3 * * *', timeZone: 'Europe/Berlin' } },
        }),
      },
      responses: {
        '201': jsonBody(ref('Schedule'), 'Created; `nextRunAt` is the first occurrence after now (null when created paused).'),
        ...errors(
          ['BadRequest', ...AUTHED],
          [[404, 'The type is not registered.', ['job_type_not_found']], [409, 'A schedule with this name exists (names are unique across tenants).', ['conflict']], scheduleInvalid],
        ),
      },
    },
    get: {
      tags: ['admin'],
      operationId: 'listSchedules',
      summary: 'List schedules with their next and last runs (admin; a tenant admin sees its tenant\'s)',
      responses: { '200': jsonBody(ref('ScheduleList'), 'Every schedule, by name.'), ...errors(AUTHED) },
    },
  },
  '/admin/schedules/{name}': {
    get: {
      tags: ['admin'],
      operationId: 'getSchedule',
      summary: 'A schedule (admin)',
      parameters: [scheduleNameParam],
      responses: { '200': jsonBody(ref('Schedule'), 'The schedule.'), ...errors([...AUTHED, 'ValidationFailed'], [scheduleNotFound]) },
    },
    patch: {
      tags: ['admin'],
      operationId: 'updateSchedule',
      summary: 'Edit, pause (`{"paused": true}`) or resume (`{"paused": false}`) a schedule (admin)',
      parameters: [scheduleNameParam],
      requestBody: {
        required: true,
        ...jsonBodyWithExamples(ref('UpdateScheduleRequest'), {
          pause: { summary: 'Pause it', value: { paused: true } },
          retime: { summary: 'Run it at 04:30 instead', value: { cron: '30 4 * * *' } },
        }),
      },
      responses: {
        '200': jsonBody(ref('Schedule'), 'The schedule after the edit.'),
        ...errors(
          ['BadRequest', ...AUTHED],
          [
            [404, 'No schedule with this name, or the new type is not registered.', ['not_found', 'job_type_not_found']],
            [409, 'The schedule kept changing during the edit; retry.', ['conflict']],
            scheduleInvalid,
          ],
        ),
      },
    },
    delete: {
      tags: ['admin'],
      operationId: 'deleteSchedule',
      summary: 'Delete a schedule (admin); jobs it already enqueued stay',
      parameters: [scheduleNameParam],
      responses: { '204': { description: 'Deleted.' }, ...errors([...AUTHED, 'ValidationFailed'], [scheduleNotFound]) },
    },
  },
};

const schemas: JsonObject = {
  Error: {
    type: 'object',
    properties: {
      error: {
        type: 'object',
        properties: {
          code: { type: 'string', enum: [...ERROR_CODES] },
          message: { type: 'string' },
          details: { description: 'For validation errors: an array of FieldError.' },
        },
        required: ['code', 'message'],
        additionalProperties: false,
      },
    },
    required: ['error'],
    additionalProperties: false,
  },
  FieldError: {
    type: 'object',
    properties: { field: { type: 'string', examples: ['query.per_page'] }, message: { type: 'string' } },
    required: ['field', 'message'],
  },
  JobStatus: { type: 'string', enum: [...JOB_STATUSES] },
  JobError: {
    type: 'object',
    properties: { code: { type: 'string' }, message: { type: 'string' } },
    required: ['message'],
  },
  AttemptRecord: {
    type: 'object',
    description: 'One lease of the job.',
    properties: {
      attempt: { type: 'integer', minimum: 1 },
      leaseId: { type: 'string' },
      workerId: { type: 'string' },
      leasedAt: dateTime,
      finishedAt: nullableDateTime,
      outcome: { enum: ['succeeded', 'failed', 'expired', 'cancelled', 'abandoned', null] },
      error: nullable(ref('JobError')),
    },
    required: ['attempt', 'leaseId', 'workerId', 'leasedAt', 'finishedAt', 'outcome', 'error'],
  },
  Job: {
    type: 'object',
    description: 'A job document. `payload` matches the schema of its type (see the `*Payload` schemas).',
    properties: {
      jobId,
      type: { type: 'string', enum: JOB_TYPES.map((t) => t.name) },
      status: ref('JobStatus'),
      priority: { type: 'integer', minimum: 0, maximum: 100 },
      payload: anyValue,
      attempt: { type: 'integer', minimum: 0, description: 'Leases since creation (or since the last requeue).' },
      maxAttempts: { type: 'integer', minimum: 1 },
      nextRunAt: dateTime,
      leaseId: { type: ['string', 'null'] },
      leaseExpiresAt: nullableDateTime,
      workerId: { type: ['string', 'null'] },
      progress: { type: 'number', minimum: 0, maximum: 100 },
      result: anyValue,
      lastError: nullable(ref('JobError')),
      attempts: { type: 'array', items: ref('AttemptRecord'), description: 'History, one entry per lease (the last 100).' },
      cancelRequested: { type: 'boolean' },
      idempotencyKey: { type: ['string', 'null'] },
      tenant: { type: ['string', 'null'], description: 'The `tenant` claim of the token that enqueued it.' },
      dependsOn: { type: 'array', items: jobId, description: 'Jobs that must succeed before this one runs.' },
      pendingParents: { type: 'array', items: jobId, description: 'Of dependsOn, those not succeeded yet (while `waiting`).' },
      partial: { type: 'boolean', description: 'Succeeded with a partial result: `result.partial` is true and `result.itemErrors` lists the failed items.' },
      createdBy: { type: 'string', description: 'The `sub` of the token that enqueued it.' },
      createdAt: dateTime,
      updatedAt: dateTime,
      startedAt: nullableDateTime,
      completedAt: nullableDateTime,
    },
    required: [
      'jobId',
      'type',
      'status',
      'priority',
      'payload',
      'attempt',
      'maxAttempts',
      'nextRunAt',
      'leaseExpiresAt',
      'workerId',
      'progress',
      'result',
      'lastError',
      'attempts',
      'createdBy',
      'createdAt',
      'updatedAt',
      'startedAt',
      'completedAt',
    ],
  },
  ...payloadSchemas(JOB_TYPES),
  ...enqueueRequestSchemas(JOB_TYPES),
  EnqueueRequest: {
    oneOf: JOB_TYPES.map((t) => ref(`Enqueue${pascal(t.name)}`)),
    discriminator: {
      propertyName: 'type',
      mapping: Object.fromEntries(JOB_TYPES.map((t) => [t.name, `#/components/schemas/Enqueue${pascal(t.name)}`])),
    },
  },
  EnqueueResponse: {
    type: 'object',
    properties: { jobId, status: ref('JobStatus'), type: { type: 'string' }, nextRunAt: dateTime, attempt: { type: 'integer', minimum: 0 } },
    required: ['jobId', 'status', 'type', 'nextRunAt', 'attempt'],
  },
  LeasedJob: {
    type: 'object',
    properties: {
      jobId,
      type: { type: 'string' },
      payload: anyValue,
      attempt: { type: 'integer', minimum: 1 },
      leaseId: { type: 'string' },
      leaseExpiresAt: dateTime,
    },
    required: ['jobId', 'type', 'payload', 'attempt', 'leaseId', 'leaseExpiresAt'],
  },
  LeaseResponse: {
    type: 'object',
    properties: { leasedAt: dateTime, jobs: { type: 'array', items: ref('LeasedJob') } },
    required: ['leasedAt', 'jobs'],
  },
  HeartbeatRequest: {
    type: 'object',
    properties: { leaseId: { type: 'string', minLength: 1, maxLength: 128 }, progress: { type: 'number', minimum: 0, maximum: 100 } },
    additionalProperties: false,
  },
  HeartbeatResponse: {
    type: 'object',
    properties: { jobId, leaseExpiresAt: dateTime, cancelRequested: { type: 'boolean' } },
    required: ['jobId', 'leaseExpiresAt', 'cancelRequested'],
  },
  SucceedRequest: {
    type: 'object',
    properties: {
      leaseId: { type: 'string', minLength: 1, maxLength: 128 },
      result: anyValue,
      durationMs: { type: 'number', minimum: 0, maximum: 604_800_000, description: 'Handler run time, for job_run_duration_seconds.' },
    },
    additionalProperties: false,
  },
  FailRequest: {
    type: 'object',
    properties: {
      leaseId: { type: 'string', minLength: 1, maxLength: 128 },
      durationMs: { type: 'number', minimum: 0, maximum: 604_800_000 },
      error: {
        type: 'object',
        properties: {
          message: { type: 'string', minLength: 1, maxLength: 10_000 },
          code: { type: 'string', minLength: 1, maxLength: 200 },
          retryable: { type: 'boolean', description: '`false`: the job ends `failed` whatever attempts remain.' },
        },
        required: ['message'],
        additionalProperties: false,
      },
    },
    required: ['error'],
    additionalProperties: false,
  },
  FailResponse: {
    type: 'object',
    properties: { jobId, status: ref('JobStatus'), attempt: { type: 'integer' }, nextRunAt: dateTime },
    required: ['jobId', 'status', 'attempt', 'nextRunAt'],
  },
  JobStatusResponse: {
    type: 'object',
    properties: { jobId, status: ref('JobStatus') },
    required: ['jobId', 'status'],
  },
  PageMeta: {
    type: 'object',
    properties: {
      page: { type: 'integer', minimum: 1 },
      per_page: { type: 'integer', minimum: 1, maximum: MAX_PER_PAGE },
      total: { type: 'integer', minimum: 0, description: 'Jobs (escrows) matching the filters, over all pages.' },
      total_pages: { type: 'integer', minimum: 0, description: 'ceil(total / per_page); 0 when nothing matches.' },
    },
    required: ['page', 'per_page', 'total', 'total_pages'],
    additionalProperties: false,
  },
  QueuePage: {
    type: 'object',
    properties: { meta: ref('PageMeta'), data: { type: 'array', items: ref('Job') } },
    required: ['meta', 'data'],
    additionalProperties: false,
  },
  StatusCounts: statusCounts,
  QueueStats: {
    type: 'object',
    properties: {
      totalJobs: { type: 'integer', minimum: 0 },
      statusCounts: ref('StatusCounts'),
      oldestQueuedJobAgeMs: {
        type: ['integer', 'null'],
        minimum: 0,
        description:
          'How long the longest-waiting due job has been due: now − nextRunAt over jobs in status `queued` with nextRunAt ≤ now (jobs scheduled for later never count); null when no job is due.',
      },
      byType: {
        type: 'object',
        description: 'Every registered type (and any other type present in the collection), each with every status key.',
        additionalProperties: ref('StatusCounts'),
      },
      oldestQueuedJobAgeMsByType: {
        type: 'object',
        description: 'oldestQueuedJobAgeMs per type (null when none of the type is due).',
        additionalProperties: { type: ['integer', 'null'], minimum: 0 },
      },
      scheduled: {
        type: 'integer',
        minimum: 0,
        description: 'Of the `queued` jobs (statusCounts.queued), those not due yet: a future scheduleAt, or waiting out a retry backoff.',
      },
      scheduledByType: { type: 'object', description: '`scheduled` per type.', additionalProperties: { type: 'integer', minimum: 0 } },
      partialSucceeded: { type: 'integer', minimum: 0, description: 'Of the succeeded jobs, those with a partial result (some items failed).' },
      partialSucceededByType: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } },
      generatedAt: { ...dateTime, description: 'The clock reading the ages are computed against.' },
    },
    required: ['totalJobs', 'statusCounts', 'oldestQueuedJobAgeMs', 'byType', 'oldestQueuedJobAgeMsByType', 'scheduled', 'scheduledByType', 'partialSucceeded', 'partialSucceededByType', 'generatedAt'],
    additionalProperties: false,
  },
  Throughput: {
    type: 'object',
    properties: {
      from: { ...dateTime, description: 'Start of the first bucket (inclusive).' },
      to: { ...dateTime, description: 'End of the last bucket (exclusive).' },
      bucketSeconds: { type: 'integer', const: 60 },
      buckets: {
        type: 'array',
        description: 'One per UTC minute, oldest first; the last is the current, partial minute.',
        items: {
          type: 'object',
          properties: {
            start: dateTime,
            succeeded: { type: 'integer', minimum: 0, description: 'Jobs whose completedAt falls in the minute and that succeeded.' },
            failed: { type: 'integer', minimum: 0, description: 'Jobs that ended `failed` in the minute.' },
            dlq: { type: 'integer', minimum: 0, description: 'Jobs dead-lettered in the minute.' },
          },
          required: ['start', 'succeeded', 'failed', 'dlq'],
          additionalProperties: false,
        },
      },
    },
    required: ['from', 'to', 'bucketSeconds', 'buckets'],
    additionalProperties: false,
  },
  RequeueResponse: {
    type: 'object',
    properties: { jobId, status: { const: 'queued' } },
    required: ['jobId', 'status'],
  },
  BatchEnqueueRequest: {
    type: 'object',
    properties: { jobs: { type: 'array', minItems: 1, maxItems: 1000, items: ref('EnqueueRequest') } },
    required: ['jobs'],
    additionalProperties: false,
  },
  BatchEnqueueResponse: {
    type: 'object',
    properties: {
      created: { type: 'integer', minimum: 0 },
      existing: { type: 'integer', minimum: 0, description: 'Items whose idempotency key returned an earlier job.' },
      rejected: { type: 'integer', minimum: 0 },
      results: {
        type: 'array',
        description: 'One entry per requested job, in order: the job, or the error that refused it.',
        items: {
          oneOf: [
            {
              type: 'object',
              properties: { jobId, status: ref('JobStatus'), type: { type: 'string' }, nextRunAt: dateTime, attempt: { type: 'integer' }, created: { type: 'boolean' } },
              required: ['jobId', 'status', 'type', 'nextRunAt', 'attempt', 'created'],
            },
            {
              type: 'object',
              properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, details: anyValue }, required: ['code', 'message'] } },
              required: ['error'],
            },
          ],
        },
      },
    },
    required: ['created', 'existing', 'rejected', 'results'],
  },
  Principal: {
    type: 'object',
    properties: { sub: { type: 'string' }, role: { type: 'string', enum: [...ROLES] }, tenant: { type: 'string', description: 'Present when the token has a tenant claim.' } },
    required: ['sub', 'role'],
    additionalProperties: false,
  },
  UploadReceipt: {
    type: 'object',
    properties: {
      assetId,
      versionNumber: { type: 'integer', minimum: 1 },
      contentType: { type: 'string', enum: [...IMAGE_CONTENT_TYPES] },
      size: { type: 'integer', minimum: 1 },
    },
    required: ['assetId', 'versionNumber', 'contentType', 'size'],
  },
  Asset: {
    type: 'object',
    properties: {
      assetId,
      filename: { type: ['string', 'null'] },
      contentType: { type: 'string', enum: [...IMAGE_CONTENT_TYPES] },
      size: { type: 'integer', minimum: 1 },
      versionNumber: { type: 'integer', minimum: 1 },
      processed: { type: 'boolean', description: 'Thumbnails exist for the current version; a new version resets it.' },
      thumbnailAssetIds: { type: 'array', items: assetId },
      derivedFrom: nullable({
        type: 'object',
        properties: { assetId, versionNumber: { type: 'integer', minimum: 1 }, width: { type: 'integer', minimum: 1 } },
        required: ['assetId', 'versionNumber', 'width'],
      }),
      versions: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            versionNumber: { type: 'integer', minimum: 1 },
            contentType: { type: 'string', enum: [...IMAGE_CONTENT_TYPES] },
            size: { type: 'integer', minimum: 1 },
            createdAt: dateTime,
          },
          required: ['versionNumber', 'contentType', 'size', 'createdAt'],
        },
      },
      createdBy: { type: 'string', description: 'The `sub` of the token that uploaded it (for a thumbnail: of its source).' },
      createdByRole: {
        type: ['string', 'null'],
        enum: [...ROLES, null],
        description: 'The role of that token; null on assets stored before roles were recorded (they count as created by a service).',
      },
      tenant: { type: ['string', 'null'], description: 'The tenant of that token; null when it had none.' },
      createdAt: dateTime,
      updatedAt: dateTime,
    },
    required: ['assetId', 'contentType', 'size', 'versionNumber', 'processed', 'thumbnailAssetIds', 'derivedFrom', 'versions', 'createdBy', 'createdAt', 'updatedAt'],
  },
  EscrowInput: { ...fromZod(escrowInputSchema), description: 'A new escrow; `escrowId` is generated (escrow_ + hex) when omitted.' },
  Escrow: {
    type: 'object',
    properties: {
      escrowId: { type: 'string' },
      batchId: { type: 'string' },
      amount: { type: 'integer', minimum: 1, description: 'Minor units (cents).' },
      currency: { type: 'string', pattern: '^[A-Z]{3}$' },
      payee: { type: 'string' },
      status: { type: 'string', enum: ['held', 'paid'] },
      transferId: { type: ['string', 'null'], description: 'Set exactly when paid.' },
      paidAt: nullableDateTime,
      createdBy: { type: 'string' },
      tenant: { type: ['string', 'null'], description: 'The tenant of the token that created it: only that tenant (and admins without a tenant) can see it.' },
      createdAt: dateTime,
      updatedAt: dateTime,
    },
    required: ['escrowId', 'batchId', 'amount', 'currency', 'payee', 'status', 'transferId', 'paidAt', 'createdBy', 'tenant', 'createdAt', 'updatedAt'],
  },
  EscrowPage: {
    type: 'object',
    properties: { meta: ref('PageMeta'), data: { type: 'array', items: ref('Escrow'), description: 'Newest first.' } },
    required: ['meta', 'data'],
    additionalProperties: false,
  },
  Health: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] },
  Ready: { type: 'object', properties: { status: { const: 'ready' } }, required: ['status'] },
  ...SCHEDULE_SCHEMAS,
};

// ---- Paths -----------------------------------------------------------------------------------

const jobIdParam: JsonObject = { $ref: '#/components/parameters/JobId' };
const workerIdParam: JsonObject = { $ref: '#/components/parameters/WorkerId' };
const assetIdParam: JsonObject = { name: 'assetId', in: 'path', required: true, schema: assetId };
const noAuth: Json[] = [];

const queryParam = (param: { name: string; schema: JsonObject; description: string }): JsonObject => ({ in: 'query', required: false, ...param });

const leaseConflict: [number, string, string[]] = [409, 'The caller does not hold the current lease of this job.', ['lease_conflict']];
const jobNotFound: [number, string, string[]] = [404, 'No job with this id.', ['job_not_found']];

function workerReport(params: { operationId: string; summary: string; description: string; request: string; response: string }): JsonObject {
  const { operationId, summary, description, request, response } = params;
  return {
    post: {
      tags: ['worker'],
      operationId,
      summary,
      description,
      parameters: [jobIdParam, workerIdParam],
      requestBody: { required: request === 'FailRequest', ...jsonBody(ref(request)) },
      responses: {
        '200': jsonBody(ref(response), 'The report was accepted.'),
        ...errors(['BadRequest', ...AUTHED, 'ValidationFailed'], [jobNotFound, leaseConflict]),
      },
    },
  };
}

const imageBody: JsonObject = {
  required: true,
  description:
    `The raw image bytes (at most ${MAX_ASSET_BYTES} bytes, not compressed) with their Content-Type; streamed into storage. ` +
    'A declared Content-Length over the limit is refused before the body is read; a chunked body as soon as it passes the limit.',
  content: Object.fromEntries(IMAGE_CONTENT_TYPES.map((t) => [t, { schema: { type: 'string', contentMediaType: t } }])),
};

/** 429 on the rate-limited routes (RATE_LIMIT_*_PER_MINUTE; off unless configured). */
const rateLimited: JsonObject = {
  ...errorResponse('Too many calls with this token (per-token rate limit of this API instance); retry after Retry-After seconds.', ['rate_limited']),
  headers: { 'Retry-After': { description: 'Seconds to wait before the next call.', schema: { type: 'integer', minimum: 1 } } },
};

/** 429 on uploads: this API instance already streams ASSET_UPLOAD_CONCURRENCY of them. */
const uploadsBusy: JsonObject = {
  ...errorResponse('Too many uploads in progress on this API instance (ASSET_UPLOAD_CONCURRENCY); retry after Retry-After seconds.', ['rate_limited']),
  headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 1 } } },
};

/** Who does not own an asset (nor may read every asset of its tenant) gets the answer an unknown id gets. */
const assetNotFound: [number, string, string[]] = [404, 'No asset with this id that the caller may see (owner, admin, or worker for reads; within the tenant).', ['asset_not_found']];
const assetWriteNotFound: [number, string, string[]] = [404, 'No asset with this id that the caller may change (its owner or an admin, within the tenant).', ['asset_not_found']];

const paths: JsonObject = {
  '/healthz': {
    get: {
      tags: ['health'],
      operationId: 'healthz',
      summary: 'Liveness: 200 while the process is up',
      security: noAuth,
      responses: { '200': jsonBody(ref('Health'), 'The process is up.') },
    },
  },
  '/readyz': {
    get: {
      tags: ['health'],
      operationId: 'readyz',
      summary: 'Readiness: 200 only while MongoDB answers',
      security: noAuth,
      responses: { '200': jsonBody(ref('Ready'), 'The database answers.'), ...errors(['Unavailable']) },
    },
  },
  '/metrics': {
    get: {
      tags: ['operations'],
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      description:
        'Prometheus text exposition format. Counters `jobs_enqueued_total`, `jobs_leased_total`, `jobs_succeeded_total`, `jobs_failed_total` (failed attempts), `jobs_dead_lettered_total`, `jobs_retries_scheduled_total`, `jobs_reclaimed_total`, `jobs_cancelled_total`, `jobs_requeued_total` by `type`; gauges `jobs_queue_depth`, `jobs_scheduled` (queued, not yet due), `jobs_oldest_queued_age_seconds` (how long the longest-waiting due job has been due) by `type` and `jobs_status_count` by `type` and `status` (refreshed every few seconds by one aggregation, not per scrape); histograms `http_request_duration_seconds` by `method`, `route`, `status` and `job_run_duration_seconds` by `type`, `outcome`.',
      security: noAuth,
      responses: {
        '200': {
          description: 'The metrics.',
          content: { 'text/plain': { schema: { type: 'string' }, example: '# HELP jobs_queue_depth Jobs in status queued\n# TYPE jobs_queue_depth gauge\njobs_queue_depth{type="thumbnail.create"} 3\n' } },
        },
      },
    },
  },
  '/openapi.json': {
    get: {
      tags: ['operations'],
      operationId: 'openapi',
      summary: 'This document',
      security: noAuth,
      responses: { '200': jsonBody({ type: 'object' }, 'The OpenAPI 3.1 document.') },
    },
  },
  '/docs': {
    get: {
      tags: ['operations'],
      operationId: 'docs',
      summary: 'Interactive API documentation (Swagger UI, served locally)',
      security: noAuth,
      responses: { '200': { description: 'An HTML page.', content: { 'text/html': { schema: { type: 'string' } } } } },
    },
  },
  '/dashboard': {
    get: {
      tags: ['operations'],
      operationId: 'dashboard',
      summary: 'The operator dashboard (static page; its data calls carry the admin token entered on it)',
      security: noAuth,
      responses: { '200': { description: 'An HTML page.', content: { 'text/html': { schema: { type: 'string' } } } } },
    },
  },
  '/auth/whoami': {
    get: {
      tags: ['auth'],
      operationId: 'whoami',
      summary: 'Who the token names',
      responses: { '200': jsonBody(ref('Principal'), 'The verified claims.'), ...errors(['Unauthenticated']) },
    },
  },
  '/jobs': {
    post: {
      tags: ['jobs'],
      operationId: 'enqueueJob',
      summary: 'Enqueue a job (service, admin)',
      requestBody: { required: true, ...jsonBodyWithExamples(ref('EnqueueRequest'), ENQUEUE_EXAMPLES) },
      responses: {
        '201': jsonBody(ref('EnqueueResponse'), 'Created; status `queued`, attempt 0.'),
        '200': jsonBody(ref('EnqueueResponse'), 'The idempotency key was used before for this type: the first job.'),
        ...errors(
          ['BadRequest', ...AUTHED],
          [
            [404, 'The type is not registered.', ['job_type_not_found']],
            [422, 'A field is invalid, or the payload does not match its type\'s schema (`details` lists the failing fields).', ['validation_error', 'payload_invalid']],
            [413, `The body is over 1 MB, or the payload over ${MAX_JOB_PAYLOAD_BYTES} bytes as JSON.`, ['payload_too_large']],
          ],
        ),
        '429': rateLimited,
      },
    },
  },
  '/jobs/batch': {
    post: {
      tags: ['jobs'],
      operationId: 'enqueueJobs',
      summary: 'Enqueue up to 1,000 jobs at once (service, admin)',
      description:
        'Each job is validated on its own (a bad one does not refuse the others); the valid ones are inserted in one round trip. Idempotency keys are honoured per job.',
      requestBody: {
        required: true,
        ...jsonBodyWithExamples(ref('BatchEnqueueRequest'), {
          mixed: {
            summary: 'Three jobs in one request',
            value: { jobs: [{ type: 'noop', payload: {} }, { type: 'noop', payload: { sleepMs: 500 }, priority: 90 }, { type: 'noop', payload: { failItems: ['b'] } }] },
          },
        }),
      },
      responses: {
        '200': jsonBody(ref('BatchEnqueueResponse'), 'One result per job, in request order.'),
        ...errors(['BadRequest', ...AUTHED, 'ValidationFailed'], [
          [413, `The body is over 1 MB, or a job's payload over ${MAX_JOB_PAYLOAD_BYTES} bytes as JSON (the whole batch is refused).`, ['payload_too_large']],
        ]),
        '429': rateLimited,
      },
    },
  },
  '/jobs/lease': {
    get: {
      tags: ['worker'],
      operationId: 'leaseJobs',
      summary: 'Lease available jobs (worker, admin)',
      description:
        'Atomically claims up to `limit` jobs that are queued and due (or leased with an expired lease), priority desc then nextRunAt asc. Each becomes `leased` for the policy timeout with `attempt + 1`. Unknown query parameters are ignored.',
      parameters: [
        workerIdParam,
        queryParam({ name: 'limit', schema: { type: 'integer', minimum: 1, maximum: 100, default: 1 }, description: 'How many jobs at most.' }),
        queryParam({ name: 'type', schema: { type: 'string' }, description: 'Only these types (comma-separated).' }),
        queryParam({
          name: 'wait',
          schema: { type: 'number', minimum: 0, maximum: 30, default: 0 },
          description: 'Long-poll: when nothing is available, hold the call up to this many seconds until a job is.',
        }),
      ],
      responses: { '200': jsonBody(ref('LeaseResponse'), 'The leased jobs (possibly none).'), ...errors([...AUTHED, 'ValidationFailed']), '429': rateLimited },
    },
  },
  '/jobs/{jobId}': {
    get: {
      tags: ['jobs'],
      operationId: 'getJob',
      summary: 'Job detail (owner, admin)',
      parameters: [jobIdParam],
      responses: {
        '200': jsonBody(ref('Job'), 'The job document.'),
        ...errors(AUTHED, [
          [403, 'Not the creator of the job, or no such job (a non-admin learns nothing about existence); or the role may not read jobs.', ['access_denied', 'permission_denied']],
          [404, 'Admin only: no job with this id.', ['job_not_found']],
        ]),
      },
    },
  },
  '/jobs/{jobId}/heartbeat': workerReport({
    operationId: 'heartbeatJob',
    summary: 'Extend the lease (worker, admin)',
    description: 'Extends leaseExpiresAt by the policy timeout and records progress; `cancelRequested` tells the worker to stop.',
    request: 'HeartbeatRequest',
    response: 'HeartbeatResponse',
  }),
  '/jobs/{jobId}/succeed': workerReport({
    operationId: 'succeedJob',
    summary: 'Report success (worker, admin)',
    description: '`completedAt` is set. 409 when the job is not leased, is leased to another worker, or `leaseId` is not the current lease.',
    request: 'SucceedRequest',
    response: 'JobStatusResponse',
  }),
  '/jobs/{jobId}/fail': workerReport({
    operationId: 'failJob',
    summary: 'Report a failure (worker, admin)',
    description: '`retryable: false` → `failed`; attempts used up → `dlq`; otherwise `queued` again after min(cap, base·2^(attempt−1))·[0.5, 1].',
    request: 'FailRequest',
    response: 'FailResponse',
  }),
  '/jobs/{jobId}/cancel': {
    post: {
      tags: ['jobs'],
      operationId: 'cancelJob',
      summary: 'Cancel a job (owner, admin)',
      description: 'Queued: `cancelled` at once. Leased: `cancelRequested` is set (status stays `leased`) and the worker sees it on its next heartbeat.',
      parameters: [jobIdParam],
      responses: {
        '200': jsonBody(ref('JobStatusResponse'), 'Cancelled, or cancellation requested.'),
        ...errors([...AUTHED, 'ValidationFailed'], [
          [403, 'Not the creator of the job (or no such job).', ['access_denied', 'permission_denied']],
          [404, 'Admin only: no job with this id.', ['job_not_found']],
          [409, 'The job has finished.', ['invalid_state']],
        ]),
      },
    },
  },
  '/admin/jobs/queue': {
    get: {
      tags: ['admin'],
      operationId: 'listQueue',
      summary: 'List jobs, newest first (admin)',
      description: 'Filters combine with AND. Pages beyond the last answer 200 with an empty `data`.',
      parameters: [
        queryParam({ name: 'status', schema: { type: 'string', examples: ['dlq', 'failed,dlq'] }, description: `Only these statuses (comma-separated): ${JOB_STATUSES.join(', ')}.` }),
        queryParam({ name: 'type', schema: { type: 'string' }, description: 'Only these types (comma-separated).' }),
        queryParam({ name: 'createdBy', schema: { type: 'string', minLength: 1, maxLength: 256 }, description: 'Only jobs enqueued by this token `sub`.' }),
        queryParam({ name: 'createdFrom', schema: dateTime, description: 'Only jobs created at or after this instant (inclusive).' }),
        queryParam({ name: 'createdTo', schema: dateTime, description: 'Only jobs created before this instant (exclusive).' }),
        queryParam({ name: 'page', schema: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1 }, description: '1-based page number.' }),
        queryParam({ name: 'per_page', schema: { type: 'integer', minimum: 1, maximum: MAX_PER_PAGE, default: DEFAULT_PER_PAGE }, description: 'Page size.' }),
      ],
      responses: { '200': jsonBody(ref('QueuePage'), 'One page of jobs.'), ...errors([...AUTHED, 'ValidationFailed']) },
    },
  },
  '/admin/jobs/stats': {
    get: {
      tags: ['admin'],
      operationId: 'queueStats',
      summary: 'Counts by status and type, oldest queued job age (admin)',
      description: 'Computed with one aggregation over the jobs.',
      responses: { '200': jsonBody(ref('QueueStats'), 'The stats.'), ...errors(AUTHED) },
    },
  },
  '/admin/jobs/throughput': {
    get: {
      tags: ['admin'],
      operationId: 'throughput',
      summary: 'Jobs finished per minute, by outcome (admin)',
      description: 'Counts jobs by the minute of their `completedAt`: succeeded (throughput) and failed / dlq (failures). A requeued job leaves the chart until it finishes again.',
      parameters: [queryParam({ name: 'minutes', schema: { type: 'integer', minimum: 1, maximum: MAX_THROUGHPUT_MINUTES, default: 60 }, description: 'How many minutes back, the current one included.' })],
      responses: { '200': jsonBody(ref('Throughput'), 'One bucket per minute.'), ...errors([...AUTHED, 'ValidationFailed']) },
    },
  },
  '/admin/jobs/{jobId}/requeue': {
    post: {
      tags: ['admin'],
      operationId: 'requeueJob',
      summary: 'Put a failed, dead-lettered or cancelled job back in the queue (admin)',
      description: '`attempt` resets to 0 (a fresh attempt budget), `nextRunAt` is now, the attempt history is kept.',
      parameters: [jobIdParam],
      responses: {
        '200': jsonBody(ref('RequeueResponse'), 'Queued again.'),
        ...errors([...AUTHED, 'ValidationFailed'], [jobNotFound, [409, 'The job is not failed, dlq or cancelled.', ['invalid_state']]]),
      },
    },
  },
  '/assets': {
    post: {
      tags: ['assets'],
      operationId: 'createAsset',
      summary: 'Upload an image as a new asset (service, admin)',
      parameters: [queryParam({ name: 'filename', schema: { type: 'string' }, description: 'Original file name (optional).' })],
      requestBody: imageBody,
      responses: {
        '201': jsonBody(ref('UploadReceipt'), 'Stored as version 1, owned by the caller (its sub, role and tenant).'),
        ...errors(['BadRequest', ...AUTHED, 'PayloadTooLarge', 'UnsupportedMediaType', 'ValidationFailed']),
        '429': uploadsBusy,
      },
    },
  },
  '/assets/{assetId}': {
    post: {
      tags: ['assets'],
      operationId: 'addAssetVersion',
      summary: 'Upload a new version of an asset (service, admin)',
      parameters: [assetIdParam, queryParam({ name: 'filename', schema: { type: 'string' }, description: 'Original file name (optional).' })],
      requestBody: imageBody,
      responses: {
        '201': jsonBody(ref('UploadReceipt'), 'Stored as versionNumber + 1.'),
        ...errors(
          ['BadRequest', ...AUTHED, 'PayloadTooLarge', 'UnsupportedMediaType', 'ValidationFailed'],
          [assetWriteNotFound, [409, 'A thumbnail takes no new versions, or too many concurrent uploads to this asset.', ['invalid_state', 'conflict']]],
        ),
        '429': uploadsBusy,
      },
    },
    get: {
      tags: ['assets'],
      operationId: 'getAsset',
      summary: 'Asset metadata (service, worker, admin)',
      parameters: [assetIdParam],
      responses: {
        '200': jsonBody(ref('Asset'), 'The asset, including `processed` and `thumbnailAssetIds`.'),
        ...errors([...AUTHED, 'ValidationFailed'], [assetNotFound]),
      },
    },
  },
  '/assets/{assetId}/content': {
    get: {
      tags: ['assets'],
      operationId: 'getAssetContent',
      summary: 'The bytes of the current version (service, worker, admin)',
      parameters: [assetIdParam],
      responses: {
        '200': {
          description: 'The image bytes.',
          headers: { 'X-Asset-Version': { description: 'The version served.', schema: { type: 'integer', minimum: 1 } } },
          content: Object.fromEntries(IMAGE_CONTENT_TYPES.map((t) => [t, { schema: { type: 'string', contentMediaType: t } }])),
        },
        ...errors([...AUTHED, 'ValidationFailed'], [assetNotFound]),
      },
    },
  },
  '/escrows': {
    post: {
      tags: ['escrows'],
      operationId: 'createEscrow',
      summary: 'Hold money for a payee until its payout batch runs (admin)',
      requestBody: { required: true, ...jsonBody(ref('EscrowInput')) },
      responses: {
        '201': jsonBody(ref('Escrow'), 'Created, status `held`.'),
        ...errors(['BadRequest', ...AUTHED, 'ValidationFailed'], [[409, 'The escrow id is in use.', ['conflict']]]),
      },
    },
    get: {
      tags: ['escrows'],
      operationId: 'listEscrows',
      summary: 'List escrows, newest first (admin; a tenant admin sees its tenant\'s)',
      description: 'Pages beyond the last answer 200 with an empty `data`.',
      parameters: [
        queryParam({ name: 'page', schema: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1 }, description: '1-based page number.' }),
        queryParam({ name: 'per_page', schema: { type: 'integer', minimum: 1, maximum: MAX_PER_PAGE, default: DEFAULT_PER_PAGE }, description: 'Page size.' }),
      ],
      responses: { '200': jsonBody(ref('EscrowPage'), 'One page of escrows.'), ...errors([...AUTHED, 'ValidationFailed']) },
    },
  },
  '/escrows/{escrowId}': {
    get: {
      tags: ['escrows'],
      operationId: 'getEscrow',
      summary: 'An escrow (admin; a tenant admin sees its tenant\'s)',
      parameters: [{ name: 'escrowId', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { '200': jsonBody(ref('Escrow'), 'The escrow.'), ...errors(AUTHED, [[404, 'No escrow with this id (or one of another tenant).', ['escrow_not_found']]]) },
    },
  },
  ...SCHEDULE_PATHS,
};

/** Builds the document (a fresh object each call, so callers may not mutate a shared one). */
export function buildOpenApiDocument(): JsonObject {
  return structuredClone({
    openapi: '3.1.0',
    info: {
      title: 'jobs',
      version: '0.1.0',
      summary: 'A background-jobs service on MongoDB: enqueue over HTTP, lease atomically, retry with backoff, dead-letter.',
      description:
        'Every endpoint but health, metrics, this document, /docs and the dashboard page needs `Authorization: Bearer <JWT>` (HS256 with JWT_SECRET; claims `sub`, `role` = admin | service | worker | user, optional `exp`). Every error body is `{ "error": { "code", "message", "details"? } }`; no 5xx for any input a client can send. The token (401) and the role (403) are checked before a body is read or validated (400/413/422); a request body that stalls (HTTP_BODY_IDLE_TIMEOUT_MS) or a request that does not arrive in full within HTTP_REQUEST_TIMEOUT_MS is answered 408 (`request_timeout`) and its connection closed.',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    tags: [
      { name: 'jobs', description: 'Enqueue, read and cancel jobs.' },
      { name: 'worker', description: 'Lease jobs and report on them; every call carries X-Worker-Id.' },
      { name: 'admin', description: 'Operate the queue (admin role only).' },
      { name: 'assets', description: 'Images the thumbnail.create job works on (GridFS).' },
      { name: 'escrows', description: 'Money held for payees; paid by payout.execute jobs.' },
      { name: 'auth', description: 'Tokens.' },
      { name: 'health', description: 'Liveness and readiness probes.' },
      { name: 'operations', description: 'Metrics, documentation and the dashboard.' },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Mint one locally with `npm run token -- --role admin --sub alice`.' },
      },
      parameters: {
        JobId: { name: 'jobId', in: 'path', required: true, schema: jobId },
        WorkerId: {
          name: 'X-Worker-Id',
          in: 'header',
          required: true,
          description: 'Names the worker process (the token names the credential); a lease belongs to the worker id it was granted to.',
          schema: { type: 'string', pattern: '^[\\x21-\\x7e]{5,128}$' },
        },
      },
      responses: Object.fromEntries(Object.entries(ERROR_RESPONSES).map(([name, r]) => [name, errorResponse(r.description, r.codes)])),
      schemas,
    },
  });
}
