import request from 'supertest';

import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { adminToken, call, leaseOver, serviceToken, startApiInstance, workerToken, type ApiInstance } from '../helpers/instances';

/**
 * Dedupe (API.md Part 2, Enqueue options): `active`, `throttle` and `debounce`, scoped by type and
 * tenant, raced by real concurrent clients against TWO API instances (two connections, one
 * database), on the test server whose partial unique indexes are plain ones.
 */
const db = useTestDatabase();
const clock = new TestClock();
let a: ApiInstance;
let b: ApiInstance;

beforeAll(async () => {
  a = await startApiInstance(db, { clock, reclaimIntervalMs: 0 });
  b = await startApiInstance(db, { clock, reclaimIntervalMs: 0 });
});
afterAll(async () => {
  await a.close();
  await b.close();
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
  await db.connection.collection('job_throttles').deleteMany({});
});

const enqueue = (instance: ApiInstance, body: Record<string, unknown>, token = serviceToken()) => call(instance.baseUrl, { method: 'POST', path: '/jobs', token, body: { type: 'noop', payload: {}, ...body } });

/** `count` enqueues at once, alternating between the two instances. */
function race(count: number, body: (i: number) => Record<string, unknown>, token?: (i: number) => string) {
  return Promise.all(Array.from({ length: count }, (_, i) => enqueue(i % 2 === 0 ? a : b, body(i), token?.(i))));
}

const jobsWith = (key: string) => db.connection.collection('jobs').find({ 'dedupe.key': key }).toArray();

async function finish(jobId: string): Promise<void> {
  const [leased] = await leaseOver(a.baseUrl, { workerId: 'dedupe-worker', type: 'noop', limit: 100 }).then((jobs) => jobs.filter((j) => j.jobId === jobId));
  if (!leased) throw new Error(`${jobId} was not leasable`);
  const done = await call(a.baseUrl, { method: 'POST', path: `/jobs/${jobId}/succeed`, token: workerToken, workerId: 'dedupe-worker', body: { leaseId: leased.leaseId } });
  expect(done.status).toBe(200);
}

describe('dedupe: active', () => {
  it('30 concurrent enqueues with one key, on two instances, leave one job: one 201, 29 × 200 deduplicated, all naming it', async () => {
    const answers = await race(30, (i) => ({ payload: { sleepMs: i }, dedupe: { key: 'customer-42', mode: 'active' } }));
    expect(answers.map((r) => r.status).sort()).toEqual([...Array<number>(29).fill(200), 201]);
    const ids = new Set(answers.map((r) => r.body.jobId));
    expect(ids.size).toBe(1);
    expect(answers.filter((r) => r.body.deduplicated === true)).toHaveLength(29);
    expect(answers.find((r) => r.status === 201)!.body.deduplicated).toBe(false);
    expect(await jobsWith('customer-42')).toHaveLength(1);
  });

  it('returns the unfinished job while it is queued or leased; once it finished, the next enqueue creates a new one', async () => {
    const first = await enqueue(a, { dedupe: { key: 'k', mode: 'active' } });
    expect(first.status).toBe(201);
    const [leased] = await leaseOver(b.baseUrl, { workerId: 'dedupe-worker', type: 'noop' });
    expect(leased!.jobId).toBe(first.body.jobId);
    const whileLeased = await enqueue(b, { dedupe: { key: 'k', mode: 'active' } });
    expect({ status: whileLeased.status, jobId: whileLeased.body.jobId, jobStatus: whileLeased.body.status, deduplicated: whileLeased.body.deduplicated }).toEqual({
      status: 200,
      jobId: first.body.jobId,
      jobStatus: 'leased',
      deduplicated: true,
    });
    await call(a.baseUrl, { method: 'POST', path: `/jobs/${leased!.jobId}/succeed`, token: workerToken, workerId: 'dedupe-worker', body: { leaseId: leased!.leaseId } });
    const after = await enqueue(a, { dedupe: { key: 'k', mode: 'active' } });
    expect(after.status).toBe(201);
    expect(after.body.jobId).not.toBe(first.body.jobId);
  });

  it('a retry back to queued keeps the key; a cancel frees it; an admin requeue takes it again, or answers 409 while another job holds it', async () => {
    const first = await enqueue(a, { dedupe: { key: 'r', mode: 'active' } });
    const [leased] = await leaseOver(a.baseUrl, { workerId: 'dedupe-worker', type: 'noop' });
    const failed = await call(a.baseUrl, { method: 'POST', path: `/jobs/${leased!.jobId}/fail`, token: workerToken, workerId: 'dedupe-worker', body: { leaseId: leased!.leaseId, error: { message: 'again' } } });
    expect(failed.body.status).toBe('queued');
    expect((await enqueue(b, { dedupe: { key: 'r', mode: 'active' } })).body).toMatchObject({ jobId: first.body.jobId, deduplicated: true });
    expect((await call(a.baseUrl, { method: 'POST', path: `/jobs/${String(first.body.jobId)}/cancel`, token: serviceToken() })).body.status).toBe('cancelled');
    const second = await enqueue(b, { dedupe: { key: 'r', mode: 'active' } });
    expect(second.status).toBe(201);
    const refused = await call(a.baseUrl, { method: 'POST', path: `/admin/jobs/${String(first.body.jobId)}/requeue`, token: adminToken });
    expect({ status: refused.status, code: refused.body.error?.code }).toEqual({ status: 409, code: 'conflict' });
    await call(a.baseUrl, { method: 'POST', path: `/jobs/${String(second.body.jobId)}/cancel`, token: serviceToken() });
    const requeued = await call(a.baseUrl, { method: 'POST', path: `/admin/jobs/${String(first.body.jobId)}/requeue`, token: adminToken });
    expect(requeued.status).toBe(200);
    expect((await enqueue(a, { dedupe: { key: 'r', mode: 'active' } })).body).toMatchObject({ jobId: first.body.jobId, deduplicated: true });
  });

  it('is scoped by type and tenant, not by the principal: another service of the tenant shares the key, another tenant does not', async () => {
    const body = { dedupe: { key: 'shared', mode: 'active' } };
    const acme1 = await enqueue(a, body, serviceToken('svc-1', 'acme'));
    const acme2 = await enqueue(b, body, serviceToken('svc-2', 'acme'));
    const globex = await enqueue(a, body, serviceToken('svc-1', 'globex'));
    const otherType = await enqueue(b, { ...body, type: 'thumbnail.create', payload: { assetId: 'asset_0123456789abcdef01234567', versionNumber: 1 } }, serviceToken('svc-1', 'acme'));
    expect([acme1.status, acme2.status, globex.status, otherType.status]).toEqual([201, 200, 201, 201]);
    expect(acme2.body.jobId).toBe(acme1.body.jobId);
  });
});

