import type { z } from 'zod';

/** How the queue treats jobs of one type. Times are in seconds. */
export interface JobPolicy {
  maxAttempts: number;
  /** Lease length: a job not reported (or heartbeated) within it is reclaimed. */
  timeoutSeconds: number;
  /** At most this many jobs of the type leased at once, across all workers; null: no limit. */
  concurrencyLimit: number | null;
  /** Retry delay before jitter is min(cap, base · 2^(attempt−1)). */
  backoffBaseSeconds: number;
  backoffCapSeconds: number;
}

/** One job type: its name, the schema of its payload (the single source of its TS type), its policy. */
export interface JobTypeDefinition<Name extends string = string, Schema extends z.ZodType = z.ZodType> {
  readonly name: Name;
  readonly payload: Schema;
  readonly policy: Readonly<JobPolicy>;
}

export function defineJobType<Name extends string, Schema extends z.ZodType>(
  definition: JobTypeDefinition<Name, Schema>,
): JobTypeDefinition<Name, Schema> {
  return definition;
}

export type PayloadOf<D> = D extends JobTypeDefinition<string, infer S> ? z.infer<S> : never;
