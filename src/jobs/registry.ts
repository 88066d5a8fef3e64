import { z } from 'zod';

import { PayloadInvalidError, NotFoundError, type FieldError } from '../errors';
import { MAX_CONCURRENCY_LIMIT, MAX_RATE_LIMIT_JOBS, MAX_RATE_LIMIT_PER_SECONDS, type JobPolicy, type JobTypeDefinition, type TypeRuntimeSettings } from '../model/job-type';

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

export const rateLimitSchema = z.strictObject({
  jobs: z.number().int().min(1).max(MAX_RATE_LIMIT_JOBS),
  perSeconds: z.number().int().min(1).max(MAX_RATE_LIMIT_PER_SECONDS),
});

/** The policy fields an environment may override (JOB_POLICY_OVERRIDES, parsed in src/config.ts). */
export const policyOverrideSchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(1_000).optional(),
  timeoutSeconds: z.number().min(0.1).max(86_400).optional(),
  concurrencyLimit: z.number().int().min(1).max(MAX_CONCURRENCY_LIMIT).nullable().optional(),
  keyConcurrencyLimit: z.number().int().min(1).max(MAX_CONCURRENCY_LIMIT).nullable().optional(),
  rateLimit: rateLimitSchema.nullable().optional(),
  backoffBaseSeconds: z.number().min(0).max(86_400).optional(),
  backoffCapSeconds: z.number().min(0).max(604_800).optional(),
});

interface Entry {
  definition: JobTypeDefinition;
  /** Registry policy + environment overrides: what a run-time override falls back to. */
  configured: Readonly<JobPolicy>;
  /** configured + the run-time settings: what every use case reads. */
  policy: Readonly<JobPolicy>;
  runtime: Readonly<TypeRuntimeSettings>;
}

/**
 * The job types known at run time, with their effective policies. Three layers, the later winning:
 * the registry (code), the environment (JOB_POLICY_OVERRIDES) and the run-time settings an admin
 * stores in the database (PATCH /admin/types/:type), which TypeSettings loads and refreshes. The
 * effective policy is computed when a layer changes, so `policyOf` stays a map lookup on every
 * lease call.
 */
export class JobRegistry {
  private readonly types = new Map<string, Entry>();
  private readonly listeners = new Set<(changed: readonly string[]) => void>();

  constructor(definitions: readonly JobTypeDefinition[], overrides: Readonly<Record<string, Partial<JobPolicy>>> = {}) {
    for (const definition of definitions) {
      if (this.types.has(definition.name)) throw new DuplicateJobTypeError(definition.name);
      // Registry entries written before keyConcurrencyLimit and rateLimit existed have neither.
      const configured = Object.freeze({ keyConcurrencyLimit: null, rateLimit: null, ...definition.policy, ...overrides[definition.name] });
      this.types.set(definition.name, { definition, configured, policy: configured, runtime: Object.freeze({}) });
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

  /** A paused type is never leased (enqueues are still accepted). Unknown types are not paused. */
  isPaused(type: string): boolean {
    return this.types.get(type)?.runtime.paused === true;
  }

  runtimeSettingsOf(type: string): Readonly<TypeRuntimeSettings> {
    return this.entry(type).runtime;
  }

  /**
   * Replaces the run-time layer (types not named lose theirs). Listeners hear of the types whose
   * effective policy or pause changed, so waiting lease calls can look again.
   */
  applyRuntimeSettings(settings: ReadonlyMap<string, TypeRuntimeSettings>): void {
    const changed: string[] = [];
    for (const [name, entry] of this.types) {
      const runtime = settings.get(name) ?? {};
      if (sameSettings(runtime, entry.runtime)) continue;
      const policy = Object.freeze({
        ...entry.configured,
        ...(runtime.concurrencyLimit === undefined ? {} : { concurrencyLimit: runtime.concurrencyLimit }),
        ...(runtime.keyConcurrencyLimit === undefined ? {} : { keyConcurrencyLimit: runtime.keyConcurrencyLimit }),
        ...(runtime.rateLimit === undefined ? {} : { rateLimit: Object.freeze({ ...runtime.rateLimit }) }),
      });
      this.types.set(name, { ...entry, policy, runtime: Object.freeze({ ...runtime }) });
      changed.push(name);
    }
    if (changed.length > 0) for (const listener of this.listeners) listener(changed);
  }

  /** Called after run-time settings changed, with the types concerned; returns an unsubscribe. */
  onSettingsChanged(listener: (changed: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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

  private entry(type: string): Entry {
    const entry = this.types.get(type);
    // A hostile type may be long: the message echoes a short prefix of it.
    if (!entry) throw new NotFoundError('job_type_not_found', `job type "${type.length > 64 ? `${type.slice(0, 64)}…` : type}" is not registered`);
    return entry;
  }
}

function sameSettings(a: TypeRuntimeSettings, b: TypeRuntimeSettings): boolean {
  return (
    a.paused === b.paused &&
    a.concurrencyLimit === b.concurrencyLimit &&
    a.keyConcurrencyLimit === b.keyConcurrencyLimit &&
    a.rateLimit?.jobs === b.rateLimit?.jobs &&
    a.rateLimit?.perSeconds === b.rateLimit?.perSeconds
  );
}
