import { z } from 'zod';

import { JOB_STATUSES, MAX_TAGS } from '../model/job';
import { jobDocument, jobTag } from './jobs';
import { commaList, jobId, requestDate, wholeNumberQuery, wireDate } from './schema';

/** `/admin/jobs/*`: the queue listing, its counts and chart, and requeue. */

export const MAX_PER_PAGE = 100;
export const DEFAULT_PER_PAGE = 20;
/** API.md sets no upper bound on `page`; this one keeps (page − 1) × per_page an exact integer. */
export const MAX_PAGE = Math.floor(Number.MAX_SAFE_INTEGER / MAX_PER_PAGE);
export const MAX_THROUGHPUT_MINUTES = 1_440;
export const DEFAULT_THROUGHPUT_MINUTES = 60;

/** `?page=&per_page=` of every paginated listing: page ≥ 1, per_page 1–100 (default 20). */
export const paginationQuery = z.object({
  page: wholeNumberQuery('page', 1, MAX_PAGE, 1).default(1).meta({ description: '1-based page number; pages beyond the last answer an empty `data`.' }),
  per_page: wholeNumberQuery('per_page', 1, MAX_PER_PAGE, DEFAULT_PER_PAGE).default(DEFAULT_PER_PAGE).meta({ description: 'Page size.' }),
});

/** The filters every job listing takes: statuses, types (each a comma list) and tags (all of them). */
const listFilters = {
  status: commaList
    .pipe(z.array(z.enum(JOB_STATUSES, { error: `status must be one of ${JOB_STATUSES.join(', ')}` })))
    .optional()
    .meta({ description: `Only these statuses (comma-separated): ${JOB_STATUSES.join(', ')}.`, examples: ['dlq', 'failed,dlq'] }),
  type: commaList.pipe(z.array(z.string().max(128))).optional().meta({ description: 'Only these types (comma-separated).' }),
  tag: commaList
    .pipe(z.array(jobTag).max(MAX_TAGS, `at most ${MAX_TAGS} tags`))
    .optional()
    .meta({ description: 'Only jobs carrying every one of these tags (comma-separated).', examples: ['import:batch-7', 'import:batch-7,customer:42'] }),
};

/** `GET /jobs`: the caller's own jobs (an admin's: all), newest first. */
export const ownJobsQuery = z.object({ ...listFilters, ...paginationQuery.shape });

export const queueQuery = z
  .object({
    ...listFilters,
    idempotencyKey: z.string().min(1).max(200).optional().meta({ description: 'Only jobs enqueued with this idempotency key (by any creator).' }),
    createdBy: z.string().min(1).max(256).optional().meta({ description: 'Only jobs enqueued by this token `sub`.' }),
    createdFrom: requestDate('createdFrom')
      .transform((s) => new Date(s))
      .optional()
      .meta({ description: 'Only jobs created at or after this instant (inclusive).' }),
    createdTo: requestDate('createdTo')
      .transform((s) => new Date(s))
      .optional()
      .meta({ description: 'Only jobs created before this instant (exclusive).' }),
    ...paginationQuery.shape,
  })
  .refine((q) => !q.createdFrom || !q.createdTo || q.createdFrom.getTime() <= q.createdTo.getTime(), {
    path: ['createdTo'],
    message: 'createdTo must not be before createdFrom',
    // Only once every field parsed: with a bad date the value is still the raw string (no getTime).
    when: (payload) => payload.issues.length === 0,
  });

export const throughputQuery = z.object({
  minutes: wholeNumberQuery('minutes', 1, MAX_THROUGHPUT_MINUTES, DEFAULT_THROUGHPUT_MINUTES)
    .default(DEFAULT_THROUGHPUT_MINUTES)
    .meta({ description: 'How many minutes back, the current one included.' }),
});

export const pageMeta = z.strictObject({
  page: z.number().int().min(1),
  per_page: z.number().int().min(1).max(MAX_PER_PAGE),
  total: z.number().int().min(0).meta({ description: 'Items matching the filters, over all pages.' }),
  total_pages: z.number().int().min(0).meta({ description: 'ceil(total / per_page); 0 when nothing matches.' }),
});

export const queuePage = z.strictObject({
  meta: pageMeta,
  data: z.array(jobDocument).meta({ description: 'Newest first.' }),
});

export const statusCounts = z
  .strictObject(Object.fromEntries(JOB_STATUSES.map((s) => [s, z.number().int().min(0)])) as Record<(typeof JOB_STATUSES)[number], z.ZodNumber>)
  .meta({ description: 'Jobs per status; every status key is present (0 when none).' });

const ageMs = z.number().int().min(0).nullable();

