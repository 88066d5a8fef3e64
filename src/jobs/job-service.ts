import { randomBytes } from 'node:crypto';

import { authorize, mayAccess } from '../auth/access';
import { type Ownership } from '../model/principal';
import type { Principal } from '../model/principal';
import { AppError, InvalidStateError, LeaseConflictError, NotFoundError, UnavailableError, ValidationError } from '../errors';
import type { JobRepository, LeaseHolder, ClaimRequest, NewJob } from '../storage/job-repository';
import { toJob } from '../storage/job-repository';
import type { JobDocument } from '../storage/job-model';
import type { HeldSlot, SlotRepository } from '../storage/slot-repository';
import type { Clock, RandomSource } from '../model/clock';
import type { Job, JobError, JobStatus, LeasedJob } from '../model/job';
import type { JobEvents } from './job-events';
import { LeaseWaiters } from './lease-waiters';
import type { JobRegistry } from './registry';
import { retryDelayMs } from './retry-policy';

export interface JobServiceDeps {
  jobs: JobRepository;
  slots: SlotRepository;
  registry: JobRegistry;
  events: JobEvents;
  clock: Clock;
  random: RandomSource;
  /** Minimum time between two reclaim steps of this process (0: before every lease). */
  reclaimIntervalMs: number;
  /** Long-poll: how often one shared query looks for work while lease calls wait. */
  leasePollIntervalMs?: number;
}

export interface EnqueueInput {
  type: string;
  payload: unknown;
  priority?: number;
  scheduleAt?: Date;
  maxAttempts?: number;
  idempotencyKey?: string;
  /** Jobs that must all succeed first; the job waits (status `waiting`) until then. */
  dependsOn?: readonly string[];
}

export interface LeaseInput {
  workerId: string;
  /** null: every registered type. */
  types: readonly string[] | null;
  limit: number;
  /** Long-poll: when nothing is available, wait up to this long for work (0: answer at once). */
  waitMs?: number;
  /** Aborted when the caller goes away; the wait ends early. */
  signal?: AbortSignal;
  /** A tenant token leases only its tenant's jobs. */
  tenant?: string;
}

export interface ReportTarget {
  jobId: string;
  workerId: string;
  leaseId?: string;
  principal: Principal;
}

export const DEFAULT_PRIORITY = 50;
export const MAX_BATCH = 1_000;
const BAD_ENDINGS = new Set<JobStatus>(['failed', 'dlq', 'cancelled']);

function dependencyError(parentId: string, status: JobStatus): JobError {
  return { code: 'dependency_failed', message: `job ${parentId} it depends on ended ${status}` };
}

export type BatchItemResult = { job: Job; created: boolean } | { error: AppError };
const MAX_CLAIM_ROUNDS = 3;
/** A job can change state only a few times in a row (queued → leased → queued ...) before a cancel wins. */
const MAX_CANCEL_ROUNDS = 10;

/** The ownership fields of a stored job, for the access rule (the document itself is passed on unchanged). */
function ownershipOfJob<D extends Pick<JobDocument, 'createdBy' | 'createdByRole' | 'tenant'>>(doc: D): D & Ownership {
  return Object.assign(doc, { createdByRole: doc.createdByRole ?? null, tenant: doc.tenant ?? null });
}
const RECLAIM_BATCH = 200;

export function newJobId(): string {
  return `job_${randomBytes(12).toString('hex')}`;
}

function newLeaseId(): string {
  return `lease_${randomBytes(12).toString('hex')}`;
}

/**
 * The queue's use cases. Every job state transition goes through here and emits one event.
 * Knows nothing of HTTP.
 */
export class JobService {
  private lastReclaimAt = Number.NEGATIVE_INFINITY;
  private readonly waiters: LeaseWaiters;

  constructor(private readonly deps: JobServiceDeps) {
    this.waiters = new LeaseWaiters({
      events: deps.events,
      pollIntervalMs: deps.leasePollIntervalMs ?? 1_000,
      isLimited: (type) => deps.registry.has(type) && deps.registry.policyOf(type).concurrencyLimit !== null,
      countAvailable: (scope) => this.countLeasable(scope),
    });
  }

