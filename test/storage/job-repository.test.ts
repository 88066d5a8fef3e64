import type { Job } from '../../src/model/job';
import type { JobDocument } from '../../src/storage/job-model';
import { JobRepository, type ClaimRequest, type NewJob } from '../../src/storage/job-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { clearCollections, newJob, uniqueId, useSecondConnection } from '../helpers/storage';

/**
 * The contract of JobRepository, below the HTTP layer: every operation against the real test
 * database, every conditional write shown to miss when its condition no longer holds.
 */
const db = useTestDatabase();
const other = useSecondConnection(db);
let jobs: JobRepository;
let clock: TestClock;

beforeAll(() => {
  jobs = new JobRepository(db.connection);
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['jobs']);
});

const LEASE_MS = 30_000;

function seconds(n: number): number {
  return n * 1_000;
}

async function seed(...docs: JobDocument[]): Promise<void> {
  await db.connection.collection('jobs').insertMany(docs as unknown as Record<string, unknown>[]);
}

function claimRequest(candidate: Job, params: { now: Date; workerId?: string; slotId?: string | null }): ClaimRequest {
  return {
    candidate,
    leaseId: uniqueId('lease'),
    workerId: params.workerId ?? 'worker-a',
    leaseExpiresAt: new Date(params.now.getTime() + LEASE_MS),
    slotId: params.slotId ?? null,
  };
}

/** Inserts a queued job and leases it (attempt 1) as of the clock's now. */
async function leasedJob(overrides: Partial<NewJob> = {}): Promise<Job> {
  const now = clock.now();
  const { job } = await jobs.insert(newJob({ now, ...overrides }));
  const [claimed] = await jobs.claim({ requests: [claimRequest(job, { now })], now });
  if (!claimed) throw new Error('the seed claim lost');
  return claimed;
}

async function stored(jobId: string): Promise<Job> {
  const job = await jobs.findById(jobId);
  if (!job) throw new Error(`job ${jobId} is gone`);
  return job;
}

describe('insert', () => {
  it('stores a queued job and returns it as a plain Job, as findById reads it back', async () => {
    const now = clock.now();
    const input = newJob({ now, priority: 70, nextRunAt: new Date(now.getTime() + 5_000), tenant: 'acme' });
    const { job, created } = await jobs.insert(input);

    expect(created).toBe(true);
    expect(job).toMatchObject({
      jobId: input.jobId,
      type: 'thumbnail.create',
      status: 'queued',
      priority: 70,
      attempt: 0,
      maxAttempts: 3,
      nextRunAt: input.nextRunAt,
      leaseId: null,
      attempts: [],
      cancelRequested: false,
      tenant: 'acme',
      createdBy: 'service-1',
      createdByRole: 'service',
      createdAt: now,
      completedAt: null,
    });
    // No storage field (`_id`, `dedupeKey`) leaks into the model type.
    expect(Object.keys(job)).not.toEqual(expect.arrayContaining(['_id']));
    expect(job).not.toHaveProperty('dedupeKey');
    expect(await jobs.findById(input.jobId)).toEqual(job);
  });

  it('with an idempotency key used before by the same principal for the type, returns the first job (created: false)', async () => {
    const now = clock.now();
    const first = await jobs.insert(newJob({ now, idempotencyKey: 'k-1', payload: { first: true } }));
    clock.advance(1_000);
    const again = await jobs.insert(newJob({ now: clock.now(), idempotencyKey: 'k-1', payload: { first: false } }));

    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.job).toEqual(first.job);
    expect(await db.connection.collection('jobs').countDocuments({})).toBe(1);
  });

  it('scopes idempotency keys by tenant, role, subject and type: each other principal gets a job of its own', async () => {
    const now = clock.now();
    const base = { now, idempotencyKey: 'shared-key' };
    const first = await jobs.insert(newJob(base));
    const others = await Promise.all([
      jobs.insert(newJob({ ...base, createdBy: 'service-2' })),
      jobs.insert(newJob({ ...base, createdByRole: 'admin' })),
      jobs.insert(newJob({ ...base, tenant: 'acme' })),
      jobs.insert(newJob({ ...base, type: 'payout.execute' })),
    ]);

    expect(others.map((r) => r.created)).toEqual([true, true, true, true]);
    const ids = new Set([first.job.jobId, ...others.map((r) => r.job.jobId)]);
    expect(ids.size).toBe(5);
    // The same key again, per principal, still finds that principal's own job.
    const repeat = await jobs.insert(newJob({ ...base, tenant: 'acme' }));
    expect(repeat).toEqual({ job: others[2]!.job, created: false });
  });

  it('of racing inserts with one key on two connections (single and batched), creates one job and answers it to all', async () => {
    const theirs = new JobRepository(other.connection);
    const now = clock.now();
    const results = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? jobs : theirs).insert(newJob({ now, idempotencyKey: 'raced' }))),
      ...[jobs, theirs].map(async (repository) => (await repository.insertMany([newJob({ now, idempotencyKey: 'raced' })]))[0]!),
    ]);

    expect(results.filter((r) => r.created)).toHaveLength(1);
    const winner = results.find((r) => r.created)!.job;
    expect(results.every((r) => r.job.jobId === winner.jobId)).toBe(true);
    expect(await db.connection.collection('jobs').countDocuments({})).toBe(1);
  });

  it('never deduplicates jobs without a key', async () => {
    const now = clock.now();
    const a = await jobs.insert(newJob({ now }));
    const b = await jobs.insert(newJob({ now }));
    expect([a.created, b.created]).toEqual([true, true]);
    expect(await db.connection.collection('jobs').countDocuments({})).toBe(2);
  });

  it('does not mistake a repeated job id for an idempotent repeat: the duplicate key error (11000) comes through', async () => {
    const now = clock.now();
    const input = newJob({ now, idempotencyKey: 'k-a' });
    await jobs.insert(input);
    await expect(jobs.insert({ ...input, idempotencyKey: 'k-b' })).rejects.toMatchObject({ code: 11000 });
    await expect(jobs.insert({ ...input, idempotencyKey: null })).rejects.toMatchObject({ code: 11000 });
  });

  it('stores waiting jobs with their pending parents, and already-cancelled ones as finished', async () => {
    const now = clock.now();
    const waiting = await jobs.insert(newJob({ now, status: 'waiting', dependsOn: ['job_p1', 'job_p2'], pendingParents: ['job_p2'] }));
    const error = { code: 'dependency_failed', message: 'job job_p1 it depends on ended failed' };
    const cancelled = await jobs.insert(newJob({ now, status: 'cancelled', dependsOn: ['job_p1'], lastError: error }));

    expect(await stored(waiting.job.jobId)).toMatchObject({ status: 'waiting', dependsOn: ['job_p1', 'job_p2'], pendingParents: ['job_p2'], completedAt: null });
    expect(await stored(cancelled.job.jobId)).toMatchObject({ status: 'cancelled', lastError: error, completedAt: now });
  });
});

