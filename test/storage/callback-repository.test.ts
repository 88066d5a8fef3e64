import { CallbackRepository, type DueCallback } from '../../src/storage/callback-repository';
import { JobRepository } from '../../src/storage/job-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { clearCollections, newJob, uniqueId, useSecondConnection } from '../helpers/storage';

/** The contract of CallbackRepository: deliveries owed by finished jobs, taken under leases. */
const db = useTestDatabase();
const other = useSecondConnection(db);
let callbacks: CallbackRepository;
let jobs: JobRepository;
let clock: TestClock;
const URL_ = 'http://127.0.0.1:9/hook';

beforeAll(() => {
  callbacks = new CallbackRepository(db.connection);
  jobs = new JobRepository(db.connection);
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['jobs']);
});

async function finishedWithCallback(callbackUrl: string | null = URL_): Promise<string> {
  const { job } = await jobs.insert(newJob({ now: clock.now(), callbackUrl }));
  expect(await jobs.cancelQueued({ jobId: job.jobId, now: clock.now() })).not.toBeNull();
  return job.jobId;
}

const take = (due: DueCallback, repo = callbacks) =>
  repo.take({ due, leaseId: uniqueId('cbl'), leaseUntil: new Date(clock.now().getTime() + 30_000), newDeliveryId: uniqueId('dlv') });

it('a finished job with a callbackUrl is due; an unfinished one, or one without a URL, is not', async () => {
  const owed = await finishedWithCallback();
  await finishedWithCallback(null);
  await jobs.insert(newJob({ now: clock.now(), callbackUrl: URL_ }));
  expect((await callbacks.findDue({ now: clock.now(), limit: 10 })).map((d) => d.jobId)).toEqual([owed]);
  expect((await jobs.findById(owed))!.callback).toMatchObject({ status: 'pending', attempts: 0, deliveryId: null });
});

it('takes an attempt once: racing takes on two connections, one wins; the first creates the delivery record', async () => {
  const jobId = await finishedWithCallback();
  const [due] = await callbacks.findDue({ now: clock.now(), limit: 1 });
  const results = await Promise.all([take(due!), take(due!, new CallbackRepository(other.connection))]);
  const won = results.filter((r) => r !== null);
  expect(won).toHaveLength(1);
  expect(won[0]).toMatchObject({ jobId, url: URL_, attempt: 1, payload: { jobId, status: 'cancelled', attempt: 0, result: null, lastError: { code: 'cancelled' } } });
  // Leased: not due again until the lease ends.
  expect(await callbacks.findDue({ now: clock.now(), limit: 10 })).toEqual([]);
  expect(await callbacks.findDue({ now: new Date(clock.now().getTime() + 30_001), limit: 10 })).toHaveLength(1);
});

it('records a failure with the next attempt (same delivery id, attempts counting on), then a delivery; a stale lease records nothing', async () => {
  const jobId = await finishedWithCallback();
  const first = (await take((await callbacks.findDue({ now: clock.now(), limit: 1 }))[0]!))!;
  const retryAt = new Date(clock.now().getTime() + 5_000);
  expect(await callbacks.recordFailed({ jobId, leaseId: 'cbl_stale', error: 'x', retryAt })).toBe(false);
  expect(await callbacks.recordFailed({ jobId, leaseId: first.leaseId, error: 'answered 500', retryAt })).toBe(true);
  expect((await jobs.findById(jobId))!.callback).toMatchObject({ status: 'pending', attempts: 1, lastError: 'answered 500', nextAttemptAt: retryAt });
  expect(await callbacks.findDue({ now: clock.now(), limit: 10 })).toEqual([]);
  clock.advance(5_000);
  const second = (await take((await callbacks.findDue({ now: clock.now(), limit: 1 }))[0]!))!;
  expect({ attempt: second.attempt, deliveryId: second.deliveryId }).toEqual({ attempt: 2, deliveryId: first.deliveryId });
  expect(await callbacks.recordDelivered({ jobId, leaseId: second.leaseId, now: clock.now() })).toBe(true);
  expect((await jobs.findById(jobId))!.callback).toMatchObject({ status: 'delivered', attempts: 2, lastError: null, deliveredAt: clock.now(), nextAttemptAt: null });
  expect(await callbacks.findDue({ now: new Date(clock.now().getTime() + 86_400_000), limit: 10 })).toEqual([]);
});

it('gives up (failed) when no retry is given', async () => {
  const jobId = await finishedWithCallback();
  const taken = (await take((await callbacks.findDue({ now: clock.now(), limit: 1 }))[0]!))!;
  expect(await callbacks.recordFailed({ jobId, leaseId: taken.leaseId, error: 'answered 404', retryAt: null })).toBe(true);
  expect((await jobs.findById(jobId))!.callback).toMatchObject({ status: 'failed', attempts: 1, lastError: 'answered 404' });
  expect(await callbacks.findDue({ now: new Date(clock.now().getTime() + 86_400_000), limit: 10 })).toEqual([]);
});

it('a requeue re-arms the callback: the next ending is a new delivery', async () => {
  const jobId = await finishedWithCallback();
  const taken = (await take((await callbacks.findDue({ now: clock.now(), limit: 1 }))[0]!))!;
  await callbacks.recordDelivered({ jobId, leaseId: taken.leaseId, now: clock.now() });
  await jobs.requeue({ jobId, now: clock.now(), rearmCallback: true });
  expect((await jobs.findById(jobId))!.callback).toBeNull();
  expect(await callbacks.findDue({ now: clock.now(), limit: 10 })).toEqual([]);
  await jobs.cancelQueued({ jobId, now: clock.now() });
  const again = (await take((await callbacks.findDue({ now: clock.now(), limit: 1 }))[0]!))!;
  expect(again.attempt).toBe(1);
  expect(again.deliveryId).not.toBe(taken.deliveryId);
});