export const queueStats = z.strictObject({
  totalJobs: z.number().int().min(0),
  statusCounts,
  oldestQueuedJobAgeMs: ageMs.meta({
    description:
      'How long the longest-waiting due job has been due: now − nextRunAt over jobs in status `queued` with nextRunAt ≤ now (jobs scheduled for later never count); null when no job is due.',
  }),
  byType: z.record(z.string(), statusCounts).meta({ description: 'Every registered type (and any other type present), each with every status key.' }),
  oldestQueuedJobAgeMsByType: z.record(z.string(), ageMs).meta({ description: 'oldestQueuedJobAgeMs per type (null when none of the type is due).' }),
  scheduled: z
    .number()
    .int()
    .min(0)
    .meta({ description: 'Of the `queued` jobs (statusCounts.queued), those not due yet: a future scheduleAt, or waiting out a retry backoff.' }),
  scheduledByType: z.record(z.string(), z.number().int().min(0)).meta({ description: '`scheduled` per type.' }),
  partialSucceeded: z.number().int().min(0).meta({ description: 'Of the succeeded jobs, those with a partial result (some items failed).' }),
  partialSucceededByType: z.record(z.string(), z.number().int().min(0)),
  generatedAt: wireDate.meta({ description: 'The clock reading the ages are computed against.' }),
});

export const throughputBucket = z.strictObject({
  start: wireDate,
  succeeded: z.number().int().min(0).meta({ description: 'Jobs whose completedAt falls in the minute and that succeeded.' }),
  failed: z.number().int().min(0).meta({ description: 'Jobs that ended `failed` in the minute.' }),
  dlq: z.number().int().min(0).meta({ description: 'Jobs dead-lettered in the minute.' }),
});

export const throughput = z.strictObject({
  from: wireDate.meta({ description: 'Start of the first bucket (inclusive).' }),
  to: wireDate.meta({ description: 'End of the last bucket (exclusive).' }),
  bucketSeconds: z.literal(60),
  buckets: z.array(throughputBucket).meta({ description: 'One per UTC minute, oldest first; the last is the current, partial minute.' }),
});

// ---- Bulk actions --------------------------------------------------------------------------------

const oneOrMany = <T extends z.ZodType>(item: T, max: number) => z.union([item, z.array(item).min(1).max(max)]);

export const BULK_ACTION_NAMES = ['requeue', 'cancel', 'delete'] as const;

export const bulkFilter = z
  .strictObject({
    status: oneOrMany(z.enum(JOB_STATUSES), JOB_STATUSES.length).optional().meta({ description: 'A status or a list of them.' }),
    type: oneOrMany(z.string().min(1).max(128), 100).optional().meta({ description: 'A type or a list of them.' }),
    tag: oneOrMany(jobTag, MAX_TAGS).optional().meta({ description: 'Jobs carrying this tag (a list: all of them).' }),
    createdBy: z.string().min(1).max(256).optional().meta({ description: 'Jobs enqueued by this token `sub`.' }),
    createdFrom: requestDate('createdFrom').optional().meta({ description: 'Created at or after (inclusive).' }),
    createdTo: requestDate('createdTo').optional().meta({ description: 'Created before (exclusive).' }),
  })
  .refine((f) => f.status !== undefined || f.type !== undefined, { message: 'filter must name status or type', path: ['status'] })
  .meta({ description: 'Which jobs: `status` or `type` (or both) must be given; the fields combine with AND.' });

export const bulkRequest = z.strictObject({
  action: z.enum(BULK_ACTION_NAMES).meta({ description: '`requeue` (failed, dlq, cancelled → queued; a job with `dependsOn` → waiting while a parent has not succeeded), `cancel` (waiting, queued → cancelled; leased → cancel requested), `delete` (finished jobs only).' }),
  filter: bulkFilter,
  dryRun: z.boolean().optional().meta({ description: 'Count only: nothing changes, `affected` is 0.' }),
});

export const bulkResponse = z.strictObject({
  action: z.enum(BULK_ACTION_NAMES),
  dryRun: z.boolean(),
  matched: z.number().int().min(0).meta({ description: 'Jobs matching the filter that the action applies to.' }),
  affected: z.number().int().min(0).meta({ description: 'Jobs it changed (0 with dryRun).' }),
  complete: z.boolean().meta({ description: 'false when the call stopped at its time budget: the rest still match, and repeating the call goes on with them.' }),
});

// ---- Workers ---------------------------------------------------------------------------------------

export const workerView = z
  .strictObject({
    workerId: z.string().meta({ description: 'Its X-Worker-Id.' }),
    types: z.array(z.string()).nullable().meta({ description: 'The types its last lease call asked for; null: every type (or not known yet).' }),
    tenant: z.string().nullable(),
    lastSeenAt: wireDate.meta({ description: 'Its last lease call or heartbeat (recorded at most every 10 s per worker).' }),
    lastCall: z.enum(['lease', 'heartbeat']),
    jobs: z
      .array(z.strictObject({ jobId, type: z.string(), attempt: z.number().int().min(1), progress: z.number().min(0).max(100), leaseExpiresAt: wireDate }))
      .meta({ description: 'The jobs it holds now.' }),
  })
  .meta({ description: 'A worker process seen in the last five minutes.' });

export const workerList = z.strictObject({ data: z.array(workerView).meta({ description: 'Most recently seen first.' }) });

export const requeueParams = z.object({ jobId });
export const requeueResponse = z.strictObject({
  jobId,
  status: z.enum(['queued', 'waiting']).meta({ description: '`waiting` for a job with `dependsOn` while a parent has not succeeded (requeue that parent too); `queued` otherwise.' }),
});
