import { mayAccess } from '../auth/access';
import { AppError, UnavailableError, ValidationError } from '../errors';
import type { Dedupe, Job } from '../model/job';
import type { Principal, Role } from '../model/principal';
import { translateStorageError } from '../storage/errors';
import type { InsertResult, NewJob } from '../storage/job-repository';
import { BAD_ENDINGS, dependencyError, type Dependencies } from './dependencies';
import { GroupCommit } from '../group-commit';
import { CallbackTargets } from '../callbacks/callback-targets';
import { newJobId, type QueueDeps } from './queue-deps';

/** Without configured targets, callbacks are off: every callbackUrl is refused. */
const CALLBACKS_OFF = CallbackTargets.parse('');

export interface EnqueueInput {
  type: string;
  payload: unknown;
  priority?: number;
  scheduleAt?: Date;
  maxAttempts?: number;
  idempotencyKey?: string;
  /** Jobs that must all succeed first; the job waits (status `waiting`) until then. */
  dependsOn?: readonly string[];
  /** Counted by the type's keyConcurrencyLimit. */
  concurrencyKey?: string;
  /** Collapse enqueues with the same key (one type, one tenant). */
  dedupe?: Dedupe;
  /** Labels the job is found by; a repeated one is kept once. */
  tags?: readonly string[];
  /** POSTed the job's outcome when it finishes; must be allowed by CALLBACK_ALLOWED_HOSTS. */
  callbackUrl?: string;
  /** The trace context of the enqueuing request (tracing on): the job's runs join that trace. */
  traceparent?: string;
  /**
   * The principal the job acts for when it is not the enqueuer (the job's tenant stays the
   * enqueuer's): the scheduler's jobs act for the schedule's owner. Never taken from a request.
   */
  actsFor?: { sub: string; role: Role };
}

/** `deduplicated` is set exactly when the enqueue asked for dedupe: true when it returned an existing job. */
export type EnqueueResult = { job: Job; created: boolean; deduplicated?: boolean };
export type BatchItemResult = EnqueueResult | { error: AppError };

export const DEFAULT_PRIORITY = 50;
const MAX_GROUP = 500;
/** Under a stream of enqueues, wait this long to gather more into one insert (a lone one never waits). */
const GROUP_LINGER_MS = 2;

/** A driver error that says the database is not there (retrying each job alone would not help). */
function isUnreachable(err: unknown): boolean {
  return err instanceof Error && translateStorageError(err) instanceof UnavailableError;
}
export const MAX_BATCH = 1_000;

/** Putting work on the queue: one job, a batch, and jobs that depend on others. */
export class Enqueuer {
  /** Concurrent single enqueues share one insertMany (see GroupCommit). */
  private readonly inserts: GroupCommit<NewJob, EnqueueResult>;

  constructor(
    private readonly deps: QueueDeps,
    private readonly dependencies: Dependencies,
  ) {
    this.inserts = new GroupCommit({ flush: (jobs) => this.insertGroup(jobs), maxBatch: MAX_GROUP, lingerMs: GROUP_LINGER_MS });
  }

  /**
   * One round trip for jobs from concurrent requests. A write error other than a duplicate key
   * (reported per job by insertMany) is the group's: then each job is written alone, so every
   * request gets its own outcome and one bad job never fails another's.
   */
  private async insertGroup(jobs: NewJob[]): Promise<EnqueueResult[]> {
    if (jobs.length === 1) return [await this.deps.jobs.insert(jobs[0]!)];
    try {
      return await this.deps.jobs.insertMany(jobs);
    } catch (err) {
      if (err instanceof UnavailableError || isUnreachable(err)) throw err;
      return Promise.all(jobs.map((job) => this.deps.jobs.insert(job)));
    }
  }

  async enqueue(principal: Principal, input: EnqueueInput): Promise<EnqueueResult> {
    const now = this.deps.clock.now();
    const job = this.prepareJob(principal, input, now);
    if (input.dependsOn && input.dependsOn.length > 0) return withDedupeFlag(job, await this.enqueueWithParents({ principal, job, dependsOn: input.dependsOn, now }));
    if (job.dedupe) return this.enqueueDeduped(job);
    const result = await this.inserts.submit(job);
    if (result.created) this.emitEnqueued(result.job);
    return result;
  }