describe('insertMany', () => {
  it('returns nothing for no jobs', async () => {
    expect(await jobs.insertMany([])).toEqual([]);
  });

  it('inserts a batch in order; keys used before, or earlier in the same batch, come back as the first job', async () => {
    const now = clock.now();
    const earlier = await jobs.insert(newJob({ now, idempotencyKey: 'used-before' }));
    const batch = [
      newJob({ now, idempotencyKey: 'k-1' }),
      newJob({ now }),
      newJob({ now, idempotencyKey: 'k-1' }),
      newJob({ now, idempotencyKey: 'used-before' }),
      newJob({ now, idempotencyKey: 'k-1', createdBy: 'service-2' }),
    ];
    const results = await jobs.insertMany(batch);

    expect(results.map((r) => r.created)).toEqual([true, true, false, false, true]);
    expect(results.map((r) => r.job.jobId)).toEqual([batch[0]!.jobId, batch[1]!.jobId, batch[0]!.jobId, earlier.job.jobId, batch[4]!.jobId]);
    expect(results[3]!.job).toEqual(earlier.job);
    expect(await db.connection.collection('jobs').countDocuments({})).toBe(4);
    expect((await jobs.findByIds(results.map((r) => r.job.jobId))).length).toBe(4);
  });

  it('rejects a batch whose duplicate is a job id, not an idempotency key', async () => {
    const now = clock.now();
    const input = newJob({ now });
    await expect(jobs.insertMany([input, { ...input }])).rejects.toMatchObject({ code: 11000 });
  });
});

describe('findById / findByIds', () => {
  it('reads jobs by id, skipping unknown ones', async () => {
    const now = clock.now();
    const a = await jobs.insert(newJob({ now }));
    const b = await jobs.insert(newJob({ now }));
    expect(await jobs.findById('job_missing')).toBeNull();
    const found = await jobs.findByIds([a.job.jobId, 'job_missing', b.job.jobId]);
    expect(found.map((j) => j.jobId).sort()).toEqual([a.job.jobId, b.job.jobId].sort());
    expect(await jobs.findByIds([])).toEqual([]);
  });

  it('reads a job stored before roles, tenants and dependencies as a complete Job', async () => {
    const now = clock.now();
    const legacy: Record<string, unknown> = { ...jobDocument({ status: 'queued', createdAt: now }) };
    for (const field of ['createdByRole', 'tenant', 'dependsOn', 'pendingParents', 'hasChildren', 'partial', 'slotId', 'cancelRequestedAt', 'irreversibleAt']) delete legacy[field];
    await db.connection.collection('jobs').insertOne(legacy);

    expect(await stored(legacy._id as string)).toMatchObject({
      createdByRole: null,
      tenant: null,
      dependsOn: [],
      pendingParents: [],
      hasChildren: false,
      partial: false,
      slotId: null,
      cancelRequestedAt: null,
      irreversibleAt: null,
    });
  });
});

describe('findAvailable / findAvailableTypes', () => {
  it('returns queued jobs due at now (inclusive), best first: priority desc, then nextRunAt asc, up to limit', async () => {
    const now = clock.now();
    const at = (ms: number): Date => new Date(now.getTime() + ms);
    const doc = (id: string, fields: Partial<JobDocument>): JobDocument => ({ ...jobDocument({ status: 'queued', createdAt: at(-seconds(60)) }), _id: id, ...fields });
    await seed(
      doc('job_low_oldest', { priority: 10, nextRunAt: at(-seconds(30)) }),
      doc('job_high_later', { priority: 90, nextRunAt: at(-seconds(1)) }),
      doc('job_high_earlier', { priority: 90, nextRunAt: at(-seconds(2)) }),
      doc('job_due_now', { priority: 50, nextRunAt: now }),
      doc('job_future', { priority: 100, nextRunAt: at(1) }),
      { ...jobDocument({ status: 'leased', createdAt: at(-seconds(60)) }), _id: 'job_leased', priority: 100 },
      { ...jobDocument({ status: 'waiting', createdAt: at(-seconds(60)) }), _id: 'job_waiting', priority: 100 },
      { ...jobDocument({ status: 'succeeded', createdAt: at(-seconds(60)) }), _id: 'job_done', priority: 100 },
      { ...jobDocument({ status: 'dlq', createdAt: at(-seconds(60)) }), _id: 'job_dlq', priority: 100 },
    );

    const all = await jobs.findAvailable({ types: null, now, limit: 10 });
    expect(all.map((j) => j.jobId)).toEqual(['job_high_earlier', 'job_high_later', 'job_due_now', 'job_low_oldest']);
    expect(all.every((j) => j.status === 'queued')).toBe(true);
    expect((await jobs.findAvailable({ types: null, now, limit: 2 })).map((j) => j.jobId)).toEqual(['job_high_earlier', 'job_high_later']);
    expect(await jobs.findAvailableTypes({ types: null, now, limit: 3 })).toEqual(['thumbnail.create', 'thumbnail.create', 'thumbnail.create']);
    // A second later the future job is due and, with the top priority, first.
    expect((await jobs.findAvailable({ types: null, now: at(1), limit: 1 })).map((j) => j.jobId)).toEqual(['job_future']);
  });

  it('filters by types, by excluded types (only without types) and by tenant', async () => {
    const now = clock.now();
    const doc = (id: string, type: string, tenant: string | null, priority: number): JobDocument => ({
      ...jobDocument({ status: 'queued', createdAt: now, type, tenant }),
      _id: id,
      priority,
    });
    await seed(doc('job_a', 'type.a', null, 90), doc('job_b', 'type.b', 'acme', 80), doc('job_c', 'type.c', 'acme', 70), doc('job_a2', 'type.a', 'globex', 60));
    const ids = async (params: Omit<Parameters<JobRepository['findAvailable']>[0], 'now' | 'limit'>): Promise<string[]> =>
      (await jobs.findAvailable({ ...params, now, limit: 10 })).map((j) => j.jobId);

    expect(await ids({ types: ['type.a'] })).toEqual(['job_a', 'job_a2']);
    expect(await ids({ types: ['type.b', 'type.c'] })).toEqual(['job_b', 'job_c']);
    expect(await ids({ types: [] })).toEqual([]);
    expect(await ids({ types: null, excludeTypes: ['type.a', 'type.c'] })).toEqual(['job_b']);
    expect(await ids({ types: null, excludeTypes: [] })).toEqual(['job_a', 'job_b', 'job_c', 'job_a2']);
    // Explicit types win over exclusions (the caller only excludes when it names no types).
    expect(await ids({ types: ['type.a'], excludeTypes: ['type.a'] })).toEqual(['job_a', 'job_a2']);
    expect(await ids({ types: null, tenant: 'acme' })).toEqual(['job_b', 'job_c']);
    expect(await ids({ types: ['type.a'], tenant: 'acme' })).toEqual([]);
    expect(await jobs.findAvailableTypes({ types: null, excludeTypes: ['type.b'], now, limit: 10, tenant: 'acme' })).toEqual(['type.c']);
    expect(await jobs.findAvailableTypes({ types: null, now, limit: 10 })).toEqual(['type.a', 'type.b', 'type.c', 'type.a']);
  });
});

