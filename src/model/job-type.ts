import type { z } from 'zod';

/** How the queue treats jobs of one type. Times are in seconds. */
export interface JobPolicy {
  maxAttempts: number;
  /** Lease length: a job not reported (or heartbeated) within it is reclaimed. */
  timeoutSeconds: number;
  /** At most this many jobs of the type leased at once, across all workers; null: no limit. */
  concurrencyLimit: number | null;
  /** At most this many jobs of the type with the same concurrencyKey leased at once; null: no limit. */
  keyConcurrencyLimit: number | null;
  /** At most `jobs` leases of the type granted in any window of `perSeconds`, across all API instances; null: none. */
  rateLimit: RateLimit | null;
  /** Retry delay before jitter is min(cap, base · 2^(attempt−1)). */
  backoffBaseSeconds: number;
  backoffCapSeconds: number;
}

/**
 * The largest `rateLimit.jobs` (API.md sets none): the grants of two windows are kept in one
 * document, about 70 bytes each, so 2 × 50,000 of them stay far below MongoDB's 16 MB.
 */
export const MAX_RATE_LIMIT_JOBS = 50_000;
export const MAX_RATE_LIMIT_PER_SECONDS = 3_600;
export const MAX_CONCURRENCY_LIMIT = 10_000;

export interface RateLimit {
  jobs: number;
  perSeconds: number;
}

/**
 * What an admin may change at run time (PATCH /admin/types/:type), stored in the database: a field
 * present overrides the environment and the registry; absent, it does not. `paused` exists only here.
 */
export interface TypeRuntimeSettings {
  paused?: boolean;
  concurrencyLimit?: number;
  keyConcurrencyLimit?: number;
  rateLimit?: RateLimit;
}

export const RUNTIME_SETTING_FIELDS = ['paused', 'concurrencyLimit', 'keyConcurrencyLimit', 'rateLimit'] as const satisfies readonly (keyof TypeRuntimeSettings)[];

/** One job type: its name, the schema of its payload (the single source of its TS type), its policy. */
export interface JobTypeDefinition<Name extends string = string, Schema extends z.ZodType = z.ZodType> {
  readonly name: Name;
  readonly payload: Schema;
  /** keyConcurrencyLimit and rateLimit may be left out (no limit). */
  readonly policy: Readonly<Omit<JobPolicy, 'keyConcurrencyLimit' | 'rateLimit'> & Partial<Pick<JobPolicy, 'keyConcurrencyLimit' | 'rateLimit'>>>;
}

export function defineJobType<Name extends string, Schema extends z.ZodType>(
  definition: JobTypeDefinition<Name, Schema>,
): JobTypeDefinition<Name, Schema> {
  return definition;
}

export type PayloadOf<D> = D extends JobTypeDefinition<string, infer S> ? z.infer<S> : never;