  /**
   * Enqueues up to MAX_BATCH jobs, each validated on its own; the valid ones without dependencies
   * are inserted in one round trip. Results come back in request order: the job, or why it was refused.
   */
  async enqueueBatch(principal: Principal, inputs: readonly EnqueueInput[]): Promise<BatchItemResult[]> {
    const now = this.deps.clock.now();
    const results: BatchItemResult[] = new Array<BatchItemResult>(inputs.length);
    const plain: { index: number; job: NewJob }[] = [];
    for (const [index, input] of inputs.entries()) {
      try {
        const job = this.prepareJob(principal, input, now);
        if (input.dependsOn && input.dependsOn.length > 0) {
          results[index] = withDedupeFlag(job, await this.enqueueWithParents({ principal, job, dependsOn: input.dependsOn, now }));
        } else if (job.dedupe) {
          // In request order, one at a time: a later item with the same key finds the earlier one.
          results[index] = await this.enqueueDeduped(job);
        } else {
          plain.push({ index, job });
        }
      } catch (err) {
        if (!(err instanceof AppError) || err instanceof UnavailableError) throw err;
        results[index] = { error: err };
      }
    }
    const inserted = await this.deps.jobs.insertMany(plain.map((p) => p.job));
    for (const [i, result] of inserted.entries()) {
      results[plain[i]!.index] = result;
      if (result.created) this.emitEnqueued(result.job);
    }
    return results;
  }

  /** A dedupe enqueue: never group-committed, since its outcome depends on the jobs already there. */
  private async enqueueDeduped(job: NewJob): Promise<EnqueueResult> {
    const result = await this.insertDeduped(job);
    if (result.created && result.job.status === 'queued') this.emitEnqueued(result.job);
    return withDedupeFlag(job, result);
  }

  /** The insert of the job's dedupe mode (active dedupes in the plain insert, on its unique key). */
  private insertDeduped(job: NewJob): Promise<InsertResult> {
    const dedupe = job.dedupe;
    if (dedupe?.mode === 'throttle') return this.deps.jobs.insertThrottled({ ...job, dedupe: { ...dedupe, seconds: dedupe.seconds! } });
    if (dedupe?.mode === 'debounce') return this.deps.jobs.insertDebounced(job);
    return this.deps.jobs.insert(job);
  }

  private emitEnqueued(job: Job): void {
    this.deps.events.emit('enqueued', { jobId: job.jobId, type: job.type, tenant: job.tenant });
  }

  /** Validates one enqueue request and builds the job to insert (no I/O). */
  private prepareJob(principal: Principal, input: EnqueueInput, now: Date): NewJob {
    const { registry } = this.deps;
    const policy = registry.policyOf(input.type);
    const payload = registry.parsePayload(input.type, input.payload);
    checkDedupe(input);
    // A debounced job runs `seconds` after the last enqueue with its key.
    const nextRunAt = input.dedupe?.mode === 'debounce' ? new Date(now.getTime() + input.dedupe.seconds! * 1000) : (input.scheduleAt ?? now);
    return {
      jobId: newJobId(),
      type: input.type,
      priority: input.priority ?? DEFAULT_PRIORITY,
      payload,
      maxAttempts: input.maxAttempts ?? policy.maxAttempts,
      nextRunAt,
      idempotencyKey: input.idempotencyKey ?? null,
      tenant: principal.tenant ?? null,
      createdBy: principal.sub,
      createdByRole: principal.role,
      now,
      concurrencyKey: input.concurrencyKey ?? null,
      dedupe: input.dedupe ? { key: input.dedupe.key, mode: input.dedupe.mode, ...(input.dedupe.seconds === undefined ? {} : { seconds: input.dedupe.seconds }) } : null,
      ...(input.tags && input.tags.length > 0 ? { tags: [...new Set(input.tags)] } : {}),
      ...(input.callbackUrl === undefined ? {} : { callbackUrl: (this.deps.callbackTargets ?? CALLBACKS_OFF).check(input.callbackUrl) }),
      ...(input.traceparent === undefined ? {} : { traceparent: input.traceparent }),
      ...(input.actsFor === undefined ? {} : { actsFor: { sub: input.actsFor.sub, role: input.actsFor.role } }),
    };
  }