describe('findNextDueAt', () => {
  it('says when the next queued job of the scope that is not due yet falls due (null: none)', async () => {
    const now = clock.now();
    const at = (ms: number): Date => new Date(now.getTime() + ms);
    const doc = (id: string, fields: Partial<JobDocument>): JobDocument => ({ ...jobDocument({ status: 'queued', createdAt: now }), _id: id, ...fields });
    await seed(
      doc('job_due', { nextRunAt: at(-1_000) }),
      doc('job_at_now', { nextRunAt: now }),
      doc('job_a_later', { nextRunAt: at(60_000), type: 'type.a' }),
      doc('job_a_soon', { nextRunAt: at(5_000), type: 'type.a', tenant: 'acme' }),
      doc('job_b_soonest', { nextRunAt: at(1_000), type: 'type.b' }),
      { ...jobDocument({ status: 'leased', createdAt: now }), _id: 'job_leased', nextRunAt: at(500) },
      { ...jobDocument({ status: 'waiting', createdAt: now }), _id: 'job_waiting', nextRunAt: at(500) },
    );

    expect(await jobs.findNextDueAt({ types: null, now })).toEqual(at(1_000));
    expect(await jobs.findNextDueAt({ types: ['type.a'], now })).toEqual(at(5_000));
    expect(await jobs.findNextDueAt({ types: null, excludeTypes: ['type.b'], now })).toEqual(at(5_000));
    expect(await jobs.findNextDueAt({ types: ['type.a'], now, tenant: 'globex' })).toBeNull();
    expect(await jobs.findNextDueAt({ types: null, now: at(5_000) })).toEqual(at(60_000));
    expect(await jobs.findNextDueAt({ types: null, now: at(60_000) })).toBeNull();
  });
});

