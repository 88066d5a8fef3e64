import { z } from 'zod';

import { CALLBACK_STATUSES } from '../model/callback';
import { ROLES } from '../model/principal';
import { ATTEMPT_OUTCOMES, DEDUPE_MODES, DEFAULT_PRIORITY, JOB_STATUSES, MAX_ENQUEUE_BATCH, MAX_TAGS, TAG_PATTERN } from '../model/job';
import { JOB_TYPES } from '../jobs/job-types';
import { fieldError } from './errors';
import { anyJson, commaList, documentAs, jobId, nullableWireDate, requestDate, wireDate } from './schema';

/** The schemas of jobs on the wire: the job document, enqueue, lease and the worker's reports. */

/** A job's payload as JSON may be at most this many bytes (the request body itself: 1 MB). */
export const MAX_JOB_PAYLOAD_BYTES = 64 * 1024;
export const JSON_BODY_LIMIT_BYTES = 1024 * 1024;
export const MAX_DEPENDS_ON = 100;
/** A report's `durationMs` is at most a week. */
export const MAX_DURATION_MS = 7 * 24 * 3_600_000;
/** Dedupe periods and snoozes: 1 s to a day. */
export const MAX_DEDUPE_SECONDS = 86_400;
export const MAX_SNOOZE_SECONDS = 86_400;
/** A checkpoint's JSON text at most (else 413). */
export const MAX_CHECKPOINT_BYTES = 65_536;
export const MAX_BATCH_REPORTS = 100;

export const jobStatus = z.enum(JOB_STATUSES).meta({
  description:
    '`waiting` (its dependsOn parents have not all succeeded), `queued`, `leased`, `succeeded`, `failed` (the handler said not to retry), `cancelled`, `dlq` (dead letter: attempts used up).',
});

export const jobError = z.strictObject({ code: z.string().optional(), message: z.string() });

/** One tag: 1–64 characters of `[A-Za-z0-9_.:-]`. */
export const jobTag = z.string().regex(TAG_PATTERN, 'a tag is 1-64 characters of A-Z a-z 0-9 _ . : -').meta({ examples: ['import:batch-7'] });

export const attemptRecord = z
  .strictObject({
    attempt: z.number().int().min(1),
    leaseId: z.string(),
    workerId: z.string(),
    leasedAt: wireDate,
    finishedAt: nullableWireDate,
    outcome: z.enum(ATTEMPT_OUTCOMES).nullable().meta({ description: 'null while the lease runs; `snoozed`: put back for later, the attempt did not count.' }),
    error: jobError.nullable(),
  })
  .meta({ description: 'One lease of the job.' });

export const dedupeOption = z
  .strictObject({
    key: z.string().min(1).max(200),
    mode: z.enum(DEDUPE_MODES).meta({
      description:
        '`active`: while a job of this type with this key is waiting, queued or leased, the enqueue returns it. `throttle`: a job of this type and key created less than `seconds` ago (any status) is returned. `debounce`: a queued, never-leased job with the key gets the new payload and priority and runs at now + `seconds` instead; otherwise a new job is created to run then.',
    }),
    seconds: z.number().int().min(1).max(MAX_DEDUPE_SECONDS).optional().meta({ description: 'Required for `throttle` and `debounce`, refused with `active` (422).' }),
  })
  .meta({ description: 'Collapse enqueues with the same key (scope: one type, one tenant). Not together with idempotencyKey (422).' });

export const resultFileWire = z
  .strictObject({
    fileId: z.string().meta({ description: 'The file (24 hex digits).' }),
    name: z.string().meta({ description: 'The name given at upload.' }),
    contentType: z.string().meta({ description: 'The Content-Type given at upload.' }),
    size: z.number().int().min(0).meta({ description: 'Bytes.' }),
    url: z.string().meta({ description: '`/jobs/<jobId>/files/<fileId>`: GET it (owner, admin) for the bytes.' }),
  })
  .meta({ description: 'A file a run of the job uploaded (`POST /jobs/{jobId}/files`).' });

export const callbackState = z
  .strictObject({
    url: z.string(),
    status: z.enum(CALLBACK_STATUSES).meta({ description: '`pending` (attempts go on), `delivered` (a 2xx came back), `failed` (the attempts ran out).' }),
    attempts: z.number().int().min(0).meta({ description: 'Attempts made so far (one in flight included).' }),
    lastError: z.string().optional().meta({ description: 'Why the last attempt failed.' }),
    deliveredAt: wireDate.optional(),
    deliveryId: z.string().optional().meta({ description: 'Sent as `X-Jobs-Delivery` with every attempt (from the first attempt on).' }),
    nextAttemptAt: wireDate.optional().meta({ description: 'When the next attempt is due (while pending).' }),
  })
  .meta({ description: 'The delivery of the callback of a finished job (see *Callbacks* in docs/results.md).' });

