import os from 'node:os';

import { z } from 'zod';

import { CallbackTargets } from './callbacks/callback-targets';
import { DEFAULT_UPLOAD_CONCURRENCY } from './http/upload-limits';
import { DEFAULT_HTTP_TIMEOUTS } from './http/timeouts';
import { JOB_TYPES } from './jobs/job-types';
import { policyOverrideSchema } from './jobs/registry';
import { DEFAULT_RESULT_FILE_MAX_BYTES } from './jobs/result-files';
import { DEFAULT_RETENTION } from './jobs/retention';
import { DEFAULT_TYPE_SETTINGS_REFRESH_MS } from './jobs/type-settings';
import type { JobPolicy } from './model/job-type';
import { databaseNameInUri } from './mongo-uri';
import { DEFAULT_SCHEDULER } from './schedules/schedule';

/**
 * Configuration comes only from the environment and is validated once, at start. Each schema below
 * is the single definition of a process's settings; the types are derived from it.
 */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** 0 turns a periodic task off in this process; otherwise at least `min` ms. */
const offOrAtLeast = (min: number, max: number) =>
  integer(0, max).refine((n) => n === 0 || n >= min, `must be 0 (off) or from ${min} to ${max}`);

/**
 * JOB_POLICY_OVERRIDES: JSON `{ "<type>": { <policy field>: value } }` over the registry's policies;
 * unknown types or fields stop start-up.
 */
const policyOverrides = z
  .string()
  .optional()
  .transform((raw, ctx): Record<string, Partial<JobPolicy>> => {
    if (!raw) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
      return z.NEVER;
    }
    const result = z.record(z.string(), policyOverrideSchema).safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      ctx.addIssue({ code: 'custom', message: `at ${issue.path.join('.') || '(root)'}: ${issue.message}` });
      return z.NEVER;
    }
    const known = new Set<string>(JOB_TYPES.map((t) => t.name));
    const unknown = Object.keys(result.data).find((name) => !known.has(name));
    if (unknown !== undefined) {
      ctx.addIssue({ code: 'custom', message: `names unknown job type "${unknown}"` });
      return z.NEVER;
    }
    return result.data as Record<string, Partial<JobPolicy>>;
  });

const mongoUri = z.string().regex(/^mongodb(\+srv)?:\/\/\S+$/, 'must be a mongodb:// or mongodb+srv:// URI');
const DATABASE_NAME = /^[A-Za-z0-9_-]{1,63}$/;
const DEFAULT_DATABASE_NAME = 'jobs';
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const writeConcern = z.union([z.literal('majority'), z.string().regex(/^\d+$/).transform(Number)]);
const readPreference = z.enum(['primary', 'primaryPreferred']);

const databaseSchema = {
  MONGODB_URI: mongoUri,
  // Only when MONGODB_URI names no database (see withDatabaseName).
  MONGODB_DB_NAME: z.string().regex(DATABASE_NAME, 'must be 1-63 letters, digits, _ or -').optional(),
  DB_TIMEOUT_MS: integer(100, 120_000).default(5_000),
  DB_WRITE_CONCERN: writeConcern.default('majority'),
  DB_READ_PREFERENCE: readPreference.default('primary'),
};

/** The URI's database wins when it names one (as for every MongoDB client); MONGODB_DB_NAME only otherwise. */
function withDatabaseName<T extends { MONGODB_URI: string; MONGODB_DB_NAME?: string | undefined }>(
  config: T,
  ctx: z.RefinementCtx,
): Omit<T, 'MONGODB_DB_NAME'> & { MONGODB_DB_NAME: string } {
  const named = databaseNameInUri(config.MONGODB_URI);
  if (named !== undefined && !DATABASE_NAME.test(named)) {
    ctx.addIssue({ code: 'custom', path: ['MONGODB_URI'], message: 'names a database that is not 1-63 letters, digits, _ or -' });
    return z.NEVER;
  }
  return { ...config, MONGODB_DB_NAME: named ?? config.MONGODB_DB_NAME ?? DEFAULT_DATABASE_NAME };
}

