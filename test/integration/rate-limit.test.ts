import type { Express } from 'express';
import request from 'supertest';

import { JobsClient, RateLimitedApiError } from '../../src/client';
import { ConfigError, loadApiConfig } from '../../src/config';
import { TokenBuckets } from '../../src/http/rate-limit';
import { MAX_JOB_PAYLOAD_BYTES } from '../../src/http/request-limits';
import { buildTestApp } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { listen } from '../helpers/server';
import { bearer, TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

const db = useTestDatabase();
const clock = new TestClock();
let app: Express;
beforeAll(() => {
  // 3 jobs and 2 lease calls per minute per token: small enough to hit in a test.
  app = buildTestApp(db, { clock, limits: { enqueuePerMinute: 3, leasePerMinute: 2, now: () => clock.now().getTime() } });
});

const noop = { type: 'noop', payload: {} };
const jobCount = () => db.connection.collection('jobs').countDocuments();

describe('token buckets', () => {
  it('allow a minute of calls at once, then one more per 60/N seconds, with the wait in whole seconds', () => {
    let now = 0;
    const buckets = new TokenBuckets({ perMinute: 4, now: () => now });
    expect([1, 2, 3, 4].map(() => buckets.take('a').allowed)).toEqual([true, true, true, true]);
    expect(buckets.take('a')).toEqual({ allowed: false, retryAfterSeconds: 15 });
    now += 14_000;
    expect(buckets.take('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    now += 1_000;
    expect(buckets.take('a').allowed).toBe(true);
    // Another key has its own bucket.
    expect(buckets.take('b').allowed).toBe(true);
  });

  it('charge a batch its size, capped at the bucket size so it can always pass once the bucket is full', () => {
    let now = 0;
    const buckets = new TokenBuckets({ perMinute: 10, now: () => now });
    expect(buckets.take('a', 8).allowed).toBe(true);
    expect(buckets.take('a', 3)).toEqual({ allowed: false, retryAfterSeconds: 6 });
    now += 60_000;
    expect(buckets.take('a', 500).allowed).toBe(true);
  });

  it('forget idle callers, so memory stays bounded', () => {
    let now = 0;
    const buckets = new TokenBuckets({ perMinute: 60, now: () => now, maxKeys: 100 });
    for (let i = 0; i < 100; i += 1) buckets.take(`caller-${i}`);
    now += 60_000;
    buckets.take('one-more');
    expect(buckets.size).toBe(1);
  });

  it('refuse a rate below one per minute', () => {
    expect(() => new TokenBuckets({ perMinute: 0 })).toThrow(RangeError);
  });
});

describe('per-token rate limits', () => {
  it('answer enqueue over the limit with 429 rate_limited and Retry-After, and create nothing', async () => {
    const service = bearer('service', 'rate-service');
    for (let i = 0; i < 3; i += 1) expect((await request(app).post('/jobs').set(service).send(noop)).status).toBe(201);
    const before = await jobCount();
    const limited = await request(app).post('/jobs').set(service).send(noop);
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
    expect(limited.headers['retry-after']).toBe('20');
    expect(await jobCount()).toBe(before);

    // Other tokens have their own budget: another sub, and the same sub with another role.
    expect((await request(app).post('/jobs').set(bearer('service', 'rate-other')).send(noop)).status).toBe(201);
    expect((await request(app).post('/jobs').set(bearer('admin', 'rate-service')).send(noop)).status).toBe(201);

    clock.advance(20_000);
    expect((await request(app).post('/jobs').set(service).send(noop)).status).toBe(201);
    expect((await request(app).post('/jobs').set(service).send(noop)).status).toBe(429);
  });

  it('charge a batch one token per job', async () => {
    const service = bearer('service', 'rate-batch');
    expect((await request(app).post('/jobs/batch').set(service).send({ jobs: [noop, noop] })).status).toBe(200);
    const limited = await request(app).post('/jobs/batch').set(service).send({ jobs: [noop, noop] });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('limit lease calls per worker token, and the client reports the wait', async () => {
    const worker = { ...bearer('worker', 'rate-worker'), 'X-Worker-Id': 'rate-worker-1' };
    expect((await request(app).get('/jobs/lease').set(worker)).status).toBe(200);
    expect((await request(app).get('/jobs/lease').set(worker)).status).toBe(200);
    const limited = await request(app).get('/jobs/lease').set(worker);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('30');

    const server = await listen(app);
    try {
      const client = new JobsClient({ baseUrl: server.baseUrl, token: tokenFor('worker', 'rate-worker'), workerId: 'rate-worker-1' });
      const err = await client.lease().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitedApiError);
      expect((err as RateLimitedApiError).retryAfterSeconds).toBe(30);
    } finally {
      await server.close();
    }
  });

  it('answer a role without the permission 403, however often it calls', async () => {
    for (let i = 0; i < 5; i += 1) {
      const res = await request(app).post('/jobs').set(bearer('user', 'rate-user')).send(noop);
      expect([res.status, res.body.error.code]).toEqual([403, 'permission_denied']);
    }
  });
});

describe('size limits', () => {
  const big = (bytes: number) => ({ type: 'noop', payload: { sleepMs: 1, pad: 'x'.repeat(bytes) } });

  it(`refuse an enqueued payload over ${MAX_JOB_PAYLOAD_BYTES} bytes with 413 payload_too_large`, async () => {
    const service = bearer('service', 'size-service');
    const res = await request(app).post('/jobs').set(service).send(big(MAX_JOB_PAYLOAD_BYTES));
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    // Under the limit the payload is checked against its type's schema instead.
    const small = await request(app).post('/jobs').set(bearer('service', 'size-service-2')).send(big(100));
    expect([small.status, small.body.error.code]).toEqual([422, 'payload_invalid']);
  });

  it('refuse a batch with one oversized payload as a whole', async () => {
    const before = await jobCount();
    const res = await request(app).post('/jobs/batch').set(bearer('service', 'size-batch')).send({ jobs: [noop, big(MAX_JOB_PAYLOAD_BYTES)] });
    expect(res.status).toBe(413);
    expect(await jobCount()).toBe(before);
  });

  it('refuse a body over 1 MB with 413 on every JSON route', async () => {
    const huge = { type: 'noop', payload: { s: 'x'.repeat(1_100_000) } };
    for (const path of ['/jobs', '/jobs/batch', '/escrows']) {
      const res = await request(app).post(path).set(bearer('admin', 'size-admin')).send(huge);
      expect({ path, status: res.status, code: res.body.error.code }).toEqual({ path, status: 413, code: 'payload_too_large' });
    }
  });

  it.each(['0', '101', '-1', '1.5', 'abc', '1e2', '', '99999999999999999999'])('refuse lease limit=%j with 422', async (limit) => {
    const res = await request(app).get(`/jobs/lease?limit=${encodeURIComponent(limit)}`).set(bearer('worker', `size-worker-${limit}`)).set('X-Worker-Id', 'size-worker-1');
    expect([res.status, res.body.error.code]).toEqual([422, 'validation_error']);
  });

  it.each(['0', '101', '-5', '2.5', 'x', '', '1000000000000'])('refuse per_page=%j with 422', async (perPage) => {
    const res = await request(app).get(`/admin/jobs/queue?per_page=${encodeURIComponent(perPage)}`).set(bearer('admin', 'size-admin'));
    expect([res.status, res.body.error.code]).toEqual([422, 'validation_error']);
  });

  it('accept the bounds themselves: limit=100 and per_page=100', async () => {
    const lease = await request(app).get('/jobs/lease?limit=100').set(bearer('admin', 'size-bounds')).set('X-Worker-Id', 'size-worker-1');
    expect(lease.status).toBe(200);
    const page = await request(app).get('/admin/jobs/queue?per_page=100&page=1').set(bearer('admin', 'size-bounds'));
    expect([page.status, page.body.meta.per_page]).toEqual([200, 100]);
    expect(page.body.data.length).toBeLessThanOrEqual(100);
  });
});

describe('rate limit configuration', () => {
  const base = { MONGODB_URI: 'mongodb://127.0.0.1:27017/', JWT_SECRET: TEST_JWT_SECRET };

  it('is off unless set', () => {
    const config = loadApiConfig(base);
    expect([config.RATE_LIMIT_ENQUEUE_PER_MINUTE, config.RATE_LIMIT_LEASE_PER_MINUTE]).toEqual([0, 0]);
  });

  it('takes whole numbers and names a bad one', () => {
    expect(loadApiConfig({ ...base, RATE_LIMIT_ENQUEUE_PER_MINUTE: '600', RATE_LIMIT_LEASE_PER_MINUTE: '1200' })).toMatchObject({
      RATE_LIMIT_ENQUEUE_PER_MINUTE: 600,
      RATE_LIMIT_LEASE_PER_MINUTE: 1200,
    });
    expect(() => loadApiConfig({ ...base, RATE_LIMIT_LEASE_PER_MINUTE: 'fast' })).toThrow(ConfigError);
    expect(() => loadApiConfig({ ...base, RATE_LIMIT_ENQUEUE_PER_MINUTE: '-1' })).toThrow(/RATE_LIMIT_ENQUEUE_PER_MINUTE/);
  });
});