export const jobDocument = z
  .strictObject({
    jobId,
    type: z.string().meta({ description: 'A registered job type.' }),
    status: jobStatus,
    priority: z.number().int().min(0).max(100).meta({ description: 'Higher runs first.' }),
    payload: anyJson.meta({ description: 'Matches the schema of its type (see the `*Payload` schemas).' }),
    attempt: z.number().int().min(0).meta({ description: 'Leases since creation (or since the last requeue).' }),
    maxAttempts: z.number().int().min(1),
    nextRunAt: wireDate.meta({ description: 'When the job is due (again).' }),
    leaseId: z.string().nullable().meta({ description: 'The current lease, while leased.' }),
    leaseExpiresAt: nullableWireDate,
    workerId: z.string().nullable().meta({ description: 'The worker holding (or last holding) the lease.' }),
    progress: z.number().min(0).max(100),
    result: anyJson.meta({ description: 'What the handler returned (null until it succeeded).' }),
    lastError: jobError.nullable(),
    attempts: z.array(attemptRecord).meta({ description: 'History, one entry per lease (the last 100).' }),
    cancelRequested: z.boolean().meta({ description: 'A cancel was asked while leased: the worker stops at its next heartbeat.' }),
    idempotencyKey: z.string().nullable(),
    tenant: z.string().nullable().meta({ description: 'The `tenant` claim of the token that enqueued it (null: none).' }),
    dependsOn: z.array(jobId).meta({ description: 'Jobs that must succeed before this one runs.' }),
    pendingParents: z.array(jobId).meta({ description: 'Of dependsOn, those not succeeded yet (while `waiting`).' }),
    partial: z.boolean().meta({ description: 'Succeeded with a partial result: `result.partial` is true and `result.itemErrors` lists the failed items.' }),
    concurrencyKey: z.string().nullable().meta({ description: "The key the type's keyConcurrencyLimit counts by (null: none)." }),
    dedupe: dedupeOption.nullable().meta({ description: 'How the enqueue that created it deduplicated (null: it did not).' }),
    checkpoint: anyJson.meta({ description: 'What a run saved with a heartbeat (null: nothing); handed to every later lease of the job.' }),
    tags: z.array(jobTag).meta({ description: 'The tags given at enqueue (`GET /jobs?tag=` finds jobs by them).' }),
    files: z.array(resultFileWire).meta({ description: 'Result files its runs uploaded, oldest first (deleted with the job by retention).' }),
    callbackUrl: z.string().nullable().meta({ description: 'Where the outcome is POSTed when the job finishes.' }),
    callback: callbackState.nullable().meta({ description: 'The callback delivery, once the job has finished (null before, and without a callbackUrl).' }),
    createdBy: z.string().meta({ description: 'The `sub` of the token that enqueued it (`schedule:<name>` for a schedule\'s jobs).' }),
    createdByRole: z.enum(ROLES).nullable().meta({ description: 'The role of that token (null on jobs stored before roles were).' }),
    cancelRequestedAt: nullableWireDate,
    irreversibleAt: nullableWireDate.meta({ description: 'When the run passed its point of no return (heartbeat `irreversible`): a cancel is refused from then on.' }),
    createdAt: wireDate,
    updatedAt: wireDate,
    startedAt: nullableWireDate.meta({ description: 'The first lease.' }),
    completedAt: nullableWireDate,
  })
  .meta({ description: 'A job document, as `GET /jobs/{jobId}` and the admin queue return it.' });

// ---- Enqueue ---------------------------------------------------------------------------------