  /**
   * How many jobs a lease call of this scope could take now (at most `max`): available jobs of its
   * types and tenant, where a limited type counts no more than its free slots. The long-poll probe.
   */
  private async countLeasable(params: { types: readonly string[] | null; tenant: string | undefined; max: number }): Promise<number> {
    const { registry, slots, jobs, clock } = this.deps;
    const now = clock.now();
    await this.reclaimIfDue(now, false);
    const freeSlots = new Map<string, number>();
    for (const type of params.types ?? registry.typeNames()) {
      const limit = registry.policyOf(type).concurrencyLimit;
      if (limit !== null) freeSlots.set(type, await slots.countFree({ type, limit, now, max: params.max }));
    }
    const full = [...freeSlots].filter(([, free]) => free === 0).map(([type]) => type);
    const types = params.types ? params.types.filter((t) => !full.includes(t)) : null;
    if (types && types.length === 0) return 0;
    const available = await jobs.findAvailable({
      types,
      ...(types === null && full.length > 0 ? { excludeTypes: full } : {}),
      now,
      limit: params.max,
      ...(params.tenant === undefined ? {} : { tenant: params.tenant }),
    });
    let count = 0;
    for (const job of available) {
      const free = freeSlots.get(job.type);
      if (free === undefined) count += 1;
      else if (free > 0) {
        freeSlots.set(job.type, free - 1);
        count += 1;
      }
    }
    return count;
  }

  /** Lease calls now waiting for work (long-poll). */
  get waitingLeaseCalls(): number {
    return this.waiters.size;
  }

  /** Ends every long-poll wait (shutdown). */
  close(): void {
    this.waiters.close();
  }

