import { z } from 'zod';

import { PayloadInvalidError, NotFoundError, type FieldError } from '../errors';
import type { JobPolicy, JobTypeDefinition } from '../model/job-type';

export class DuplicateJobTypeError extends Error {
  constructor(name: string) {
    super(`job type "${name}" is registered twice`);
    this.name = 'DuplicateJobTypeError';
  }
}

export class UnknownJobTypeError extends Error {
  constructor(name: string) {
    super(`policy overrides name unknown job type "${name}"`);
    this.name = 'UnknownJobTypeError';
  }
}

/** The policy fields an environment may override (JOB_POLICY_OVERRIDES, parsed in src/config.ts). */
export const policyOverrideSchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(1_000).optional(),
  timeoutSeconds: z.number().min(0.1).max(86_400).optional(),
  concurrencyLimit: z.number().int().min(1).max(10_000).nullable().optional(),
  backoffBaseSeconds: z.number().min(0).max(86_400).optional(),
  backoffCapSeconds: z.number().min(0).max(604_800).optional(),
});

/** The job types known at run time, with their effective policies (registry policy + overrides). */
export class JobRegistry {
  private readonly types = new Map<string, { definition: JobTypeDefinition; policy: Readonly<JobPolicy> }>();

  constructor(definitions: readonly JobTypeDefinition[], overrides: Readonly<Record<string, Partial<JobPolicy>>> = {}) {
    for (const definition of definitions) {
      if (this.types.has(definition.name)) throw new DuplicateJobTypeError(definition.name);
      const policy = Object.freeze({ ...definition.policy, ...overrides[definition.name] });
      this.types.set(definition.name, { definition, policy });
    }
    for (const name of Object.keys(overrides)) {
      if (!this.types.has(name)) throw new UnknownJobTypeError(name);
    }
  }

  typeNames(): string[] {
    return [...this.types.keys()];
  }

  has(type: string): boolean {
    return this.types.has(type);
  }

  policyOf(type: string): Readonly<JobPolicy> {
    return this.entry(type).policy;
  }

  /** Validates a payload against its type's schema; 422 `payload_invalid` lists every failing field. */
  parsePayload(type: string, payload: unknown): unknown {
    const result = this.entry(type).definition.payload.safeParse(payload);
    if (result.success) return result.data;
    const details: FieldError[] = result.error.issues.map((issue) => ({
      field: ['payload', ...issue.path.map(String)].join('.'),
      message: issue.message,
    }));
    throw new PayloadInvalidError(details);
  }

  private entry(type: string): { definition: JobTypeDefinition; policy: Readonly<JobPolicy> } {
    const entry = this.types.get(type);
    if (!entry) throw new NotFoundError('job_type_not_found', `job type "${type}" is not registered`);
    return entry;
  }
}
