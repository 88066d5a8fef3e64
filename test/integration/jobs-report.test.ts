import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, leaseJobs, payoutPayload, report, thumbnailPayload } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();
const clock = new TestClock();
// Jitter factor 0.5 + 0.5·r; r = 0.5 gives exactly 0.75 of the exponential delay.
let randomValue = 0.5;
let app: ReturnType<typeof buildTestApp>;
beforeAll(() => {
  app = buildTestApp(db, { clock, random: () => randomValue, reclaimIntervalMs: 0 });
});
beforeEach(async () => {
  randomValue = 0.5;
  await db.connection.collection('jobs').deleteMany({});
  await db.connection.collection('job_slots').deleteMany({});
});

const admin = bearer('admin');
const thumb = (overrides: Record<string, unknown> = {}) => ({ type: 'thumbnail.create', payload: thumbnailPayload(), ...overrides });

async function leaseOne(workerId = 'worker-a', type?: string) {
  const [job] = await leaseJobs(app, { workerId, ...(type ? { type } : {}) });
  if (!job) throw new Error('nothing leased');
  return job;
}

async function detail(jobId: string) {
  return (await request(app).get(`/jobs/${jobId}`).set(admin)).body;
}

describe('heartbeat', () => {
  it('extends the lease by the policy timeout and records progress', async () => {
    const jobId = await enqueueJob(app, thumb());
    const job = await leaseOne();
    clock.advance(100_000);
    const res = await report(app, jobId, 'heartbeat', { leaseId: job.leaseId, progress: 40 });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ jobId, leaseExpiresAt: new Date(clock.now().getTime() + 300_000).toISOString(), cancelRequested: false });
    expect(await detail(jobId)).toMatchObject({ progress: 40, leaseExpiresAt: res.body.leaseExpiresAt });
  });

  it('identifies the lease by worker id when no lease id is sent', async () => {
    const jobId = await enqueueJob(app, thumb());
    await leaseOne('worker-a');
    expect((await report(app, jobId, 'heartbeat', {}, 'worker-a')).status).toBe(200);
    const other = await report(app, jobId, 'heartbeat', {}, 'worker-b');
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('lease_conflict');
  });

  it.each([
    ['a wrong lease id', { leaseId: 'lease_000000000000000000000000' }, 'worker-a'],
    ['the right lease id from another worker', undefined, 'worker-b'],
  ])('answers 409 lease_conflict for %s', async (_name, body, workerId) => {
    const jobId = await enqueueJob(app, thumb());
    const job = await leaseOne('worker-a');
    const res = await report(app, jobId, 'heartbeat', body ?? { leaseId: job.leaseId }, workerId);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('lease_conflict');
  });

  it('answers 422 for progress outside 0-100 and 404 for an unknown job', async () => {
    const jobId = await enqueueJob(app, thumb());
    const job = await leaseOne();
    expect((await report(app, jobId, 'heartbeat', { leaseId: job.leaseId, progress: 101 })).status).toBe(422);
    const unknown = await report(app, 'job_000000000000000000000000', 'heartbeat', {});
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('job_not_found');
    expect((await report(app, 'not-a-job-id', 'heartbeat', {})).status).toBe(422);
  });
});

describe('succeed', () => {
  it('marks the job succeeded with its result, completedAt and the attempt outcome', async () => {
    const jobId = await enqueueJob(app, thumb());
    const job = await leaseOne();
    clock.advance(5_000);
    const res = await report(app, jobId, 'succeed', { leaseId: job.leaseId, result: { thumbnails: ['a'] } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ jobId, status: 'succeeded' });
    expect(await detail(jobId)).toMatchObject({
      status: 'succeeded',
      result: { thumbnails: ['a'] },
      completedAt: clock.now().toISOString(),
      leaseExpiresAt: null,
      progress: 100,
      attempts: [{ attempt: 1, workerId: 'worker-a', finishedAt: clock.now().toISOString(), outcome: 'succeeded', error: null }],
    });
  });

  it('answers 409 when the job is not leased (queued, or already succeeded)', async () => {
    const jobId = await enqueueJob(app, thumb());
    expect((await report(app, jobId, 'succeed', {})).status).toBe(409);
    const job = await leaseOne();
    expect((await report(app, jobId, 'succeed', { leaseId: job.leaseId })).status).toBe(200);
    const again = await report(app, jobId, 'succeed', { leaseId: job.leaseId });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('lease_conflict');
  });

  it('accepts a report that arrives after leaseExpiresAt but before the reclaim', async () => {
    const jobId = await enqueueJob(app, thumb());
    const job = await leaseOne();
    clock.advance(400_000);
    expect((await report(app, jobId, 'succeed', { leaseId: job.leaseId })).status).toBe(200);
  });
});