const apiSchema = z.object({
  ...databaseSchema,
  PORT: integer(0, 65_535).default(3000),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters'),
  LOG_LEVEL: logLevel.default('info'),
  SHUTDOWN_TIMEOUT_MS: integer(0, 600_000).default(10_000),
  JOB_POLICY_OVERRIDES: policyOverrides,
  RECLAIM_INTERVAL_MS: integer(0, 600_000).default(1_000),
  LEASE_POLL_INTERVAL_MS: integer(50, 60_000).default(1_000),
  // Idle, the shared long-poll query backs off to this; a change feed (LEASE_WAKE_FEED) tells of other instances' jobs at once.
  LEASE_POLL_MAX_INTERVAL_MS: integer(50, 600_000).default(8_000),
  LEASE_WAKE_FEED: z.enum(['auto', 'on', 'off']).default('auto'),
  // At most how often each instance re-reads the run-time type settings (PATCH /admin/types), when they matter: API.md wants a change honoured everywhere within 2 s.
  TYPE_SETTINGS_REFRESH_MS: integer(100, 1_500).default(DEFAULT_TYPE_SETTINGS_REFRESH_MS),
  // GET /jobs/:jobId?wait=: one shared query per interval finds finishes recorded by other instances.
  RESULT_WAIT_POLL_INTERVAL_MS: integer(50, 1_000).default(500),
  // Per-token rate limits (requests per minute per token sub+role, per API instance); 0: off.
  RATE_LIMIT_ENQUEUE_PER_MINUTE: integer(0, 10_000_000).default(0),
  RATE_LIMIT_LEASE_PER_MINUTE: integer(0, 10_000_000).default(0),
  // Asset uploads streamed at once per API instance; one more is answered 429.
  ASSET_UPLOAD_CONCURRENCY: integer(1, 1_000).default(DEFAULT_UPLOAD_CONCURRENCY),
  // Result files (POST /jobs/:jobId/files): the largest accepted, and uploads streamed at once per API instance.
  RESULT_FILE_MAX_BYTES: integer(1, 10 * 1024 ** 3).default(DEFAULT_RESULT_FILE_MAX_BYTES),
  RESULT_FILE_UPLOAD_CONCURRENCY: integer(1, 1_000).default(DEFAULT_UPLOAD_CONCURRENCY),
  // Callbacks: where they may go (empty: off) and the key that signs them.
  CALLBACK_ALLOWED_HOSTS: z
    .string()
    .optional()
    .superRefine((raw, ctx) => {
      try {
        CallbackTargets.parse(raw);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `has ${(err as Error).message}` });
      }
    }),
  CALLBACK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  // Schedules (0: this instance never ticks) and retention (days per status, 0: keep forever).
  SCHEDULER_INTERVAL_MS: offOrAtLeast(100, 3_600_000).default(DEFAULT_SCHEDULER.intervalMs),
  SCHEDULER_MISFIRE_GRACE_MS: integer(1_000, 86_400_000).default(DEFAULT_SCHEDULER.misfireGraceMs),
  // While ticks find nothing they slow down to one per this (idle instances cost the database little).
  SCHEDULER_IDLE_INTERVAL_MS: integer(100, 3_600_000).default(DEFAULT_SCHEDULER.idleIntervalMs!),
  JOB_RETENTION_SUCCEEDED_DAYS: integer(0, 36_500).default(DEFAULT_RETENTION.succeededDays),
  JOB_RETENTION_FAILED_DAYS: integer(0, 36_500).default(DEFAULT_RETENTION.failedDays),
  JOB_RETENTION_DLQ_DAYS: integer(0, 36_500).default(DEFAULT_RETENTION.dlqDays),
  RETENTION_INTERVAL_MS: offOrAtLeast(1_000, 86_400_000).default(DEFAULT_RETENTION.intervalMs),
  RETENTION_BATCH_SIZE: integer(1, 10_000).default(DEFAULT_RETENTION.batchSize),
  RETENTION_BATCH_PAUSE_MS: integer(0, 60_000).default(DEFAULT_RETENTION.batchPauseMs),
  // Slow clients (src/api-server.ts): the headers must arrive within the first, the whole request
  // (headers and body; not the answer, so long-polls are unaffected) within the second, and a body
  // may not stall for longer than the third.
  HTTP_HEADERS_TIMEOUT_MS: integer(100, 600_000).default(DEFAULT_HTTP_TIMEOUTS.headersTimeoutMs),
  HTTP_REQUEST_TIMEOUT_MS: integer(100, 3_600_000).default(DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs),
  HTTP_BODY_IDLE_TIMEOUT_MS: integer(100, 600_000).default(DEFAULT_HTTP_TIMEOUTS.bodyIdleTimeoutMs),
})
  .refine((c) => c.SCHEDULER_MISFIRE_GRACE_MS >= c.SCHEDULER_IDLE_INTERVAL_MS, {
    // An idle tick may come this late: an on-time occurrence must still count as on time.
    path: ['SCHEDULER_IDLE_INTERVAL_MS'],
    message: 'must be at most SCHEDULER_MISFIRE_GRACE_MS',
  })
  .refine((c) => c.SCHEDULER_MISFIRE_GRACE_MS >= c.SCHEDULER_INTERVAL_MS, {
    // Otherwise an on-time occurrence could be found later than the grace, and catch-up `none` would skip it.
    path: ['SCHEDULER_MISFIRE_GRACE_MS'],
    message: 'must be at least SCHEDULER_INTERVAL_MS',
  })
  .refine((c) => !CallbackTargets.parse(c.CALLBACK_ALLOWED_HOSTS).enabled || c.CALLBACK_SECRET !== undefined, {
    // Callbacks are signed: receivers verify X-Jobs-Signature with it.
    path: ['CALLBACK_SECRET'],
    message: 'is required when CALLBACK_ALLOWED_HOSTS is set',
  })
  .refine((c) => c.HTTP_HEADERS_TIMEOUT_MS <= c.HTTP_REQUEST_TIMEOUT_MS, {
    // Node refuses a headers timeout longer than the request timeout (the headers are part of the request).
    path: ['HTTP_HEADERS_TIMEOUT_MS'],
    message: 'must be at most HTTP_REQUEST_TIMEOUT_MS',
  })
  .transform(withDatabaseName);

