import type { Job } from '../../src/model/job';
import { JobRepository, type ClaimRequest, type NewJob } from '../../src/storage/job-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { clearCollections, newJob, uniqueId, useSecondConnection } from '../helpers/storage';

/**
 * The contract of JobRepository's flow-control operations (dedupe inserts, keys unset on every way
 * a job finishes, snooze, batch reports, candidates without full keys), against the real test
 * database; races on two connections.
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
  await clearCollections(db.connection, ['jobs', 'job_throttles']);
});

const active = (key: string, overrides: Partial<NewJob> = {}): NewJob => newJob({ now: clock.now(), type: 'noop', payload: {}, dedupe: { key, mode: 'active' }, ...overrides });
const raw = (jobId: string) => db.connection.collection('jobs').findOne({ _id: jobId as never });

async function lease(job: Job): Promise<Job> {
  const request: ClaimRequest = { candidate: job, leaseId: uniqueId('lease'), workerId: 'w', leaseExpiresAt: new Date(clock.now().getTime() + 30_000), slotId: null };
  const [claimed] = await jobs.claim({ requests: [request], now: clock.now() });
  return claimed!;
}

describe('dedupe inserts', () => {
  it('active: racing inserts on two connections create one job; the rest get it back', async () => {
    const repositories = [jobs, new JobRepository(other.connection)];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => repositories[i % 2]!.insert(active('k'))));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.job.jobId)).size).toBe(1);
  });

  it('active: every way a job finishes frees its key (succeed, terminal fail, reclaim to dlq, cancel), a retry keeps it', async () => {
    const holds = async (jobId: string) => (await raw(jobId))!.activeKey !== undefined;
    const succeeded = (await jobs.insert(active('s'))).job;
    const leased = await lease(succeeded);
    await jobs.succeed({ jobId: leased.jobId, holder: { leaseId: leased.leaseId! }, now: clock.now(), result: null, partial: false });
    expect(await holds(succeeded.jobId)).toBe(false);

    const retried = await lease((await jobs.insert(active('f'))).job);
    await jobs.fail({ jobId: retried.jobId, holder: { leaseId: retried.leaseId! }, now: clock.now(), attempt: 1, error: { message: 'x' }, outcome: 'failed', next: { status: 'queued', nextRunAt: clock.now() } });
    expect(await holds(retried.jobId)).toBe(true);
    const again = await lease((await jobs.findById(retried.jobId))!);
    await jobs.fail({ jobId: again.jobId, holder: { leaseId: again.leaseId! }, now: clock.now(), attempt: 2, error: { message: 'x' }, outcome: 'failed', next: { status: 'failed' } });
    expect(await holds(retried.jobId)).toBe(false);

    const expired = await lease((await jobs.insert(active('r', { maxAttempts: 1 }))).job);
    clock.advance(30_000);
    const [lost] = await jobs.findExpiredLeases({ now: clock.now(), limit: 10 });
    expect((await jobs.reclaimLease({ lease: lost!, now: clock.now() }))!.status).toBe('dlq');
    expect(await holds(expired.jobId)).toBe(false);

    const cancelled = (await jobs.insert(active('c'))).job;
    await jobs.cancelQueued({ jobId: cancelled.jobId, now: clock.now() });
    expect(await holds(cancelled.jobId)).toBe(false);
    // Each key is free: a new job takes it.
    for (const key of ['s', 'f', 'r', 'c']) expect((await jobs.insert(active(key))).created).toBe(true);
  });

  it('active: a finished job still holding its key (a path that forgot to unset it) gives it up to the next insert', async () => {
    const stale = (await jobs.insert(active('stale'))).job;
    await db.connection.collection('jobs').updateOne({ _id: stale.jobId as never }, { $set: { status: 'succeeded' } });
    const next = await jobs.insert(active('stale'));
    expect(next.created).toBe(true);
    expect((await raw(stale.jobId))!.activeKey).toBeUndefined();
  });

  it('throttle: one job per period across two connections; a new one once it passed', async () => {
    const throttled = (i: number) => ({ ...newJob({ now: clock.now(), type: 'noop', payload: { i } }), dedupe: { key: 't', mode: 'throttle' as const, seconds: 10 } });
    const repositories = [jobs, new JobRepository(other.connection)];
    const first = await Promise.all(Array.from({ length: 10 }, (_, i) => repositories[i % 2]!.insertThrottled(throttled(i))));
    expect(first.filter((r) => r.created)).toHaveLength(1);
    clock.advance(10_000);
    const second = await Promise.all(Array.from({ length: 10 }, (_, i) => repositories[i % 2]!.insertThrottled(throttled(i))));
    expect(second.filter((r) => r.created)).toHaveLength(1);
    expect(second[0]!.job.jobId).not.toBe(first[0]!.job.jobId);
  });

  it('debounce: replaces the queued never-leased job; its claim unsets the key, so the next creates a new one', async () => {
    const debounced = (sleepMs: number) => newJob({ now: clock.now(), type: 'noop', payload: { sleepMs }, nextRunAt: new Date(clock.now().getTime() + 5_000), dedupe: { key: 'd', mode: 'debounce', seconds: 5 } });
    const first = await jobs.insertDebounced(debounced(1));
    const second = await jobs.insertDebounced(debounced(2));
    expect([first.created, second.created, second.job.jobId]).toEqual([true, false, first.job.jobId]);
    expect(second.job.payload).toEqual({ sleepMs: 2 });
    clock.advance(5_000);
    await lease(second.job);
    expect((await raw(first.job.jobId))!.debounceKey).toBeUndefined();
    expect((await jobs.insertDebounced(debounced(3))).created).toBe(true);
  });

  it('requeue of a job whose active key another unfinished job holds is a conflict; once free it takes the key', async () => {
    const first = (await jobs.insert(active('q'))).job;
    await jobs.cancelQueued({ jobId: first.jobId, now: clock.now() });
    const second = (await jobs.insert(active('q'))).job;
    await expect(jobs.requeue({ jobId: first.jobId, now: clock.now() })).rejects.toMatchObject({ code: 'conflict' });
    await jobs.cancelQueued({ jobId: second.jobId, now: clock.now() });
    expect((await jobs.requeue({ jobId: first.jobId, now: clock.now() }))!.status).toBe('queued');
    expect((await raw(first.jobId))!.activeKey).toBe('/noop:q');
  });
});

describe('candidates, snooze and batch reports', () => {
  it('findAvailable leaves out full keys of a type only; findAvailableEntries gives type and key', async () => {
    await jobs.insertMany([
      newJob({ now: clock.now(), type: 'noop', payload: {}, concurrencyKey: 'full' }),
      newJob({ now: clock.now(), type: 'noop', payload: {}, concurrencyKey: 'free' }),
      newJob({ now: clock.now(), type: 'noop', payload: {} }),
      newJob({ now: clock.now(), concurrencyKey: 'full' }),
    ]);
    const found = await jobs.findAvailable({ types: null, excludeKeys: new Map([['noop', new Set(['full'])]]), now: clock.now(), limit: 10 });
    expect(found.map((j) => `${j.type}:${String(j.concurrencyKey)}`).sort()).toEqual(['noop:free', 'noop:null', 'thumbnail.create:full']);
    expect((await jobs.findAvailableEntries({ types: ['noop'], now: clock.now(), limit: 10 })).map((e) => e.concurrencyKey).sort()).toEqual(['free', 'full', null]);
  });

  it('snooze: back to queued, attempt as before the lease, outcome snoozed; conditional on the lease and the cancel flag', async () => {
    const job = await lease((await jobs.insert(newJob({ now: clock.now() }))).job);
    const nextRunAt = new Date(clock.now().getTime() + 60_000);
    expect(await jobs.snooze({ jobId: job.jobId, holder: { leaseId: 'lease_other' }, now: clock.now(), attempt: 1, cancelled: false, nextRunAt })).toBeNull();
    expect(await jobs.snooze({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now: clock.now(), attempt: 1, cancelled: true, nextRunAt })).toBeNull();
    const before = await jobs.snooze({ jobId: job.jobId, holder: { leaseId: job.leaseId! }, now: clock.now(), attempt: 1, cancelled: false, nextRunAt });
    expect(before).toMatchObject({ status: 'leased', attempt: 1 });
    expect(await jobs.findById(job.jobId)).toMatchObject({ status: 'queued', attempt: 0, nextRunAt, leaseId: null, attempts: [expect.objectContaining({ outcome: 'snoozed' })] });
  });

  it('applyReports writes many reports in one bulk write and tells which took effect', async () => {
    const [a, b] = await Promise.all([1, 2].map(async () => lease((await jobs.insert(newJob({ now: clock.now() }))).job)));
    const targets = await jobs.findReportTargets([a!.jobId, b!.jobId, 'job_missing']);
    expect([...targets.keys()].sort()).toEqual([a!.jobId, b!.jobId].sort());
    expect(targets.get(a!.jobId)).toMatchObject({ status: 'leased', leaseId: a!.leaseId, attempt: 1, maxAttempts: 3, cancelRequested: false });
    const took = await jobs.applyReports({
      now: clock.now(),
      reports: [
        { jobId: a!.jobId, holder: { leaseId: a!.leaseId! }, change: { outcome: 'succeeded', result: { ok: 1 }, partial: false }, reportId: 'r1' },
        { jobId: b!.jobId, holder: { leaseId: 'lease_stale' }, change: { outcome: 'succeeded', result: null, partial: false }, reportId: 'r2' },
        { jobId: b!.jobId, holder: { leaseId: b!.leaseId! }, change: { outcome: 'snoozed', attempt: 1, cancelled: false, nextRunAt: clock.now() }, reportId: 'r3' },
      ],
    });
    expect([...took].sort()).toEqual(['r1', 'r3']);
    expect(await jobs.findById(a!.jobId)).toMatchObject({ status: 'succeeded', result: { ok: 1 } });
    expect(await jobs.findById(b!.jobId)).toMatchObject({ status: 'queued', attempt: 0 });
  });
});