export const enqueueRequest = z.strictObject({
  // Any string: one that is not registered (the empty string included) is a 404, as API.md orders it.
  type: z.string({ error: 'type must be a string' }).meta({ description: 'A registered job type (else 404 `job_type_not_found`).' }),
  payload: anyJson.optional().meta({ description: "Validated against the type's schema (else 422 `payload_invalid`)." }),
  priority: z.number().int().min(0).max(100).optional().meta({ description: `Higher runs first; default ${DEFAULT_PRIORITY}.` }),
  scheduleAt: requestDate('scheduleAt').optional().meta({ description: 'Delays the first run until then.' }),
  maxAttempts: z.number().int().min(1).max(1_000).optional().meta({ description: "Defaults to the type's policy." }),
  idempotencyKey: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .meta({ description: 'A second enqueue with the same key and type (and tenant) returns the first job (200) instead of creating another.' }),
  tags: z
    .array(jobTag)
    .max(MAX_TAGS, `at most ${MAX_TAGS} tags`)
    .optional()
    .meta({ description: `0–${MAX_TAGS} tags (each 1–64 characters of \`[A-Za-z0-9_.:-]\`), stored on the job; \`GET /jobs?tag=\` and the admin queue find jobs by them. A repeated tag is kept once.` }),
  callbackUrl: z
    .string()
    .min(1)
    .max(2_048)
    .optional()
    .meta({
      description:
        'An `http` or `https` URL, its host listed in CALLBACK_ALLOWED_HOSTS (else 422; none listed: callbacks are off), POSTed the outcome when the job reaches succeeded, failed, dlq or cancelled, signed with `X-Jobs-Signature`.',
    }),
  dependsOn: z
    .array(jobId)
    .min(1)
    .max(MAX_DEPENDS_ON)
    .optional()
    .meta({
      description:
        'Existing jobs that must all succeed first: the job waits (status `waiting`) until then, and is cancelled (lastError `dependency_failed`) if one ends failed, dlq or cancelled. Unknown ids: 422.',
    }),
  concurrencyKey: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .meta({ description: "With the type's keyConcurrencyLimit: at most that many jobs of the type with this key are leased at once." }),
  dedupe: dedupeOption
    .optional()
    .meta({ description: '`debounce` takes no `scheduleAt` or `dependsOn` (its run time is now + seconds; 422).' }),
});

function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

/** Per job type: its payload schema (the registry's own) and the enqueue request naming it. */
export const JOB_TYPE_SCHEMAS = JOB_TYPES.map((t) => ({
  name: t.name,
  payloadId: `${pascal(t.name)}Payload`,
  payload: t.payload,
  requestId: `Enqueue${pascal(t.name)}`,
  request: enqueueRequest
    .extend({ type: z.literal(t.name), payload: t.payload })
    .meta({
      description: `Enqueue a \`${t.name}\` job. Policy: maxAttempts ${t.policy.maxAttempts}, timeoutSeconds ${t.policy.timeoutSeconds}, concurrencyLimit ${t.policy.concurrencyLimit ?? 'none'}.`,
    }),
}));

/** The enqueue request as documented: one variant per registered type, with its payload schema. */
export const enqueueRequestByType = z.discriminatedUnion(
  'type',
  JOB_TYPE_SCHEMAS.map((t) => t.request) as unknown as [z.ZodObject, ...z.ZodObject[]],
);

export const enqueueResponse = z.strictObject({
  jobId,
  status: jobStatus,
  type: z.string(),
  nextRunAt: wireDate,
  attempt: z.number().int().min(0),
  deduplicated: z
    .boolean()
    .optional()
    .meta({ description: 'Only for enqueues with `dedupe`: true (200) when an existing job was returned (or, debounce, updated), false (201) when one was created.' }),
});

/** The envelope the route checks first; each item is then checked on its own as an enqueueRequest. */
export const batchEnqueueEnvelope = z.strictObject({
  jobs: z.array(z.unknown()).min(1).max(MAX_ENQUEUE_BATCH, `at most ${MAX_ENQUEUE_BATCH} jobs per batch`),
});

export const batchEnqueueRequest = z.strictObject({
  jobs: z.array(enqueueRequestByType).min(1).max(MAX_ENQUEUE_BATCH).meta({ description: 'Each job as for `POST /jobs`.' }),
});

export const batchItemError = z.strictObject({
  error: z.strictObject({ code: z.string(), message: z.string(), details: z.array(fieldError).optional() }),
});

export const batchEnqueueResponse = z.strictObject({
  created: z.number().int().min(0),
  existing: z.number().int().min(0).meta({ description: 'Items whose idempotency key or dedupe returned an earlier job.' }),
  rejected: z.number().int().min(0),
  results: z
    .array(z.union([enqueueResponse.extend({ created: z.boolean() }), batchItemError]))
    .meta({ description: 'One entry per requested job, in order: the job, or the error that refused it.' }),
});

// ---- Lease and reports -------------------------------------------------------------------------

export const workerIdHeaders = z.object({
  'x-worker-id': z
    .string({ error: 'X-Worker-Id header is required' })
    .regex(/^[\x21-\x7e]{5,128}$/, 'X-Worker-Id must be 5-128 printable characters')
    .meta({ description: 'Names the worker process (the token names the credential); a lease belongs to the worker id it was granted to.' }),
});