describe('claim', () => {
  it('leases a queued job: the returned Job carries the lease, and the attempt record is opened', async () => {
    const now = clock.now();
    const { job } = await jobs.insert(newJob({ now }));
    const request = claimRequest(job, { now, workerId: 'worker-7', slotId: 'thumbnail.create#0' });
    const [claimed] = await jobs.claim({ requests: [request], now });

    const lease = {
      status: 'leased',
      leaseId: request.leaseId,
      workerId: 'worker-7',
      leaseExpiresAt: request.leaseExpiresAt,
      slotId: 'thumbnail.create#0',
      attempt: 1,
      progress: 0,
      startedAt: now,
      updatedAt: now,
    };
    expect(claimed).toMatchObject({ jobId: job.jobId, ...lease });
    const after = await stored(job.jobId);
    expect(after).toMatchObject(lease);
    expect(after.attempts).toEqual([{ attempt: 1, leaseId: request.leaseId, workerId: 'worker-7', leasedAt: now, finishedAt: null, outcome: null, error: null }]);
  });

  it('returns nothing for no requests', async () => {
    expect(await jobs.claim({ requests: [], now: clock.now() })).toEqual([]);
  });

  it('is conditional on what was read: status queued, the attempt count, nextRunAt ≤ now, no cancel flag', async () => {
    const now = clock.now();
    const queued = (id: string, fields: Partial<JobDocument> = {}): JobDocument => ({ ...jobDocument({ status: 'queued', createdAt: now }), _id: id, ...fields });
    await seed(
      queued('job_ok'),
      queued('job_retried', { attempt: 1 }),
      queued('job_not_due', { nextRunAt: new Date(now.getTime() + 1) }),
      queued('job_flagged', { cancelRequested: true }),
      { ...jobDocument({ status: 'leased', createdAt: now }), _id: 'job_taken', attempt: 0 },
    );
    const read = await jobs.findByIds(['job_ok', 'job_retried', 'job_not_due', 'job_flagged', 'job_taken']);
    const byId = new Map(read.map((j) => [j.jobId, j]));
    const candidates = [
      byId.get('job_ok')!,
      // Read at attempt 0, but another lease and a retry happened since.
      { ...byId.get('job_retried')!, attempt: 0 },
      byId.get('job_not_due')!,
      byId.get('job_flagged')!,
      // Read while it was queued; leased by someone else since.
      { ...byId.get('job_taken')!, status: 'queued' as const },
    ];
    const claimed = await jobs.claim({ requests: candidates.map((c) => claimRequest(c, { now })), now });

    expect(claimed.map((j) => j.jobId)).toEqual(['job_ok']);
    expect((await stored('job_retried')).status).toBe('queued');
    expect((await stored('job_not_due')).status).toBe('queued');
    expect((await stored('job_flagged')).status).toBe('queued');
    expect((await stored('job_taken')).leaseId).toBe(byId.get('job_taken')!.leaseId);
  });

  it('counts the attempt on from the one read and keeps the first startedAt', async () => {
    const first = await leasedJob();
    const startedAt = first.startedAt!;
    clock.advance(LEASE_MS);
    const [lease] = await jobs.findExpiredLeases({ now: clock.now(), limit: 10 });
    await jobs.reclaimLease({ lease: lease!, now: clock.now() });
    clock.advance(1_000);
    const now = clock.now();
    const [second] = await jobs.claim({ requests: [claimRequest(await stored(first.jobId), { now })], now });

    expect(second).toMatchObject({ attempt: 2, startedAt });
    expect((await stored(first.jobId)).attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'expired'],
      [2, null],
    ]);
  });

  it('keeps the last 100 attempt records', async () => {
    const now = clock.now();
    const history = Array.from({ length: 100 }, (_, i) => ({
      attempt: i + 1,
      leaseId: `lease_old_${i}`,
      workerId: 'worker-old',
      leasedAt: now,
      finishedAt: now,
      outcome: 'failed' as const,
      error: { message: 'boom' },
    }));
    await seed({ ...jobDocument({ status: 'queued', createdAt: now }), _id: 'job_long', attempt: 100, maxAttempts: 1_000, attempts: history });
    const [claimed] = await jobs.claim({ requests: [claimRequest(await stored('job_long'), { now })], now });

    const attempts = (await stored('job_long')).attempts;
    expect(attempts).toHaveLength(100);
    expect(attempts[0]!.attempt).toBe(2);
    expect(attempts[99]).toMatchObject({ attempt: 101, leaseId: claimed!.leaseId, outcome: null });
  });

  it('gives each job to exactly one of two racing claims on two connections', async () => {
    const now = clock.now();
    const inserted = await jobs.insertMany(Array.from({ length: 12 }, () => newJob({ now })));
    const candidates = inserted.map((r) => r.job);
    const mine = new JobRepository(db.connection);
    const theirs = new JobRepository(other.connection);
    // Every job is claimed twice at once, once per connection, plus one batch claim of all of them each.
    const results = await Promise.all([
      ...candidates.flatMap((candidate) => [
        mine.claim({ requests: [claimRequest(candidate, { now, workerId: 'worker-mine' })], now }),
        theirs.claim({ requests: [claimRequest(candidate, { now, workerId: 'worker-theirs' })], now }),
      ]),
      mine.claim({ requests: candidates.map((c) => claimRequest(c, { now, workerId: 'worker-mine-batch' })), now }),
      theirs.claim({ requests: candidates.map((c) => claimRequest(c, { now, workerId: 'worker-theirs-batch' })), now }),
    ]);

    const won = results.flat();
    expect(won.map((j) => j.jobId).sort()).toEqual(candidates.map((c) => c.jobId).sort());
    // Each winner holds the lease that is stored, and the job has exactly one attempt record.
    for (const job of won) {
      const after = await stored(job.jobId);
      expect(after).toMatchObject({ status: 'leased', attempt: 1, leaseId: job.leaseId, workerId: job.workerId });
      expect(after.attempts).toHaveLength(1);
    }
  });
});