describe('dedupe: throttle', () => {
  it('creates one job per period under 30 concurrent enqueues on two instances, whatever its status, and a new one once the period passed', async () => {
    const body = (i: number) => ({ payload: { sleepMs: i }, dedupe: { key: 'provider-sync', mode: 'throttle', seconds: 60 } });
    const period1 = await race(30, body);
    expect(period1.map((r) => r.status).sort()).toEqual([...Array<number>(29).fill(200), 201]);
    const firstId = period1[0]!.body.jobId as string;
    expect(new Set(period1.map((r) => r.body.jobId))).toEqual(new Set([firstId]));
    // Finished or not, a job created less than `seconds` ago is returned.
    await finish(firstId);
    clock.advance(59_000);
    const late = await race(10, body);
    expect(new Set(late.map((r) => r.body.jobId))).toEqual(new Set([firstId]));
    expect(late.every((r) => r.status === 200 && r.body.deduplicated === true && r.body.status === 'succeeded')).toBe(true);
    clock.advance(1_000);
    const period2 = await race(30, body);
    expect(period2.map((r) => r.status).sort()).toEqual([...Array<number>(29).fill(200), 201]);
    expect(new Set(period2.map((r) => r.body.jobId)).size).toBe(1);
    expect(period2[0]!.body.jobId).not.toBe(firstId);
    expect(await jobsWith('provider-sync')).toHaveLength(2);
  });

  it('a period whose creator died before inserting its job gets that job from the next enqueue', async () => {
    // What a crash between taking the period and inserting the job leaves behind.
    const orphan = 'job_0000000000000000000000aa';
    await db.connection.collection('job_throttles').insertOne({ _id: '/noop:crashed' as never, jobId: orphan, until: new Date(clock.now().getTime() + 30_000) });
    const answers = await race(6, () => ({ dedupe: { key: 'crashed', mode: 'throttle', seconds: 30 } }));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(answers.map((r) => r.body.jobId))).toEqual(new Set([orphan]));
  });
});