export const MAX_LEASE_LIMIT = 100;
export const MAX_LEASE_WAIT_SECONDS = 30;

/** `?wait=` seconds, 0–30: a long-poll's longest hold. */
function waitSecondsQuery(description: string) {
  return documentAs(
    z
      .string()
      .regex(/^\d+(\.\d+)?$/, `wait must be a number of seconds from 0 to ${MAX_LEASE_WAIT_SECONDS}`)
      .transform(Number)
      .pipe(z.number().min(0).max(MAX_LEASE_WAIT_SECONDS, `wait must be at most ${MAX_LEASE_WAIT_SECONDS} seconds`)),
    { type: 'number', minimum: 0, maximum: MAX_LEASE_WAIT_SECONDS, default: 0 },
  )
    .optional()
    .meta({ description });
}

/** `GET /jobs/{jobId}?wait=`. */
export const getJobQuery = z.object({
  wait: waitSecondsQuery(
    `Hold the answer while the job is not finished (succeeded, failed, dlq, cancelled), until it finishes or this many seconds (0–${MAX_LEASE_WAIT_SECONDS}) pass; then answer as without it.`,
  ),
});

export const leaseQuery = z.object({
  limit: documentAs(
    z
      .string()
      .regex(/^\d+$/, `limit must be a whole number from 1 to ${MAX_LEASE_LIMIT}`)
      .transform(Number)
      .pipe(z.number().int().min(1, `limit must be from 1 to ${MAX_LEASE_LIMIT}`).max(MAX_LEASE_LIMIT, `limit must be from 1 to ${MAX_LEASE_LIMIT}`)),
    { type: 'integer', minimum: 1, maximum: MAX_LEASE_LIMIT, default: 1 },
  )
    .optional()
    .meta({ description: 'How many jobs at most.' }),
  wait: waitSecondsQuery('Long-poll: when nothing is available, hold the call up to this many seconds until a job is.'),
  type: commaList.optional().meta({ description: 'Only these types (comma-separated).' }),
});

export const jobOwner = z.strictObject({
  sub: z.string().meta({ description: 'The `sub` of the token the job acts for.' }),
  role: z.enum(ROLES).meta({ description: 'Its role (a job stored before roles were: `service`).' }),
  tenant: z.string().nullable().meta({ description: 'Its tenant; null when the token had none.' }),
});

export const leasedJob = z.strictObject({
  jobId,
  type: z.string(),
  payload: anyJson,
  attempt: z.number().int().min(1),
  leaseId: z.string(),
  leaseExpiresAt: wireDate,
  // Optional in the schema only so clients read older APIs' answers too; this API always sends it.
  checkpoint: anyJson
    .optional()
    .meta({ description: 'What an earlier run of the job saved (heartbeat `checkpoint`), so it can resume; null when none. Always present.' }),
  traceparent: z.string().nullable().optional().meta({ description: 'The W3C trace context the job was enqueued in (present when it was enqueued with tracing on): a worker runs it as a span of that trace.' }),
  // Optional in the schema only so clients read older APIs' answers too; this API always sends it.
  owner: jobOwner
    .optional()
    .meta({
      description:
        "Whom the job acts for: its creator (a schedule's jobs: the schedule's owner). The worker works only on the resources this principal may reach; one out of its reach fails the job as a missing one would. Always present.",
    }),
});

export const leaseResponse = z.strictObject({
  leasedAt: wireDate,
  jobs: z.array(leasedJob).meta({ description: 'The leased jobs; empty when nothing is available.' }),
});

export const jobIdParams = z.object({ jobId });

/** `GET /jobs/{jobId}`: a malformed id is answered as an unknown one, so anything is accepted here. */
export const anyJobIdParams = z.object({
  jobId: z.string().meta({ description: 'A job id; a malformed one is answered as an unknown one (403 for non-admins, 404 for admins).' }),
});

const leaseId = z.string().min(1).max(128).optional().meta({ description: 'The lease being reported on; without it the lease is found by X-Worker-Id.' });
const durationMs = z.number().min(0).max(MAX_DURATION_MS).optional().meta({ description: 'Handler run time, for job_run_duration_seconds.' });

export const heartbeatRequest = z.strictObject({
  leaseId,
  progress: z.number().min(0).max(100).optional(),
  irreversible: z.boolean().optional().meta({ description: 'The handler is about to do what cannot be undone: recorded only while no cancel is requested; a cancel is refused from then on.' }),
  checkpoint: anyJson
    .optional()
    .meta({ description: `Any JSON (its text at most ${MAX_CHECKPOINT_BYTES} bytes, else 413): stored on the job and returned with every later lease of it.` }),
});