describe('findExpiredLeases / reclaimLease', () => {
  it('finds leases expired at now (inclusive) with what the reclaim is conditional on', async () => {
    const job = await leasedJob({ tenant: 'acme' });
    expect(await jobs.findExpiredLeases({ now: new Date(clock.now().getTime() + LEASE_MS - 1), limit: 10 })).toEqual([]);
    const expired = await jobs.findExpiredLeases({ now: job.leaseExpiresAt!, limit: 10 });
    expect(expired).toEqual([
      { jobId: job.jobId, type: job.type, tenant: 'acme', leaseId: job.leaseId, slotId: null, keySlotId: null, attempt: 1, maxAttempts: 3, hasChildren: false, cancelRequested: false },
    ]);
  });

  it('honours the limit', async () => {
    await Promise.all([leasedJob(), leasedJob(), leasedJob()]);
    expect(await jobs.findExpiredLeases({ now: new Date(clock.now().getTime() + LEASE_MS), limit: 2 })).toHaveLength(2);
  });

  it('puts an expired lease back to queued, due now, with the attempt record closed as expired', async () => {
    const job = await leasedJob();
    clock.advance(LEASE_MS);
    const now = clock.now();
    const [lease] = await jobs.findExpiredLeases({ now, limit: 10 });
    const after = await jobs.reclaimLease({ lease: lease!, now });

    const error = { code: 'lease_expired', message: 'the lease expired before the worker reported' };
    expect(after).toMatchObject({ jobId: job.jobId, status: 'queued', attempt: 1, nextRunAt: now, leaseId: null, leaseExpiresAt: null, slotId: null, lastError: error, completedAt: null });
    expect(after!.attempts).toEqual([expect.objectContaining({ leaseId: job.leaseId, finishedAt: now, outcome: 'expired', error })]);
    expect(await stored(job.jobId)).toEqual(after);
    // A second reclaim with the same read finds the lease gone.
    expect(await jobs.reclaimLease({ lease: lease!, now })).toBeNull();
  });

  it('dead-letters a job whose attempts are used up', async () => {
    await leasedJob({ maxAttempts: 1 });
    clock.advance(LEASE_MS);
    const now = clock.now();
    const [lease] = await jobs.findExpiredLeases({ now, limit: 10 });
    expect(await jobs.reclaimLease({ lease: lease!, now })).toMatchObject({ status: 'dlq', completedAt: now, leaseId: null });
  });

  it('cancels a job whose cancel was acknowledged, also when the cancel lands after the read', async () => {
    const flaggedBefore = await leasedJob();
    const flaggedAfter = await leasedJob();
    await jobs.requestCancel({ jobId: flaggedBefore.jobId, now: clock.now() });
    clock.advance(LEASE_MS);
    const now = clock.now();
    const leases = await jobs.findExpiredLeases({ now, limit: 10 });
    const readOf = (jobId: string) => leases.find((l) => l.jobId === jobId)!;
    expect(readOf(flaggedBefore.jobId).cancelRequested).toBe(true);
    expect(readOf(flaggedAfter.jobId).cancelRequested).toBe(false);
    // The lease is expired but not reclaimed yet: it is still the job's lease, and a cancel is acknowledged.
    expect(await jobs.requestCancel({ jobId: flaggedAfter.jobId, now })).toMatchObject({ cancelRequested: true });

    for (const job of [flaggedBefore, flaggedAfter]) {
      const after = await jobs.reclaimLease({ lease: readOf(job.jobId), now });
      expect(after).toMatchObject({ status: 'cancelled', completedAt: now, leaseId: null, lastError: { code: 'cancelled', message: 'cancelled while it ran' } });
      expect(after!.attempts[0]).toMatchObject({ outcome: 'cancelled', finishedAt: now });
    }
  });

  it('leaves a lease that a heartbeat extended after the read', async () => {
    const job = await leasedJob();
    clock.advance(LEASE_MS);
    const now = clock.now();
    const [lease] = await jobs.findExpiredLeases({ now, limit: 10 });
    const extended = await jobs.heartbeat({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, leaseExpiresAt: new Date(now.getTime() + LEASE_MS), progress: 40 });
    expect(extended).not.toBeNull();

    expect(await jobs.reclaimLease({ lease: lease!, now })).toBeNull();
    expect(await stored(job.jobId)).toMatchObject({ status: 'leased', leaseId: job.leaseId, progress: 40, leaseExpiresAt: new Date(now.getTime() + LEASE_MS) });
  });

  it('leaves a newer lease of the same job alone (conditional on the lease id read)', async () => {
    const job = await leasedJob();
    clock.advance(LEASE_MS);
    const now = clock.now();
    const [staleRead] = await jobs.findExpiredLeases({ now, limit: 10 });
    await jobs.reclaimLease({ lease: staleRead!, now });
    const [again] = await jobs.claim({ requests: [claimRequest(await stored(job.jobId), { now })], now });
    clock.advance(LEASE_MS);

    expect(await jobs.reclaimLease({ lease: staleRead!, now: clock.now() })).toBeNull();
    expect(await stored(job.jobId)).toMatchObject({ status: 'leased', leaseId: again!.leaseId, attempt: 2 });
  });

  it('gives an expired lease back exactly once to racing reclaims on two connections', async () => {
    const job = await leasedJob();
    clock.advance(LEASE_MS);
    const now = clock.now();
    const [lease] = await jobs.findExpiredLeases({ now, limit: 10 });
    const theirs = new JobRepository(other.connection);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? jobs : theirs).reclaimLease({ lease: lease!, now })));

    expect(results.filter((r) => r !== null)).toHaveLength(1);
    expect((await stored(job.jobId)).attempts).toEqual([expect.objectContaining({ outcome: 'expired' })]);
  });
});

describe('heartbeat', () => {
  it('extends the lease of the holder and records progress; keeps progress when none is sent', async () => {
    const job = await leasedJob();
    clock.advance(10_000);
    const now = clock.now();
    const leaseExpiresAt = new Date(now.getTime() + LEASE_MS);
    const beat = await jobs.heartbeat({ jobId: job.jobId, holder: { leaseId: job.leaseId!, workerId: 'worker-a' }, now, leaseExpiresAt, progress: 25 });
    expect(beat).toMatchObject({ status: 'leased', leaseExpiresAt, progress: 25, updatedAt: now, cancelRequested: false });

    const again = await jobs.heartbeat({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, leaseExpiresAt, progress: undefined });
    expect(again).toMatchObject({ progress: 25 });
  });

  it('refuses anyone but the holder: another lease id, worker or tenant, or a job no longer leased', async () => {
    const job = await leasedJob({ tenant: 'acme' });
    const now = clock.now();
    const beat = (holder: Parameters<JobRepository['heartbeat']>[0]['holder']) =>
      jobs.heartbeat({ jobId: job.jobId, holder, now, leaseExpiresAt: new Date(now.getTime() + 99_000), progress: 99 });

    expect(await beat({ leaseId: 'lease_other' })).toBeNull();
    expect(await beat({ leaseId: job.leaseId!, workerId: 'worker-b' })).toBeNull();
    expect(await beat({ leaseId: job.leaseId!, tenant: 'globex' })).toBeNull();
    expect((await stored(job.jobId)).progress).toBe(0);
    expect(await beat({ leaseId: job.leaseId!, tenant: 'acme' })).toMatchObject({ progress: 99 });

    await jobs.succeed({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, result: null, partial: false });
    expect(await beat({ leaseId: job.leaseId! })).toBeNull();
  });

  it('records `irreversible` once, and only while no cancel is requested', async () => {
    const job = await leasedJob();
    const flagged = await leasedJob();
    const first = clock.now();
    const irreversible = (target: Job, now: Date) =>
      jobs.heartbeat({ jobId: target.jobId, holder: { leaseId: target.leaseId! }, now, leaseExpiresAt: new Date(now.getTime() + LEASE_MS), progress: undefined, irreversible: true });

    expect(await irreversible(job, first)).toMatchObject({ irreversibleAt: first });
    clock.advance(5_000);
    // A repeat is still a heartbeat (the lease is extended) but keeps the first point of no return.
    expect(await irreversible(job, clock.now())).toMatchObject({ irreversibleAt: first, leaseExpiresAt: new Date(clock.now().getTime() + LEASE_MS) });

    await jobs.requestCancel({ jobId: flagged.jobId, now: clock.now() });
    const beat = await irreversible(flagged, clock.now());
    expect(beat).toMatchObject({ irreversibleAt: null, cancelRequested: true, leaseExpiresAt: new Date(clock.now().getTime() + LEASE_MS) });
  });
});