  /**
   * A job that depends on others. Job ids are made by the server, so a new job can only depend on
   * jobs that already exist: the graph stays acyclic by construction. The order below never strands
   * a child, whenever a parent finishes: (1) mark the parents, so that finishing one from now on
   * settles its children; (2) read their states; (3) insert the child; (4) read them again and settle
   * what finished meanwhile. Settling is idempotent, so the parent's side and ours may both run it.
   */
  private async enqueueWithParents(params: { principal: Principal; job: NewJob; dependsOn: readonly string[]; now: Date }): Promise<EnqueueResult> {
    const { principal, job, dependsOn, now } = params;
    const parentIds = [...new Set(dependsOn)];
    if (parentIds.length !== dependsOn.length) throw new ValidationError('dependsOn lists a job twice', [{ field: 'dependsOn', message: 'must not repeat a job id' }]);
    await this.deps.jobs.markHasChildren(parentIds);
    const parents = await this.deps.jobs.findByIds(parentIds);
    const visible = new Map(parents.filter((p) => mayAccess(principal, 'job', 'read', p)).map((p) => [p.jobId, p]));
    const missing = parentIds.map((id, i) => ({ id, i })).filter(({ id }) => !visible.has(id));
    if (missing.length > 0) {
      throw new ValidationError('dependsOn names unknown jobs', missing.map(({ id, i }) => ({ field: `dependsOn.${i}`, message: `job ${id} does not exist` })));
    }
    const failedParent = parents.find((p) => BAD_ENDINGS.has(p.status));
    const pending = parentIds.filter((id) => visible.get(id)!.status !== 'succeeded');
    const result = await this.insertDeduped({
      ...job,
      dependsOn: parentIds,
      pendingParents: failedParent ? [] : pending,
      status: failedParent ? 'cancelled' : pending.length > 0 ? 'waiting' : 'queued',
      ...(failedParent ? { lastError: dependencyError(failedParent.jobId, failedParent.status) } : {}),
    });
    if (!result.created) return result;
    if (result.job.status === 'queued') this.emitEnqueued(result.job);
    if (result.job.status !== 'waiting') return result;

    const latest = await this.deps.jobs.findByIds(pending);
    const bad = latest.find((p) => BAD_ENDINGS.has(p.status));
    if (bad) {
      await this.dependencies.cancelChild({ childId: result.job.jobId, error: dependencyError(bad.jobId, bad.status), now });
    } else {
      const succeeded = latest.filter((p) => p.status === 'succeeded').map((p) => p.jobId);
      if (succeeded.length > 0) await this.dependencies.releaseChild({ childId: result.job.jobId, succeededParents: succeeded, nextRunAt: result.job.nextRunAt, now });
    }
    const current = await this.deps.jobs.findById(result.job.jobId);
    return { job: current ?? result.job, created: true };
  }
}

function withDedupeFlag(job: NewJob, result: EnqueueResult): EnqueueResult {
  return job.dedupe ? { ...result, deduplicated: !result.created } : result;
}

/** The combinations API.md refuses (422), named by field. */
function checkDedupe(input: EnqueueInput): void {
  const { dedupe } = input;
  if (!dedupe) return;
  const problems: { field: string; message: string }[] = [];
  if (input.idempotencyKey !== undefined) problems.push({ field: 'dedupe', message: 'give either idempotencyKey or dedupe, not both' });
  if (dedupe.mode === 'active' && dedupe.seconds !== undefined) problems.push({ field: 'dedupe.seconds', message: 'is refused with mode "active" (the key holds while the job is unfinished)' });
  if (dedupe.mode !== 'active' && dedupe.seconds === undefined) problems.push({ field: 'dedupe.seconds', message: `is required with mode "${dedupe.mode}"` });
  if (dedupe.mode === 'debounce' && input.scheduleAt !== undefined) problems.push({ field: 'scheduleAt', message: 'is refused with dedupe mode "debounce" (the job runs `seconds` after the last enqueue)' });
  if (dedupe.mode === 'debounce' && input.dependsOn && input.dependsOn.length > 0) problems.push({ field: 'dependsOn', message: 'is refused with dedupe mode "debounce" (only a queued job is debounced)' });
  if (problems.length > 0) throw new ValidationError(`invalid dedupe: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, problems);
}