const workerSchema = z.object({
  JOBS_API_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  WORKER_TOKEN: z.string().min(1, 'is required'),
  WORKER_ID: z
    .string()
    .min(5, 'must be 5-128 characters')
    .max(128, 'must be 5-128 characters')
    .default(`${os.hostname()}-${process.pid}`.padEnd(5, '-')),
  WORKER_CONCURRENCY: integer(1, 1_000).default(4),
  WORKER_TYPES: z.string().optional(),
  WORKER_SHUTDOWN_GRACE_MS: integer(0, 600_000).default(30_000),
  WORKER_METRICS_PORT: integer(0, 65_535).optional(),
  /** Long-poll: how long the API may hold an empty lease call (0: plain polling with backoff). */
  WORKER_LEASE_WAIT_SECONDS: integer(0, 30).default(20),
  /** Full leases: with a backlog, lease again once this many slots are free (default half the concurrency, up to 50)... */
  WORKER_LEASE_BATCH_TARGET: integer(1, 100).optional(),
  /** ...or after this many ms, whichever comes first. */
  WORKER_LEASE_LINGER_MS: integer(0, 1_000).default(20),
  /** Finished jobs are reported in batches (POST /jobs/reports; an API without it gets single reports), or one by one. */
  WORKER_BATCH_REPORTS: z.enum(['on', 'off']).default('on'),
  /** While reports keep coming, a batch waits this many ms for more (an idle worker's report goes at once). */
  WORKER_REPORT_LINGER_MS: integer(0, 1_000).default(2),
  /** Sandbox payment provider: share of transfers that fail transiently (for trying out retries). */
  SANDBOX_FAILURE_RATE: z
    .string()
    .regex(/^(0(\.\d+)?|1(\.0+)?)$/, 'must be a number from 0 to 1')
    .transform(Number)
    .default(0),
  LOG_LEVEL: logLevel.default('info'),
  JOB_POLICY_OVERRIDES: policyOverrides,
  // Handlers read assets and escrows directly, so workers connect to the database too.
  ...databaseSchema,
}).transform(withDatabaseName);

export type ApiConfig = Readonly<z.infer<typeof apiSchema>>;
export type WorkerConfig = Readonly<z.infer<typeof workerSchema>>;

function parseWith<T extends z.ZodType>(schema: T, env: Env): Readonly<z.infer<T>> {
  // Empty strings count as unset, as `FOO=` in a .env file means "no value".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const problem = issue.code === 'invalid_type' && cleaned[variable] === undefined ? 'is required' : issue.message;
    throw new ConfigError(variable, problem);
  }
  return Object.freeze(result.data);
}

export function loadApiConfig(env: Env): ApiConfig {
  return parseWith(apiSchema, env);
}

export function loadWorkerConfig(env: Env): WorkerConfig {
  return parseWith(workerSchema, env);
}