  async enqueue(principal: Principal, input: EnqueueInput): Promise<{ job: Job; created: boolean }> {
    const now = this.deps.clock.now();
    const job = this.prepareJob(principal, input, now);
    if (input.dependsOn && input.dependsOn.length > 0) return this.enqueueWithParents(principal, job, input.dependsOn, now);
    const result = await this.deps.jobs.insert(job);
    if (result.created) this.deps.events.emit('enqueued', { jobId: result.job.jobId, type: result.job.type, tenant: result.job.tenant });
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
          results[index] = await this.enqueueWithParents(principal, job, input.dependsOn, now);
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
      if (result.created) this.deps.events.emit('enqueued', { jobId: result.job.jobId, type: result.job.type, tenant: result.job.tenant });
    }
    return results;
  }

  /** Validates one enqueue request and builds the job to insert (no I/O). */
  private prepareJob(principal: Principal, input: EnqueueInput, now: Date): NewJob {
    const { registry } = this.deps;
    const policy = registry.policyOf(input.type);
    const payload = registry.parsePayload(input.type, input.payload);
    return {
      jobId: newJobId(),
      type: input.type,
      priority: input.priority ?? DEFAULT_PRIORITY,
      payload,
      maxAttempts: input.maxAttempts ?? policy.maxAttempts,
      nextRunAt: input.scheduleAt ?? now,
      idempotencyKey: input.idempotencyKey ?? null,
      tenant: principal.tenant ?? null,
      createdBy: principal.sub,
      createdByRole: principal.role,
      now,
    };
  }

  /**
   * A job that depends on others. Job ids are made by the server, so a new job can only depend on
   * jobs that already exist: the graph stays acyclic by construction. The order below never strands
   * a child, whenever a parent finishes: (1) mark the parents, so that finishing one from now on
   * settles its children; (2) read their states; (3) insert the child; (4) read them again and settle
   * what finished meanwhile. Settling is idempotent, so the parent's side and ours may both run it.
   */
  private async enqueueWithParents(principal: Principal, job: NewJob, dependsOn: readonly string[], now: Date): Promise<{ job: Job; created: boolean }> {
    const parentIds = [...new Set(dependsOn)];
    if (parentIds.length !== dependsOn.length) throw new ValidationError('dependsOn lists a job twice', [{ field: 'dependsOn', message: 'must not repeat a job id' }]);
    await this.deps.jobs.markHasChildren(parentIds);
    const parents = await this.deps.jobs.findByIds(parentIds);
    const visible = new Map(parents.filter((p) => mayAccess(principal, 'job', 'read', ownershipOfJob(p))).map((p) => [p._id, p]));
    const missing = parentIds.map((id, i) => ({ id, i })).filter(({ id }) => !visible.has(id));
    if (missing.length > 0) {
      throw new ValidationError('dependsOn names unknown jobs', missing.map(({ id, i }) => ({ field: `dependsOn.${i}`, message: `job ${id} does not exist` })));
    }
    const failedParent = parents.find((p) => BAD_ENDINGS.has(p.status));
    const pending = parentIds.filter((id) => visible.get(id)!.status !== 'succeeded');
    const result = await this.deps.jobs.insert({
      ...job,
      dependsOn: parentIds,
      pendingParents: failedParent ? [] : pending,
      status: failedParent ? 'cancelled' : pending.length > 0 ? 'waiting' : 'queued',
      ...(failedParent ? { lastError: dependencyError(failedParent._id, failedParent.status) } : {}),
    });
    if (!result.created) return result;
    if (result.job.status === 'queued') this.deps.events.emit('enqueued', { jobId: result.job.jobId, type: result.job.type, tenant: result.job.tenant });
    if (result.job.status !== 'waiting') return result;

    const latest = await this.deps.jobs.findByIds(pending);
    const bad = latest.find((p) => BAD_ENDINGS.has(p.status));
    if (bad) {
      const cancelled = await this.deps.jobs.cancelWaiting({ childId: result.job.jobId, error: dependencyError(bad._id, bad.status), now });
      if (cancelled) this.deps.events.emit('cancelled', { jobId: cancelled._id, type: cancelled.type, from: 'waiting' });
    } else {
      const succeeded = latest.filter((p) => p.status === 'succeeded').map((p) => p._id);
      if (succeeded.length > 0) await this.releaseChild({ childId: result.job.jobId, succeededParents: succeeded, nextRunAt: result.job.nextRunAt, now });
    }
    const current = await this.deps.jobs.findById(result.job.jobId);
    return { job: current ? toJob(current) : result.job, created: true };
  }

  private async releaseChild(params: { childId: string; succeededParents: readonly string[]; nextRunAt: Date; now: Date }): Promise<void> {
    const released = await this.deps.jobs.settleParents(params);
    if (released) this.deps.events.emit('released', { jobId: released._id, type: released.type, tenant: released.tenant ?? null });
  }

  /**
   * A parent finished: release the children waiting only for it, or cancel them all (and theirs)
   * when it ended badly. Runs only for jobs that have children; costs a query and an update or two
   * per child, never a scan.
   */
  private async settleChildren(parent: { _id: string; hasChildren?: boolean }, outcome: JobStatus, now: Date): Promise<void> {
    if (!parent.hasChildren) return;
    const children = await this.deps.jobs.findWaitingChildren(parent._id);
    for (const child of children) {
      if (outcome === 'succeeded') {
        await this.releaseChild({ childId: child._id, succeededParents: [parent._id], nextRunAt: child.nextRunAt, now });
        continue;
      }
      const cancelled = await this.deps.jobs.cancelWaiting({ childId: child._id, error: dependencyError(parent._id, outcome), now });
      if (cancelled) {
        this.deps.events.emit('cancelled', { jobId: cancelled._id, type: cancelled.type, from: 'waiting' });
        await this.settleChildren(cancelled, 'cancelled', now);
      }
    }
  }

  /**
   * Claims up to `limit` available jobs for one worker in a few round trips: reclaim expired leases
   * (throttled), read the best candidates, take concurrency slots where a type is limited, then
   * claim them all in one conditional bulk write. Races lost to other workers are retried a bounded
   * number of times.
   */
  async lease(input: LeaseInput): Promise<{ leasedAt: Date; jobs: LeasedJob[] }> {
    // The wait is real time (a request's duration), not the injected clock.
    const deadline = Date.now() + (input.waitMs ?? 0);
    for (;;) {
      const since = this.waiters.currentSequence;
      const result = await this.leaseOnce(input);
      if (result.jobs.length > 0 || Date.now() >= deadline || input.signal?.aborted) return result;
      const woke = await this.waiters.wait({ types: input.types, tenant: input.tenant, deadline, since, ...(input.signal ? { signal: input.signal } : {}) });
      // Nothing arrived that this call could take: answer empty without asking the database again.
      if (woke !== 'woken') return result;
    }
  }

  private async leaseOnce(input: LeaseInput): Promise<{ leasedAt: Date; jobs: LeasedJob[] }> {
    const { registry, clock } = this.deps;
    if (input.types) {
      const unknown = input.types.filter((t) => !registry.has(t));
      if (unknown.length > 0) {
        throw new ValidationError('unknown job type in "type"', unknown.map((t) => ({ field: 'type', message: `job type "${t}" is not registered` })));
      }
    }
    const now = clock.now();
    await this.reclaimIfDue(now, false);

    const won: JobDocument[] = [];
    for (let round = 0; round < MAX_CLAIM_ROUNDS && won.length < input.limit; round += 1) {
      const want = input.limit - won.length;
      const candidates = await this.deps.jobs.findAvailable({
        types: input.types,
        now,
        limit: Math.min(want * 2, 200),
        ...(input.tenant === undefined ? {} : { tenant: input.tenant }),
      });
      if (candidates.length === 0) break;
      const { requests, slots } = await this.planClaims({ candidates, want, workerId: input.workerId, now });
      const claimed = await this.deps.jobs.claim(requests, now);
      const claimedLeases = new Set(claimed.map((j) => j.leaseId));
      await this.deps.slots.release(slots.filter((s) => !claimedLeases.has(s.leaseId)));
      won.push(...claimed);
      if (claimed.length === requests.length) break;
    }
    for (const job of won) {
      this.deps.events.emit('leased', { jobId: job._id, type: job.type, attempt: job.attempt, workerId: input.workerId });
    }
    return {
      leasedAt: now,
      jobs: won.map((job) => ({
        jobId: job._id,
        type: job.type,
        payload: job.payload,
        attempt: job.attempt,
        leaseId: job.leaseId!,
        leaseExpiresAt: job.leaseExpiresAt!,
      })),
    };
  }

  /** Chooses which candidates to claim, in order, taking a slot for each job of a limited type. */
  private async planClaims(params: {
    candidates: JobDocument[];
    want: number;
    workerId: string;
    now: Date;
  }): Promise<{ requests: ClaimRequest[]; slots: HeldSlot[] }> {
    const { registry } = this.deps;
    const { candidates, want, workerId, now } = params;
    const expiryOf = (type: string): Date => new Date(now.getTime() + registry.policyOf(type).timeoutSeconds * 1000);

    const neededSlots = new Map<string, number>();
    for (const candidate of candidates.slice(0, want * 2)) {
      if (registry.policyOf(candidate.type).concurrencyLimit !== null) {
        neededSlots.set(candidate.type, Math.min(want, (neededSlots.get(candidate.type) ?? 0) + 1));
      }
    }
    // A limited type's free slots are only trustworthy once the leases expired at `now` are
    // reclaimed (a slot expires with its lease), so the throttle does not apply here.
    if (neededSlots.size > 0 && this.lastReclaimAt !== now.getTime()) await this.reclaimIfDue(now, true);
    const slotsByType = new Map<string, HeldSlot[]>();
    const allSlots: HeldSlot[] = [];
    for (const [type, count] of neededSlots) {
      const held = await this.deps.slots.acquire({
        type,
        limit: registry.policyOf(type).concurrencyLimit!,
        leaseIds: Array.from({ length: count }, newLeaseId),
        now,
        expiresAt: expiryOf(type),
      });
      slotsByType.set(type, [...held]);
      allSlots.push(...held);
    }

    const requests: ClaimRequest[] = [];
    for (const candidate of candidates) {
      if (requests.length === want) break;
      const base = { candidate, workerId, leaseExpiresAt: expiryOf(candidate.type) };
      if (registry.policyOf(candidate.type).concurrencyLimit === null) {
        requests.push({ ...base, leaseId: newLeaseId(), slotId: null });
        continue;
      }
      const slot = slotsByType.get(candidate.type)?.shift();
      if (slot) requests.push({ ...base, leaseId: slot.leaseId, slotId: slot.slotId });
    }
    return { requests, slots: allSlots };
  }

  private async reclaimIfDue(now: Date, force: boolean): Promise<void> {
    if (!force && now.getTime() - this.lastReclaimAt < this.deps.reclaimIntervalMs) return;
    this.lastReclaimAt = now.getTime();
    await this.reclaimExpiredLeases(now);
  }

  /**
   * Returns expired leases to the queue, or to `dlq` when their attempts are used up, or ends them
   * `cancelled` when a cancel was acknowledged. Frees the slot only of a lease this call took back:
   * a lease whose heartbeat won the race keeps its slot.
   */
  async reclaimExpiredLeases(now: Date = this.deps.clock.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.deps.jobs.findExpiredLeases(now, RECLAIM_BATCH);
      const reclaimed = await Promise.all(
        expired.map(async (job) => {
          const after = await this.deps.jobs.reclaimLease({ job, now });
          return after ? { before: job, after } : null;
        }),
      );
      const done = reclaimed.filter((r): r is { before: JobDocument; after: JobDocument } => r !== null);
      await this.deps.slots.release(done.filter(({ before }) => before.slotId && before.leaseId).map(({ before }) => ({ slotId: before.slotId!, leaseId: before.leaseId! })));
      for (const { after: job } of done) {
        if (job.status === 'dlq') {
          this.deps.events.emit('dead_lettered', { jobId: job._id, type: job.type, attempt: job.attempt, reason: 'lease_expired' });
          await this.settleChildren(job, 'dlq', now);
        } else if (job.status === 'cancelled') {
          this.deps.events.emit('cancelled', { jobId: job._id, type: job.type, from: 'leased' });
          await this.settleChildren(job, 'cancelled', now);
        } else {
          this.deps.events.emit('reclaimed', { jobId: job._id, type: job.type, attempt: job.attempt, tenant: job.tenant ?? null });
        }
      }
      total += done.length;
      if (expired.length < RECLAIM_BATCH) return total;
    }
  }

  async heartbeat(
    target: ReportTarget,
    params: { progress?: number | undefined; irreversible?: boolean | undefined } = {},
  ): Promise<{ jobId: string; leaseExpiresAt: Date; cancelRequested: boolean }> {
    const now = this.deps.clock.now();
    const holder = await this.resolveHolder(target);
    const current = holder.job;
    const leaseExpiresAt = new Date(now.getTime() + this.deps.registry.policyOf(current.type).timeoutSeconds * 1000);
    const updated = await this.deps.jobs.heartbeat({
      jobId: target.jobId,
      holder: holder.filter,
      now,
      leaseExpiresAt,
      progress: params.progress,
      irreversible: params.irreversible === true,
    });
    if (!updated) throw new LeaseConflictError();
    // The job's lease is what counts (a slot is never taken while its job is leased); extending the
    // slot too just spares the next lease call a check.
    if (current.slotId) await this.deps.slots.extend({ slotId: current.slotId, leaseId: current.leaseId! }, leaseExpiresAt);
    return { jobId: updated._id, leaseExpiresAt, cancelRequested: updated.cancelRequested };
  }

  async succeed(target: ReportTarget, result: unknown, durationMs?: number): Promise<{ jobId: string; status: JobStatus }> {
    const now = this.deps.clock.now();
    // Workers send their lease id; without it the lease is looked up by worker id first.
    const holder = target.leaseId === undefined ? (await this.resolveHolder(target)).filter : { ...this.holderOf(target), leaseId: target.leaseId };
    const partial = isPartialResult(result);
    const before = await this.deps.jobs.succeed({ jobId: target.jobId, holder, now, result, partial });
    if (!before) return this.throwReportConflict(target.jobId, target.principal.tenant);
    await this.releaseSlotOf(before);
    this.deps.events.emit('succeeded', { jobId: before._id, type: before.type, attempt: before.attempt, partial, ...(durationMs === undefined ? {} : { durationMs }) });
    await this.settleChildren(before, 'succeeded', now);
    return { jobId: before._id, status: 'succeeded' };
  }

  async fail(
    target: ReportTarget,
    error: JobError & { retryable?: boolean },
    durationMs?: number,
  ): Promise<{ jobId: string; status: JobStatus; attempt: number; nextRunAt: Date }> {
    const { registry, clock, random } = this.deps;
    const now = clock.now();
    const jobError: JobError = { message: error.message, ...(error.code === undefined ? {} : { code: error.code }) };
    // The update is conditional on the cancel flag read; a cancel acknowledged meanwhile makes it
    // miss, and the next round (which sees the flag) ends the job cancelled. The flag only ever goes
    // from unset to set while leased, so two rounds suffice.
    for (let round = 0; ; round += 1) {
      const { job, filter } = await this.resolveHolder(target);
      let next: { status: 'queued' | 'failed' | 'dlq' | 'cancelled'; nextRunAt?: Date };
      if (job.cancelRequested) next = { status: 'cancelled' };
      else if (error.retryable === false) next = { status: 'failed' };
      else if (job.attempt >= job.maxAttempts) next = { status: 'dlq' };
      else next = { status: 'queued', nextRunAt: new Date(now.getTime() + retryDelayMs(registry.policyOf(job.type), job.attempt, random)) };

      const before = await this.deps.jobs.fail({
        jobId: target.jobId,
        holder: filter,
        now,
        attempt: job.attempt,
        error: jobError,
        outcome: next.status === 'cancelled' ? 'cancelled' : 'failed',
        next,
      });
      if (!before) {
        if (round < 2) continue;
        throw new LeaseConflictError();
      }
      await this.releaseSlotOf(before);
      const base = { jobId: before._id, type: before.type, attempt: before.attempt, ...(durationMs === undefined ? {} : { durationMs }) };
      if (next.status === 'queued') this.deps.events.emit('retry_scheduled', { ...base, nextRunAt: next.nextRunAt! });
      else if (next.status === 'failed') this.deps.events.emit('failed', { ...base });
      else if (next.status === 'dlq') this.deps.events.emit('dead_lettered', { ...base, reason: 'attempts_exhausted' });
      else this.deps.events.emit('cancelled', { jobId: before._id, type: before.type, from: 'leased' });
      if (next.status !== 'queued') await this.settleChildren(before, next.status, now);
      return { jobId: before._id, status: next.status, attempt: before.attempt, nextRunAt: next.nextRunAt ?? before.nextRunAt };
    }
  }

  /**
   * Cancels a queued or waiting job at once; flags a leased one (its worker stops on the next
   * heartbeat, and every way out of the lease but success then ends it `cancelled`). The job may
   * change state while we look (a fail puts it back to `queued`, a reclaim, a lease), so the
   * read and conditional update are retried until the cancel is done, flagged, or the job is found
   * finished.
   */
  async cancel(principal: Principal, jobId: string): Promise<{ jobId: string; status: JobStatus }> {
    const now = this.deps.clock.now();
    for (let round = 0; round < MAX_CANCEL_ROUNDS; round += 1) {
      const found = await this.deps.jobs.findById(jobId);
      const job = authorize({ principal, kind: 'job', action: 'write', id: jobId, resource: found && ownershipOfJob(found) });
      switch (job.status) {
        case 'queued':
        case 'waiting': {
          const cancelled = await this.deps.jobs.cancelQueued(jobId, now);
          if (!cancelled) continue;
          this.deps.events.emit('cancelled', { jobId, type: job.type, from: job.status });
          await this.settleChildren(cancelled, 'cancelled', now);
          return { jobId, status: 'cancelled' };
        }
        case 'leased': {
          // Its handler already did what cannot be undone (moved money): too late to cancel.
          if (job.irreversibleAt && !job.cancelRequested) throw new InvalidStateError('job has passed its point of no return and can no longer be cancelled');
          const flagged = await this.deps.jobs.requestCancel(jobId, now);
          if (!flagged) continue;
          if (!job.cancelRequested) this.deps.events.emit('cancel_requested', { jobId, type: job.type });
          return { jobId, status: 'leased' };
        }
        case 'cancelled':
          return { jobId, status: 'cancelled' };
        default:
          throw new InvalidStateError(`job is ${job.status} and can no longer be cancelled`);
      }
    }
    throw new UnavailableError('the job kept changing state while it was being cancelled; retry');
  }

  /**
   * Owner or admin; a non-admin learns nothing about jobs it did not create (403 either way). A
   * tenant token sees another tenant's job as if it did not exist.
   */
  async getJob(principal: Principal, jobId: string): Promise<Job> {
    const found = await this.deps.jobs.findById(jobId);
    return toJob(authorize({ principal, kind: 'job', action: 'read', id: jobId, resource: found && ownershipOfJob(found) }));
  }

  async requeue(jobId: string, tenant?: string): Promise<{ jobId: string; status: JobStatus }> {
    const now = this.deps.clock.now();
    const before = await this.deps.jobs.findById(jobId);
    if (!before || (tenant !== undefined && before.tenant !== tenant)) throw new NotFoundError('job_not_found', `job ${jobId} does not exist`);
    const requeued = await this.deps.jobs.requeue(jobId, now);
    if (!requeued) throw new InvalidStateError(`job is ${before.status}; only failed, dlq or cancelled jobs can be requeued`);
    this.deps.events.emit('requeued', { jobId, type: requeued.type, from: before.status, tenant: requeued.tenant ?? null });
    return { jobId, status: 'queued' };
  }

  private holderOf(target: ReportTarget): LeaseHolder {
    const tenant = target.principal.tenant === undefined ? {} : { tenant: target.principal.tenant };
    // A worker must hold the lease under its own worker id; an admin may report with the lease id alone.
    if (target.leaseId !== undefined) {
      return target.principal.role === 'admin' ? { leaseId: target.leaseId, ...tenant } : { leaseId: target.leaseId, workerId: target.workerId, ...tenant };
    }
    return { workerId: target.workerId, ...tenant };
  }

  /** Reads the job and checks the caller holds its current lease (404 unknown job, 409 otherwise). */
  private async resolveHolder(target: ReportTarget): Promise<{ job: JobDocument; filter: LeaseHolder & { leaseId: string } }> {
    const found = await this.deps.jobs.findById(target.jobId);
    const job = found && (target.principal.tenant === undefined || found.tenant === target.principal.tenant) ? found : null;
    if (!job) throw new NotFoundError('job_not_found', `job ${target.jobId} does not exist`);
    const filter = this.holderOf(target);
    const holds =
      job.status === 'leased' &&
      (filter.leaseId === undefined || filter.leaseId === job.leaseId) &&
      (filter.workerId === undefined || filter.workerId === job.workerId);
    if (!holds) throw new LeaseConflictError();
    // From here on the lease read is the one every write is conditional on.
    return { job, filter: { ...filter, leaseId: job.leaseId! } };
  }

  private async releaseSlotOf(job: Pick<JobDocument, 'slotId' | 'leaseId'>): Promise<void> {
    if (job.slotId && job.leaseId) await this.deps.slots.release([{ slotId: job.slotId, leaseId: job.leaseId }]);
  }

  private async throwReportConflict(jobId: string, tenant?: string): Promise<never> {
    const exists = await this.deps.jobs.findById(jobId);
    if (!exists || (tenant !== undefined && exists.tenant !== tenant)) throw new NotFoundError('job_not_found', `job ${jobId} does not exist`);
    throw new LeaseConflictError();
  }
}


const MAX_ITEM_ERRORS = 1_000;

/**
 * A handler that finished with some items failed reports `result.partial: true` and
 * `result.itemErrors: [{ item, code?, message }]`; the job still succeeds, counted apart in stats.
 */
function isPartialResult(result: unknown): boolean {
  if (typeof result !== 'object' || result === null || (result as { partial?: unknown }).partial !== true) return false;
  const itemErrors = (result as { itemErrors?: unknown }).itemErrors;
  const valid =
    Array.isArray(itemErrors) &&
    itemErrors.length <= MAX_ITEM_ERRORS &&
    itemErrors.every(
      (e: unknown) =>
        typeof e === 'object' &&
        e !== null &&
        ['string', 'number'].includes(typeof (e as { item?: unknown }).item) &&
        typeof (e as { message?: unknown }).message === 'string' &&
        ['undefined', 'string'].includes(typeof (e as { code?: unknown }).code),
    );
  if (!valid) {
    throw new ValidationError('a partial result needs itemErrors: [{ item, message, code? }]', [
      { field: 'body.result.itemErrors', message: `must be an array (at most ${MAX_ITEM_ERRORS}) of { item: string | number, message: string, code?: string }` },
    ]);
  }
  return true;
}
