import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, leaseJobs, payoutPayload, thumbnailPayload } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();
const clock = new TestClock();
let app: ReturnType<typeof buildTestApp>;
beforeAll(() => {
  app = buildTestApp(db, { clock, reclaimIntervalMs: 0 });
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
  await db.connection.collection('job_slots').deleteMany({});
});

const thumb = (overrides: Record<string, unknown> = {}) => ({ type: 'thumbnail.create', payload: thumbnailPayload(), ...overrides });

describe('GET /jobs/lease', () => {
  it('leases a job: attempt + 1, a fresh lease id, lease length from the policy', async () => {
    const jobId = await enqueueJob(app, thumb());
    const res = await request(app).get('/jobs/lease').set(bearer('worker')).set('X-Worker-Id', 'worker-a');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      leasedAt: clock.now().toISOString(),
      jobs: [
        {
          jobId,
          type: 'thumbnail.create',
          payload: thumbnailPayload(),
          attempt: 1,
          leaseId: expect.stringMatching(/^lease_[0-9a-f]{24}$/),
          leaseExpiresAt: new Date(clock.now().getTime() + 300_000).toISOString(),
          checkpoint: null,
          owner: { sub: 'service-1', role: 'service', tenant: null },
        },
      ],
    });
    const detail = await request(app).get(`/jobs/${jobId}`).set(bearer('admin'));
    expect(detail.body).toMatchObject({
      status: 'leased',
      workerId: 'worker-a',
      attempt: 1,
      startedAt: clock.now().toISOString(),
      attempts: [{ attempt: 1, workerId: 'worker-a', leasedAt: clock.now().toISOString(), finishedAt: null, outcome: null }],
    });
    expect(await leaseJobs(app)).toEqual([]);
  });

  it('answers an empty list when nothing is available', async () => {
    const res = await request(app).get('/jobs/lease?limit=10').set(bearer('admin')).set('X-Worker-Id', 'admin-tool');
    expect(res.status).toBe(200);
    expect(res.body.jobs).toEqual([]);
  });

  it('hands out jobs by priority desc, then nextRunAt asc', async () => {
    const low = await enqueueJob(app, thumb({ priority: 10 }));
    clock.advance(1);
    const highLater = await enqueueJob(app, thumb({ priority: 90 }));
    clock.advance(1);
    const mid = await enqueueJob(app, thumb());
    const highEarlier = await enqueueJob(app, thumb({ priority: 90, scheduleAt: new Date(clock.now().getTime() - 10_000).toISOString() }));
    const order: string[] = [];
    for (let i = 0; i < 4; i += 1) order.push(...(await leaseJobs(app)).map((j) => j.jobId));
    expect(order).toEqual([highEarlier, highLater, mid, low]);
  });

  it('leases in a batch up to limit, in order', async () => {
    const ids: string[] = [];
    for (let p = 0; p < 6; p += 1) ids.push(await enqueueJob(app, thumb({ priority: p * 10 })));
    const leased = await leaseJobs(app, { limit: 4 });
    expect(leased.map((j) => j.jobId)).toEqual(ids.slice(2).reverse());
    expect(new Set(leased.map((j) => j.leaseId)).size).toBe(4);
  });

  it('does not lease a scheduled job before its time', async () => {
    const jobId = await enqueueJob(app, thumb({ scheduleAt: new Date(clock.now().getTime() + 60_000).toISOString() }));
    expect(await leaseJobs(app)).toEqual([]);
    clock.advance(59_999);
    expect(await leaseJobs(app)).toEqual([]);
    clock.advance(1);
    expect((await leaseJobs(app)).map((j) => j.jobId)).toEqual([jobId]);
  });

  it('filters by type, one or a comma-separated list', async () => {
    const thumbId = await enqueueJob(app, thumb());
    const payoutId = await enqueueJob(app, { type: 'payout.execute', payload: payoutPayload() });
    expect((await leaseJobs(app, { type: 'payout.execute', limit: 10 })).map((j) => j.jobId)).toEqual([payoutId]);
    expect((await leaseJobs(app, { type: 'payout.execute,thumbnail.create', limit: 10 })).map((j) => j.jobId)).toEqual([thumbId]);
  });

  it('uses the lease length of each type', async () => {
    await enqueueJob(app, { type: 'payout.execute', payload: payoutPayload() });
    const [job] = await leaseJobs(app, { type: 'payout.execute' });
    expect(job!.leaseExpiresAt).toBe(new Date(clock.now().getTime() + 60_000).toISOString());
  });

  it.each([
    ['limit 0', '?limit=0', 'query.limit'],
    ['limit 101', '?limit=101', 'query.limit'],
    ['limit abc', '?limit=abc', 'query.limit'],
    ['an unknown type', '?type=email.send', 'type'],
  ])('answers 422 for %s', async (_name, query, field) => {
    const res = await request(app).get(`/jobs/lease${query}`).set(bearer('worker')).set('X-Worker-Id', 'worker-a');
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
  });

  it('ignores unknown query parameters', async () => {
    const res = await request(app).get('/jobs/lease?limit=2&colour=blue').set(bearer('worker')).set('X-Worker-Id', 'worker-a');
    expect(res.status).toBe(200);
  });

  it.each([
    ['missing', undefined],
    ['too short', 'abcd'],
    ['too long', 'x'.repeat(129)],
  ])('answers 422 when X-Worker-Id is %s', async (_name, workerId) => {
    const req = request(app).get('/jobs/lease').set(bearer('worker'));
    if (workerId) req.set('X-Worker-Id', workerId);
    const res = await req;
    expect(res.status).toBe(422);
    expect(res.body.error.details[0].field).toBe('headers.x-worker-id');
  });

  it.each(['service', 'user'] as const)('answers 403 to a %s token', async (role) => {
    const res = await request(app).get('/jobs/lease').set(bearer(role)).set('X-Worker-Id', 'worker-a');
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('permission_denied');
  });

  it('leases at most concurrencyLimit (5) payout jobs at once, and a finished job frees its slot', async () => {
    for (let i = 0; i < 8; i += 1) await enqueueJob(app, { type: 'payout.execute', payload: payoutPayload() });
    const first = await leaseJobs(app, { limit: 8 });
    expect(first).toHaveLength(5);
    expect(await leaseJobs(app, { limit: 8, workerId: 'worker-b' })).toHaveLength(0);
    const done = await request(app)
      .post(`/jobs/${first[0]!.jobId}/succeed`)
      .set(bearer('worker'))
      .set('X-Worker-Id', 'worker-a')
      .send({ leaseId: first[0]!.leaseId });
    expect(done.status).toBe(200);
    expect(await leaseJobs(app, { limit: 8, workerId: 'worker-b' })).toHaveLength(1);
  });

  it('frees a payout slot when its lease expires', async () => {
    for (let i = 0; i < 6; i += 1) await enqueueJob(app, { type: 'payout.execute', payload: payoutPayload() });
    expect(await leaseJobs(app, { limit: 10 })).toHaveLength(5);
    clock.advance(60_000);
    // All five leases expired: they are reclaimed and six jobs compete for five slots again.
    const again = await leaseJobs(app, { limit: 10, workerId: 'worker-b' });
    expect(again).toHaveLength(5);
    expect(await db.connection.collection('jobs').countDocuments({ type: 'payout.execute', status: 'leased' })).toBe(5);
  });

  it('fills a batch with unlimited types when the limited one is at its cap', async () => {
    for (let i = 0; i < 7; i += 1) await enqueueJob(app, { type: 'payout.execute', payload: payoutPayload(), priority: 90 });
    const thumbId = await enqueueJob(app, thumb({ priority: 10 }));
    const leased = await leaseJobs(app, { limit: 10 });
    expect(leased.filter((j) => j.type === 'payout.execute')).toHaveLength(5);
    expect(leased.filter((j) => j.type === 'thumbnail.create').map((j) => j.jobId)).toEqual([thumbId]);
  });
});