export const heartbeatResponse = z.strictObject({
  jobId,
  leaseExpiresAt: wireDate,
  cancelRequested: z.boolean().meta({ description: 'The job was cancelled: the worker should stop.' }),
});

export const succeedRequest = z.strictObject({ leaseId, result: anyJson.optional(), durationMs });

export const failRequest = z.strictObject({
  leaseId,
  durationMs,
  error: z.strictObject({
    message: z.string().min(1).max(10_000),
    code: z.string().min(1).max(200).optional(),
    retryable: z.boolean().optional().meta({ description: '`false`: the job ends `failed` whatever attempts remain.' }),
  }),
});

export const jobStatusResponse = z.strictObject({ jobId, status: jobStatus });

const snoozeSeconds = z.number().int().min(1).max(MAX_SNOOZE_SECONDS).meta({ description: 'The job runs again no earlier than now + seconds.' });

export const snoozeRequest = z.strictObject({ leaseId, seconds: snoozeSeconds, durationMs });

export const snoozeResponse = z.strictObject({
  jobId,
  status: z.enum(['queued', 'cancelled']).meta({ description: '`queued`; `cancelled` when a cancel had been requested (it wins).' }),
  attempt: z.number().int().min(0).meta({ description: 'As before this lease: the snoozed run did not count.' }),
  nextRunAt: wireDate,
});

// ---- Batch reports -------------------------------------------------------------------------------

const reportLeaseId = z.string().min(1).max(128).meta({ description: 'The lease being reported on.' });

/** One report of a batch, per outcome: each exactly the body of its single endpoint, plus jobId and outcome. */
export const batchReportItem = z.discriminatedUnion('outcome', [
  z.strictObject({ jobId, leaseId: reportLeaseId, outcome: z.literal('succeeded'), result: anyJson.optional(), durationMs }).meta({ description: 'As `POST /jobs/{jobId}/succeed`.' }),
  z.strictObject({ jobId, leaseId: reportLeaseId, outcome: z.literal('failed'), error: failRequest.shape.error, durationMs }).meta({ description: 'As `POST /jobs/{jobId}/fail`.' }),
  z.strictObject({ jobId, leaseId: reportLeaseId, outcome: z.literal('snoozed'), seconds: snoozeSeconds, durationMs }).meta({ description: 'As `POST /jobs/{jobId}/snooze`.' }),
]);

/** The envelope the route checks first; each item is then judged on its own. */
export const batchReportEnvelope = z.strictObject({
  reports: z.array(z.unknown()).min(1).max(MAX_BATCH_REPORTS, `at most ${MAX_BATCH_REPORTS} reports per batch`),
});

export const batchReportRequest = z.strictObject({
  reports: z.array(batchReportItem).min(1).max(MAX_BATCH_REPORTS).meta({ description: `1–${MAX_BATCH_REPORTS} reports, each judged as its single endpoint would judge it.` }),
});

export const batchReportResult = z.union([
  z.strictObject({ jobId, status: jobStatus }),
  z.strictObject({
    jobId: z.string().nullable().meta({ description: 'As sent (null when the item had no string jobId).' }),
    error: z.strictObject({ code: z.string(), message: z.string(), details: z.array(fieldError).optional() }),
  }),
]);

export const batchReportResponse = z.strictObject({
  results: z
    .array(batchReportResult)
    .meta({ description: 'One per report, in request order: the status the job went to, or the error its single endpoint would have answered (code as in the catalog).' }),
});

// ---- Result files --------------------------------------------------------------------------------

export const resultFileUploadQuery = z.object({
  name: z.string({ error: 'name is required (once)' }).meta({ description: 'The file name, 1–200 characters without control characters.' }),
  leaseId: z
    .string({ error: 'leaseId must be given at most once' })
    .min(1)
    .max(128)
    .optional()
    .meta({ description: 'The lease the upload is made under; without it the lease is found by X-Worker-Id.' }),
});

export const resultFileReceipt = z.strictObject({
  fileId: z.string(),
  name: z.string(),
  contentType: z.string(),
  size: z.number().int().min(0),
});

export const resultFileParams = z.object({
  jobId: z.string().meta({ description: 'A job id; a malformed one is answered as an unknown one.' }),
  fileId: z.string().meta({ description: 'A file of the job (see its `files`).' }),
});

export const failResponse = z.strictObject({
  jobId,
  status: jobStatus,
  attempt: z.number().int().min(0),
  nextRunAt: wireDate,
});