describe('succeed', () => {
  it('ends the lease as succeeded and returns what the job was before (its lease and slot)', async () => {
    const job = await leasedJob({ tenant: 'acme' });
    await jobs.markHasChildren([job.jobId]);
    clock.advance(2_000);
    const now = clock.now();
    const before = await jobs.succeed({ jobId: job.jobId, holder: { leaseId: job.leaseId!, workerId: 'worker-a' }, now, result: { ok: 1 }, partial: true });

    expect(before).toEqual({ jobId: job.jobId, type: job.type, tenant: 'acme', attempt: 1, leaseId: job.leaseId, slotId: null, keySlotId: null, hasChildren: true });
    const after = await stored(job.jobId);
    expect(after).toMatchObject({ status: 'succeeded', result: { ok: 1 }, partial: true, progress: 100, completedAt: now, leaseId: null, leaseExpiresAt: null, slotId: null });
    expect(after.attempts).toEqual([expect.objectContaining({ leaseId: job.leaseId, finishedAt: now, outcome: 'succeeded', error: null })]);
  });

  it('returns the slot the lease held and stores a missing result as null', async () => {
    const now = clock.now();
    const { job } = await jobs.insert(newJob({ now }));
    const [claimed] = await jobs.claim({ requests: [claimRequest(job, { now, slotId: 'thumbnail.create#1' })], now });
    const before = await jobs.succeed({ jobId: job.jobId, holder: { leaseId: claimed!.leaseId! }, now, result: undefined, partial: false });
    expect(before?.slotId).toBe('thumbnail.create#1');
    expect(await stored(job.jobId)).toMatchObject({ result: null, slotId: null });
  });

  it('closes only the current attempt record', async () => {
    const job = await leasedJob();
    clock.advance(LEASE_MS);
    const [lease] = await jobs.findExpiredLeases({ now: clock.now(), limit: 10 });
    await jobs.reclaimLease({ lease: lease!, now: clock.now() });
    const expiredAt = clock.now();
    clock.advance(1_000);
    const now = clock.now();
    const [second] = await jobs.claim({ requests: [claimRequest(await stored(job.jobId), { now })], now });
    clock.advance(1_000);
    await jobs.succeed({ jobId: job.jobId, holder: { leaseId: second!.leaseId! }, now: clock.now(), result: null, partial: false });

    expect((await stored(job.jobId)).attempts).toEqual([
      expect.objectContaining({ attempt: 1, leaseId: job.leaseId, outcome: 'expired', finishedAt: expiredAt }),
      expect.objectContaining({ attempt: 2, leaseId: second!.leaseId, outcome: 'succeeded', finishedAt: clock.now() }),
    ]);
  });

  it('refuses a holder that does not hold the lease, and a second report', async () => {
    const job = await leasedJob();
    const now = clock.now();
    expect(await jobs.succeed({ jobId: job.jobId, holder: { leaseId: 'lease_other' }, now, result: null, partial: false })).toBeNull();
    expect(await jobs.succeed({ jobId: job.jobId, holder: { leaseId: job.leaseId!, workerId: 'worker-b' }, now, result: null, partial: false })).toBeNull();
    expect((await stored(job.jobId)).status).toBe('leased');
    expect(await jobs.succeed({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, result: null, partial: false })).not.toBeNull();
    expect(await jobs.succeed({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, result: null, partial: false })).toBeNull();
  });
});

describe('fail', () => {
  const error = { code: 'boom', message: 'the handler threw' };

  it('puts the job back to queued for a retry, returning the job as it was before', async () => {
    const job = await leasedJob();
    clock.advance(1_000);
    const now = clock.now();
    const retryAt = new Date(now.getTime() + 60_000);
    const before = await jobs.fail({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, attempt: 1, error, outcome: 'failed', next: { status: 'queued', nextRunAt: retryAt } });

    expect(before).toMatchObject({ status: 'leased', leaseId: job.leaseId, attempt: 1 });
    const after = await stored(job.jobId);
    expect(after).toMatchObject({ status: 'queued', nextRunAt: retryAt, lastError: error, leaseId: null, leaseExpiresAt: null, completedAt: null, attempt: 1 });
    expect(after.attempts).toEqual([expect.objectContaining({ finishedAt: now, outcome: 'failed', error })]);
  });

  it.each(['failed', 'dlq'] as const)('ends the job %s, finished at now', async (status) => {
    const job = await leasedJob();
    const now = clock.now();
    expect(await jobs.fail({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, attempt: 1, error, outcome: 'failed', next: { status } })).not.toBeNull();
    expect(await stored(job.jobId)).toMatchObject({ status, completedAt: now, lastError: error });
  });

  it('is conditional on the attempt and the holder', async () => {
    const job = await leasedJob();
    const now = clock.now();
    const next = { status: 'queued' as const, nextRunAt: now };
    expect(await jobs.fail({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, attempt: 0, error, outcome: 'failed', next })).toBeNull();
    expect(await jobs.fail({ jobId: job.jobId, holder: { leaseId: 'lease_other' }, now, attempt: 1, error, outcome: 'failed', next })).toBeNull();
    expect(await jobs.fail({ jobId: job.jobId, holder: { leaseId: job.leaseId!, workerId: 'worker-b' }, now, attempt: 1, error, outcome: 'failed', next })).toBeNull();
    expect(await stored(job.jobId)).toMatchObject({ status: 'leased', lastError: null });
  });

  it('matches the cancel flag it was computed from: `cancelled` only a flagged job, any other status only an unflagged one', async () => {
    const unflagged = await leasedJob();
    const flagged = await leasedJob();
    const now = clock.now();
    await jobs.requestCancel({ jobId: flagged.jobId, now });
    const fail = (job: Job, status: 'queued' | 'failed' | 'dlq' | 'cancelled') =>
      jobs.fail({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, attempt: 1, error, outcome: status === 'cancelled' ? 'cancelled' : 'failed', next: { status, nextRunAt: now } });

    expect(await fail(unflagged, 'cancelled')).toBeNull();
    expect(await fail(flagged, 'queued')).toBeNull();
    expect(await fail(flagged, 'failed')).toBeNull();
    expect(await fail(flagged, 'dlq')).toBeNull();
    expect((await stored(flagged.jobId)).status).toBe('leased');

    expect(await fail(flagged, 'cancelled')).not.toBeNull();
    const after = await stored(flagged.jobId);
    expect(after).toMatchObject({ status: 'cancelled', completedAt: now, lastError: { code: 'cancelled', message: 'cancelled while it ran' } });
    expect(after.attempts[0]).toMatchObject({ outcome: 'cancelled', error });
  });
});