describe('dedupe: debounce', () => {
  it('concurrent debounces on two instances keep ONE queued job, with a payload of one of them, due seconds after the last', async () => {
    const answers = await race(20, (i) => ({ payload: { sleepMs: i }, priority: 10 + i, dedupe: { key: 'search-index', mode: 'debounce', seconds: 5 } }));
    expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
    const [job, ...more] = await jobsWith('search-index');
    expect(more).toEqual([]);
    expect(answers.every((r) => r.body.jobId === job!._id)).toBe(true);
    expect(job!.nextRunAt).toEqual(new Date(clock.now().getTime() + 5_000));
    expect(answers.map((r) => (r.body.status as string))).toEqual(Array<string>(20).fill('queued'));
    const sleepMs = (job!.payload as { sleepMs: number }).sleepMs;
    expect(job!.priority).toBe(10 + sleepMs);
  });

  it('replaces payload, priority and tags and pushes the run back; a job leased once is never changed: a new one is created', async () => {
    const first = await enqueue(a, { payload: { sleepMs: 1 }, tags: ['first'], dedupe: { key: 'd', mode: 'debounce', seconds: 10 } });
    clock.advance(4_000);
    const second = await enqueue(b, { payload: { sleepMs: 2 }, priority: 80, tags: ['second', 'more'], dedupe: { key: 'd', mode: 'debounce', seconds: 10 } });
    expect(second.body).toMatchObject({ jobId: first.body.jobId, deduplicated: true, nextRunAt: new Date(clock.now().getTime() + 10_000).toISOString() });
    const stored = await request(a.app).get(`/jobs/${String(first.body.jobId)}`).set('Authorization', `Bearer ${adminToken}`);
    expect(stored.body).toMatchObject({ payload: { sleepMs: 2 }, priority: 80, tags: ['second', 'more'], status: 'queued' });
    // The listing finds it by its new tags, not by its old one.
    const byTag = async (tag: string) => ((await request(a.app).get(`/jobs?tag=${tag}`).set('Authorization', `Bearer ${adminToken}`)).body.data as { jobId: string }[]).map((j) => j.jobId);
    expect(await byTag('second')).toEqual([first.body.jobId]);
    expect(await byTag('first')).toEqual([]);
    // An enqueue without tags leaves the job with none.
    await enqueue(a, { payload: { sleepMs: 2 }, priority: 80, dedupe: { key: 'd', mode: 'debounce', seconds: 10 } });
    const untagged = await request(a.app).get(`/jobs/${String(first.body.jobId)}`).set('Authorization', `Bearer ${adminToken}`);
    expect(untagged.body.tags).toEqual([]);
    // Not due yet: nothing to lease until 10 s after the last enqueue.
    expect(await leaseOver(a.baseUrl, { workerId: 'dedupe-worker', type: 'noop' })).toEqual([]);
    clock.advance(10_000);
    const [leased] = await leaseOver(a.baseUrl, { workerId: 'dedupe-worker', type: 'noop' });
    expect(leased!.jobId).toBe(first.body.jobId);
    const third = await enqueue(b, { payload: { sleepMs: 3 }, dedupe: { key: 'd', mode: 'debounce', seconds: 10 } });
    expect(third.status).toBe(201);
    expect(third.body.jobId).not.toBe(first.body.jobId);
  });
});

describe('dedupe: validation and batches', () => {
  it('refuses idempotencyKey with dedupe, seconds with active, no seconds with throttle and debounce, and debounce with scheduleAt or dependsOn (422)', async () => {
    const bad = [
      { idempotencyKey: 'x', dedupe: { key: 'k', mode: 'active' } },
      { dedupe: { key: 'k', mode: 'active', seconds: 5 } },
      { dedupe: { key: 'k', mode: 'throttle' } },
      { dedupe: { key: 'k', mode: 'debounce' } },
      { scheduleAt: '2031-01-01T00:00:00Z', dedupe: { key: 'k', mode: 'debounce', seconds: 5 } },
      { dependsOn: ['job_000000000000000000000000'], dedupe: { key: 'k', mode: 'debounce', seconds: 5 } },
      { dedupe: { key: '', mode: 'active' } },
      { dedupe: { key: 'k', mode: 'sometimes' } },
      { dedupe: { key: 'k', mode: 'throttle', seconds: 86_401 } },
      { concurrencyKey: 'x'.repeat(201) },
    ];
    for (const body of bad) {
      const res = await enqueue(a, body);
      expect({ body, status: res.status, code: res.body.error?.code }).toEqual({ body, status: 422, code: 'validation_error' });
    }
    expect(await db.connection.collection('jobs').countDocuments()).toBe(0);
  });

  it('a plain enqueue answers as before (no deduplicated field); batch items take dedupe and concurrencyKey, judged in order', async () => {
    const plain = await enqueue(a, { concurrencyKey: 'tenant-7' });
    expect(plain.status).toBe(201);
    expect(plain.body).not.toHaveProperty('deduplicated');
    const batch = await call(a.baseUrl, {
      method: 'POST',
      path: '/jobs/batch',
      token: serviceToken(),
      body: {
        jobs: [
          { type: 'noop', payload: {}, dedupe: { key: 'b', mode: 'active' }, concurrencyKey: 'c1' },
          { type: 'noop', payload: {}, dedupe: { key: 'b', mode: 'active' } },
          { type: 'noop', payload: {}, dedupe: { key: 'b', mode: 'active', seconds: 1 } },
          { type: 'noop', payload: {} },
        ],
      },
    });
    expect(batch.body).toMatchObject({ created: 2, existing: 1, rejected: 1 });
    const results = batch.body.results as Record<string, unknown>[];
    expect(results[0]).toMatchObject({ created: true, deduplicated: false });
    expect(results[1]).toMatchObject({ created: false, deduplicated: true, jobId: results[0]!.jobId });
    expect(results[2]).toMatchObject({ error: { code: 'validation_error' } });
    expect(results[3]).not.toHaveProperty('deduplicated');
    const stored = await request(a.app).get(`/jobs/${String(results[0]!.jobId)}`).set('Authorization', `Bearer ${adminToken}`);
    expect(stored.body).toMatchObject({ concurrencyKey: 'c1', dedupe: { key: 'b', mode: 'active' }, checkpoint: null });
  });
});