describe('fail', () => {
  it('retries with exponential backoff from the policy, scaled by the jitter factor', async () => {
    // thumbnail.create: base 5 s, cap 600 s, 3 attempts.
    const jobId = await enqueueJob(app, thumb({ maxAttempts: 5 }));
    const expectedDelays = [3_750, 7_500, 15_000, 30_000]; // 5 s · 2^(n−1) · 0.75
    for (const [index, delay] of expectedDelays.entries()) {
      const job = await leaseOne();
      expect(job.attempt).toBe(index + 1);
      const res = await report(app, jobId, 'fail', { leaseId: job.leaseId, error: { message: 'boom', code: 'E_BOOM' } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ jobId, status: 'queued', attempt: index + 1, nextRunAt: new Date(clock.now().getTime() + delay).toISOString() });
      expect(await leaseJobs(app)).toEqual([]);
      clock.advance(delay);
    }
    const history = (await detail(jobId)).attempts as { outcome: string; error: unknown }[];
    expect(history.map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(history[0]!.error).toEqual({ code: 'E_BOOM', message: 'boom' });
  });

  it.each([
    [0, 0.5],
    [0.999999, 1],
  ])('keeps the delay within [0.5, 1] of min(cap, base·2^(n−1)) (random %d)', async (random, factor) => {
    randomValue = random;
    const jobId = await enqueueJob(app, thumb());
    const job = await leaseOne();
    const res = await report(app, jobId, 'fail', { leaseId: job.leaseId, error: { message: 'x' } });
    const delay = Date.parse(res.body.nextRunAt) - clock.now().getTime();
    expect(Math.abs(delay - 5_000 * factor)).toBeLessThanOrEqual(1);
  });

  it('caps the delay at the policy cap', async () => {
    randomValue = 0.999999;
    const jobId = await enqueueJob(app, thumb({ maxAttempts: 20 }));
    let last = 0;
    for (let i = 0; i < 10; i += 1) {
      const job = await leaseOne();
      const res = await report(app, jobId, 'fail', { leaseId: job.leaseId, error: { message: 'x' } });
      last = Date.parse(res.body.nextRunAt) - clock.now().getTime();
      clock.advance(last);
    }
    expect(last).toBeLessThanOrEqual(600_000);
    expect(last).toBeGreaterThan(599_000);
  });

  it('dead-letters the job when its attempts are used up', async () => {
    const jobId = await enqueueJob(app, thumb({ maxAttempts: 2 }));
    let job = await leaseOne();
    await report(app, jobId, 'fail', { leaseId: job.leaseId, error: { message: 'first' } });
    clock.advance(10_000);
    job = await leaseOne();
    const res = await report(app, jobId, 'fail', { leaseId: job.leaseId, error: { message: 'second', code: 'E2' } });
    expect(res.body).toMatchObject({ jobId, status: 'dlq', attempt: 2 });
    expect(await detail(jobId)).toMatchObject({ status: 'dlq', lastError: { code: 'E2', message: 'second' }, completedAt: clock.now().toISOString() });
    clock.advance(1_000_000);
    expect(await leaseJobs(app)).toEqual([]);
  });

  it('ends the job failed at once when the handler says it is not retryable', async () => {
    const jobId = await enqueueJob(app, thumb());
    const job = await leaseOne();
    const res = await report(app, jobId, 'fail', { leaseId: job.leaseId, error: { message: 'bad image', code: 'not_an_image', retryable: false } });
    expect(res.body).toMatchObject({ status: 'failed', attempt: 1 });
    expect(await detail(jobId)).toMatchObject({ status: 'failed', lastError: { code: 'not_an_image', message: 'bad image' } });
  });

  it.each([
    ['no error', {}],
    ['an error without message', { error: { code: 'x' } }],
    ['retryable not a boolean', { error: { message: 'x', retryable: 'no' } }],
  ])('answers 422 for %s', async (_name, body) => {
    const jobId = await enqueueJob(app, thumb());
    await leaseOne();
    expect((await report(app, jobId, 'fail', body)).status).toBe(422);
  });
});

describe('expired leases', () => {
  it('are reclaimed and re-leased; every report from the old holder then gets 409', async () => {
    const jobId = await enqueueJob(app, thumb());
    const old = await leaseOne('worker-a');
    clock.advance(300_001);
    const fresh = await leaseOne('worker-b');
    expect(fresh).toMatchObject({ jobId, attempt: 2 });
    expect(fresh.leaseId).not.toBe(old.leaseId);
    for (const action of ['heartbeat', 'succeed'] as const) {
      const res = await report(app, jobId, action, { leaseId: old.leaseId }, 'worker-a');
      expect(res.status).toBe(409);
    }
    expect((await report(app, jobId, 'fail', { leaseId: old.leaseId, error: { message: 'late' } }, 'worker-a')).status).toBe(409);
    expect((await report(app, jobId, 'heartbeat', {}, 'worker-a')).status).toBe(409);
    expect((await report(app, jobId, 'succeed', { leaseId: fresh.leaseId }, 'worker-b')).status).toBe(200);
    const history = (await detail(jobId)).attempts as { outcome: string; workerId: string }[];
    expect(history.map((a) => [a.workerId, a.outcome])).toEqual([
      ['worker-a', 'expired'],
      ['worker-b', 'succeeded'],
    ]);
  });

  it('a poison job whose lease expires every time ends in dlq', async () => {
    const jobId = await enqueueJob(app, thumb());
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      const job = await leaseOne(`worker-${attempt}x`);
      expect(job.attempt).toBe(attempt);
      clock.advance(300_001);
    }
    expect(await leaseJobs(app)).toEqual([]);
    expect(await detail(jobId)).toMatchObject({ status: 'dlq', attempt: 3, lastError: { code: 'lease_expired' } });
  });
});