describe('addResultFile', () => {
  const file = (name: string) => ({ fileId: uniqueId('file'), name, contentType: 'text/csv', size: 3, createdAt: clock.now() });

  it('lists the file on the job of the holder, in order, and reads back as files', async () => {
    const job = await leasedJob();
    const holder = { leaseId: job.leaseId!, workerId: 'worker-a' };
    const first = file('a.csv');
    expect(await jobs.addResultFile({ jobId: job.jobId, holder, file: first, maxFiles: 3, now: clock.now() })).toMatchObject({ files: [first] });
    const second = file('b.csv');
    await jobs.addResultFile({ jobId: job.jobId, holder, file: second, maxFiles: 3, now: clock.now() });
    expect((await stored(job.jobId)).files).toEqual([first, second]);
  });

  it('refuses anyone but the holder, a job no longer leased, and a file past maxFiles', async () => {
    const job = await leasedJob();
    const holder = { leaseId: job.leaseId!, workerId: 'worker-a' };
    expect(await jobs.addResultFile({ jobId: job.jobId, holder: { ...holder, leaseId: 'lease_other' }, file: file('x'), maxFiles: 3, now: clock.now() })).toBeNull();
    expect(await jobs.addResultFile({ jobId: job.jobId, holder: { ...holder, workerId: 'worker-b' }, file: file('x'), maxFiles: 3, now: clock.now() })).toBeNull();
    await jobs.addResultFile({ jobId: job.jobId, holder, file: file('1'), maxFiles: 2, now: clock.now() });
    await jobs.addResultFile({ jobId: job.jobId, holder, file: file('2'), maxFiles: 2, now: clock.now() });
    expect(await jobs.addResultFile({ jobId: job.jobId, holder, file: file('3'), maxFiles: 2, now: clock.now() })).toBeNull();
    expect((await stored(job.jobId)).files.map((f) => f.name)).toEqual(['1', '2']);
    await jobs.succeed({ jobId: job.jobId, holder, now: clock.now(), result: null, partial: false });
    expect(await jobs.addResultFile({ jobId: job.jobId, holder, file: file('late'), maxFiles: 10, now: clock.now() })).toBeNull();
  });

  it('reads a job stored without files as having none', async () => {
    const { job } = await jobs.insert(newJob({ now: clock.now() }));
    expect((await stored(job.jobId)).files).toEqual([]);
  });
});

describe('cancelQueued', () => {
  it('cancels a queued or waiting job, and nothing else', async () => {
    const now = clock.now();
    const { job: queued } = await jobs.insert(newJob({ now }));
    const { job: waiting } = await jobs.insert(newJob({ now, status: 'waiting', dependsOn: ['job_p'], pendingParents: ['job_p'] }));
    const leased = await leasedJob();
    clock.advance(1_000);
    const later = clock.now();

    for (const job of [queued, waiting]) {
      expect(await jobs.cancelQueued({ jobId: job.jobId, now: later })).toMatchObject({
        status: 'cancelled',
        completedAt: later,
        lastError: { code: 'cancelled', message: 'cancelled before it ran' },
      });
    }
    expect(await jobs.cancelQueued({ jobId: queued.jobId, now: later })).toBeNull();
    expect(await jobs.cancelQueued({ jobId: leased.jobId, now: later })).toBeNull();
    expect((await stored(leased.jobId)).status).toBe('leased');
    expect(await jobs.cancelQueued({ jobId: 'job_missing', now: later })).toBeNull();
  });
});

describe('requestCancel', () => {
  it('flags a leased job; a repeat keeps the first cancelRequestedAt', async () => {
    const job = await leasedJob();
    const first = clock.now();
    expect(await jobs.requestCancel({ jobId: job.jobId, now: first })).toMatchObject({ status: 'leased', cancelRequested: true, cancelRequestedAt: first });
    clock.advance(5_000);
    expect(await jobs.requestCancel({ jobId: job.jobId, now: clock.now() })).toMatchObject({ cancelRequested: true, cancelRequestedAt: first });
    expect((await stored(job.jobId)).cancelRequestedAt).toEqual(first);
  });

  it('is refused once the run passed its point of no return, and for jobs not leased', async () => {
    const job = await leasedJob();
    const now = clock.now();
    await jobs.heartbeat({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, leaseExpiresAt: job.leaseExpiresAt!, progress: undefined, irreversible: true });
    expect(await jobs.requestCancel({ jobId: job.jobId, now })).toBeNull();
    expect(await stored(job.jobId)).toMatchObject({ cancelRequested: false, cancelRequestedAt: null });

    const { job: queued } = await jobs.insert(newJob({ now }));
    expect(await jobs.requestCancel({ jobId: queued.jobId, now })).toBeNull();
    expect(await jobs.requestCancel({ jobId: 'job_missing', now })).toBeNull();
  });

  it('meets an irreversible heartbeat on the one document: exactly one of the two wins', async () => {
    const theirs = new JobRepository(other.connection);
    const leased = await Promise.all(Array.from({ length: 6 }, () => leasedJob()));
    const now = clock.now();
    const outcomes = await Promise.all(
      leased.map(async (job) => {
        const [flag, beat] = await Promise.all([
          theirs.requestCancel({ jobId: job.jobId, now }),
          jobs.heartbeat({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now, leaseExpiresAt: job.leaseExpiresAt!, progress: undefined, irreversible: true }),
        ]);
        return { flag, beat, after: await stored(job.jobId) };
      }),
    );
    for (const { flag, beat, after } of outcomes) {
      const cancelWon = flag !== null;
      const irreversibleWon = beat?.irreversibleAt !== null;
      expect(cancelWon).not.toBe(irreversibleWon);
      expect(after.cancelRequested).toBe(cancelWon);
      expect(after.irreversibleAt !== null).toBe(irreversibleWon);
      // The heartbeat itself always lands: the caller learns which came first from its answer.
      expect(beat?.cancelRequested).toBe(cancelWon);
    }
  });
});

describe('requeue', () => {
  it.each(['failed', 'dlq', 'cancelled'] as const)('puts a %s job back to queued with a fresh attempt budget, keeping the history', async (status) => {
    const created = clock.now();
    await seed({ ...jobDocument({ status, createdAt: created }), _id: 'job_done', cancelRequested: status === 'cancelled', cancelRequestedAt: status === 'cancelled' ? created : null });
    const history = (await stored('job_done')).attempts;
    clock.advance(60_000);
    const now = clock.now();

    const requeued = await jobs.requeue({ jobId: 'job_done', now });
    expect(requeued).toMatchObject({
      status: 'queued',
      attempt: 0,
      nextRunAt: now,
      leaseId: null,
      leaseExpiresAt: null,
      workerId: null,
      slotId: null,
      cancelRequested: false,
      cancelRequestedAt: null,
      completedAt: null,
      progress: 0,
      updatedAt: now,
    });
    expect(requeued!.attempts).toEqual(history);
    expect(await jobs.findAvailable({ types: null, now, limit: 10 })).toEqual([requeued]);
  });

  it.each(['queued', 'waiting', 'leased', 'succeeded'] as const)('leaves a %s job alone', async (status) => {
    const now = clock.now();
    await seed({ ...jobDocument({ status, createdAt: now }), _id: 'job_other' });
    const before = await stored('job_other');
    expect(await jobs.requeue({ jobId: 'job_other', now })).toBeNull();
    expect(await stored('job_other')).toEqual(before);
  });
});

describe('dependencies', () => {
  async function waitingChild(parents: string[], nextRunAt?: Date): Promise<Job> {
    const now = clock.now();
    return (await jobs.insert(newJob({ now, nextRunAt: nextRunAt ?? now, status: 'waiting', dependsOn: parents, pendingParents: parents }))).job;
  }

  it('markHasChildren marks the given jobs only, idempotently', async () => {
    const now = clock.now();
    const [a, b, c] = (await jobs.insertMany([newJob({ now }), newJob({ now }), newJob({ now })])).map((r) => r.job);
    await jobs.markHasChildren([a!.jobId, b!.jobId]);
    await jobs.markHasChildren([a!.jobId]);
    await jobs.markHasChildren([]);
    const flags = new Map((await jobs.findByIds([a!.jobId, b!.jobId, c!.jobId])).map((j) => [j.jobId, j.hasChildren] as const));
    expect(flags).toEqual(new Map([[a!.jobId, true], [b!.jobId, true], [c!.jobId, false]]));
  });

  it('findWaitingChildren lists the waiting jobs that depend on a parent', async () => {
    const now = clock.now();
    const child = await waitingChild(['job_p1', 'job_p2']);
    await waitingChild(['job_p3']);
    const released = await waitingChild(['job_p1']);
    await jobs.settleParents({ childId: released.jobId, succeededParents: ['job_p1'], now, nextRunAt: now });

    expect(await jobs.findWaitingChildren('job_p1')).toEqual([{ jobId: child.jobId, type: child.type, tenant: null, nextRunAt: child.nextRunAt, hasChildren: false }]);
    expect(await jobs.findWaitingChildren('job_none')).toEqual([]);
  });

  it('settleParents records succeeded parents and releases the child once none is pending, idempotently', async () => {
    const child = await waitingChild(['job_p1', 'job_p2']);
    clock.advance(1_000);
    const now = clock.now();
    const settle = (parents: string[]) => jobs.settleParents({ childId: child.jobId, succeededParents: parents, now, nextRunAt: child.nextRunAt });

    expect(await settle(['job_p1'])).toBeNull();
    expect(await settle(['job_p1'])).toBeNull();
    expect(await stored(child.jobId)).toMatchObject({ status: 'waiting', pendingParents: ['job_p2'], dependsOn: ['job_p1', 'job_p2'] });
    // Its nextRunAt was in the past: it is due at the release.
    expect(await settle(['job_p2'])).toMatchObject({ status: 'queued', pendingParents: [], nextRunAt: now, updatedAt: now });
    expect(await settle(['job_p2'])).toBeNull();
    expect(await settle([])).toBeNull();
  });

  it('settleParents keeps a nextRunAt in the future, and with no parents given releases a child with none pending', async () => {
    const now = clock.now();
    const later = new Date(now.getTime() + 60_000);
    const child = await waitingChild([], later);
    expect(await jobs.settleParents({ childId: child.jobId, succeededParents: [], now, nextRunAt: later })).toMatchObject({ status: 'queued', nextRunAt: later });
  });

  it('settleParents of the last two parents racing on two connections releases the child exactly once', async () => {
    const theirs = new JobRepository(other.connection);
    const children = await Promise.all(Array.from({ length: 5 }, () => waitingChild(['job_p1', 'job_p2'])));
    const now = clock.now();
    for (const child of children) {
      const results = await Promise.all([
        jobs.settleParents({ childId: child.jobId, succeededParents: ['job_p1'], now, nextRunAt: now }),
        theirs.settleParents({ childId: child.jobId, succeededParents: ['job_p2'], now, nextRunAt: now }),
      ]);
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect(await stored(child.jobId)).toMatchObject({ status: 'queued', pendingParents: [] });
    }
  });

  it('cancelWaiting cancels a waiting child with the reason, once', async () => {
    const child = await waitingChild(['job_p1']);
    const { job: queued } = await jobs.insert(newJob({ now: clock.now() }));
    clock.advance(1_000);
    const now = clock.now();
    const error = { code: 'dependency_failed', message: 'job job_p1 it depends on ended dlq' };

    expect(await jobs.cancelWaiting({ childId: child.jobId, error, now })).toMatchObject({ status: 'cancelled', lastError: error, completedAt: now });
    expect(await jobs.cancelWaiting({ childId: child.jobId, error, now })).toBeNull();
    expect(await jobs.cancelWaiting({ childId: queued.jobId, error, now })).toBeNull();
    expect((await stored(queued.jobId)).status).toBe('queued');
    // A cancelled child is not released by a late success of its parent.
    expect(await jobs.settleParents({ childId: child.jobId, succeededParents: ['job_p1'], now, nextRunAt: now })).toBeNull();
  });
});