describe('cancel', () => {
  it('cancels a queued job at once', async () => {
    const jobId = await enqueueJob(app, thumb(), 'svc-owner');
    const res = await request(app).post(`/jobs/${jobId}/cancel`).set(bearer('service', 'svc-owner'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ jobId, status: 'cancelled' });
    expect(await leaseJobs(app)).toEqual([]);
  });

  it('flags a leased job; the worker sees cancelRequested on its next heartbeat', async () => {
    const jobId = await enqueueJob(app, thumb(), 'svc-owner');
    const job = await leaseOne();
    const res = await request(app).post(`/jobs/${jobId}/cancel`).set(bearer('service', 'svc-owner'));
    expect(res.body).toEqual({ jobId, status: 'leased' });
    const beat = await report(app, jobId, 'heartbeat', { leaseId: job.leaseId });
    expect(beat.body.cancelRequested).toBe(true);
    const stopped = await report(app, jobId, 'fail', { leaseId: job.leaseId, error: { message: 'stopped on request', code: 'cancelled' } });
    expect(stopped.body.status).toBe('cancelled');
  });

  it('answers 409 invalid_state for a finished job', async () => {
    const jobId = await enqueueJob(app, thumb());
    const job = await leaseOne();
    await report(app, jobId, 'succeed', { leaseId: job.leaseId });
    const res = await request(app).post(`/jobs/${jobId}/cancel`).set(admin);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('invalid_state');
  });

  it('lets neither another service nor a worker cancel', async () => {
    const jobId = await enqueueJob(app, thumb(), 'svc-owner');
    expect((await request(app).post(`/jobs/${jobId}/cancel`).set(bearer('service', 'svc-other'))).status).toBe(403);
    expect((await request(app).post(`/jobs/${jobId}/cancel`).set(bearer('worker'))).body.error.code).toBe('permission_denied');
  });
});

describe('GET /jobs/:jobId', () => {
  it('shows the owner and admins the job; others get 403 access_denied', async () => {
    const jobId = await enqueueJob(app, { type: 'payout.execute', payload: payoutPayload() }, 'svc-owner');
    expect((await request(app).get(`/jobs/${jobId}`).set(bearer('service', 'svc-owner'))).status).toBe(200);
    // Ownership is (sub, role, tenant): a user token that borrows the service's sub is someone else.
    expect((await request(app).get(`/jobs/${jobId}`).set(bearer('user', 'svc-owner'))).status).toBe(403);
    expect((await request(app).get(`/jobs/${jobId}`).set(admin)).status).toBe(200);
    const other = await request(app).get(`/jobs/${jobId}`).set(bearer('service', 'svc-other'));
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('access_denied');
    expect((await request(app).get(`/jobs/${jobId}`).set(bearer('worker'))).body.error.code).toBe('permission_denied');
  });

  it('does not reveal whether an unknown id exists to non-admins; admins get 404', async () => {
    const unknown = 'job_ffffffffffffffffffffffff';
    const asService = await request(app).get(`/jobs/${unknown}`).set(bearer('service', 'svc-owner'));
    expect(asService.status).toBe(403);
    expect(asService.body.error.code).toBe('access_denied');
    const asAdmin = await request(app).get(`/jobs/${unknown}`).set(admin);
    expect(asAdmin.status).toBe(404);
    expect(asAdmin.body.error.code).toBe('job_not_found');
  });
});
