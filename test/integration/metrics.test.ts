import type { Express } from 'express';
import { register as globalRegistry } from 'prom-client';
import request from 'supertest';

import { createApp } from '../../src/app';
import { startMetricsServer } from '../../src/metrics/metrics-server';
import { createWorkerMetrics } from '../../src/metrics/worker-metrics';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { enqueueJob, leaseJobs, payoutPayload, report, thumbnailPayload } from '../helpers/jobs';
import { waitFor } from '../helpers/poll';
import { bearer, TEST_JWT_SECRET } from '../helpers/tokens';
import { parseExposition, sampleValue, type MetricFamily } from './metrics-exposition';

const db = useTestDatabase();
const clock = new TestClock();
let app: Express;
let services: ApiServices;

function wiring(overrides: Partial<ApiWiringParams> = {}): ApiWiringParams {
  return { connection: db.connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0, ...overrides };
}

beforeAll(() => {
  services = wireServices(wiring());
  app = createApp(wireApi(wiring(), services));
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
  await db.connection.collection('job_slots').deleteMany({});
});

async function scrape(target: Express = app): Promise<Map<string, MetricFamily>> {
  const res = await request(target).get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(res.text);
}

const THUMB = 'thumbnail.create';
const PAYOUT = 'payout.execute';

describe('GET /metrics', () => {
  it('is public and parses as Prometheus text exposition format', async () => {
    const families = await scrape();
    for (const name of ['jobs_enqueued_total', 'jobs_leased_total', 'jobs_succeeded_total', 'jobs_failed_total', 'jobs_dead_lettered_total']) {
      expect(families.get(name)?.type).toBe('counter');
      // Every registered type has its series from the start.
      expect(sampleValue(families, name, { type: THUMB })).toBe(0);
      expect(sampleValue(families, name, { type: PAYOUT })).toBe(0);
    }
    for (const name of ['jobs_queue_depth', 'jobs_oldest_queued_age_seconds']) expect(families.get(name)?.type).toBe('gauge');
    for (const name of ['http_request_duration_seconds', 'job_run_duration_seconds']) expect(families.get(name)?.type).toBe('histogram');
  });

  it('moves the job counters and the run-time histogram as jobs move', async () => {
    const before = await scrape();
    const value = (families: Map<string, MetricFamily>, name: string, labels: Record<string, string>): number => sampleValue(families, name, labels) ?? 0;

    const succeeding = await enqueueJob(app, { type: THUMB, payload: thumbnailPayload() });
    const failing = await enqueueJob(app, { type: THUMB, payload: thumbnailPayload(), maxAttempts: 2 });
    const dying = await enqueueJob(app, { type: PAYOUT, payload: payoutPayload(), maxAttempts: 1 });
    const leased = await leaseJobs(app, { limit: 10 });
    expect(leased).toHaveLength(3);
    const leaseOf = (jobId: string): string => leased.find((j) => j.jobId === jobId)!.leaseId;
    expect((await report(app, succeeding, 'succeed', { leaseId: leaseOf(succeeding), durationMs: 1_500 })).status).toBe(200);
    expect((await report(app, failing, 'fail', { leaseId: leaseOf(failing), durationMs: 200, error: { message: 'flaky' } })).body.status).toBe('queued');
    expect((await report(app, dying, 'fail', { leaseId: leaseOf(dying), durationMs: 50, error: { message: 'bad' } })).body.status).toBe('dlq');

    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>): number => value(after, name, labels) - value(before, name, labels);
    expect(delta('jobs_enqueued_total', { type: THUMB })).toBe(2);
    expect(delta('jobs_enqueued_total', { type: PAYOUT })).toBe(1);
    expect(delta('jobs_leased_total', { type: THUMB })).toBe(2);
    expect(delta('jobs_leased_total', { type: PAYOUT })).toBe(1);
    expect(delta('jobs_succeeded_total', { type: THUMB })).toBe(1);
    // Failed attempts: the one that will be retried and the one that was dead-lettered.
    expect(delta('jobs_failed_total', { type: THUMB })).toBe(1);
    expect(delta('jobs_failed_total', { type: PAYOUT })).toBe(1);
    expect(delta('jobs_retries_scheduled_total', { type: THUMB })).toBe(1);
    expect(delta('jobs_dead_lettered_total', { type: PAYOUT })).toBe(1);
    expect(delta('jobs_dead_lettered_total', { type: THUMB })).toBe(0);

    expect(delta('job_run_duration_seconds_count', { type: THUMB, outcome: 'succeeded' })).toBe(1);
    expect(delta('job_run_duration_seconds_sum', { type: THUMB, outcome: 'succeeded' })).toBeCloseTo(1.5);
    expect(delta('job_run_duration_seconds_bucket', { type: THUMB, outcome: 'succeeded', le: '1' })).toBe(0);
    expect(delta('job_run_duration_seconds_bucket', { type: THUMB, outcome: 'succeeded', le: '2.5' })).toBe(1);
    expect(delta('job_run_duration_seconds_count', { type: THUMB, outcome: 'failed' })).toBe(1);
    expect(delta('job_run_duration_seconds_count', { type: PAYOUT, outcome: 'failed' })).toBe(1);

    const requeue = await request(app).post(`/admin/jobs/${dying}/requeue`).set(bearer('admin'));
    expect(requeue.status).toBe(200);
    expect(value(await scrape(), 'jobs_requeued_total', { type: PAYOUT }) - value(before, 'jobs_requeued_total', { type: PAYOUT })).toBe(1);
  });

  it('labels request latency by route pattern, never by raw URL', async () => {
    const jobId = await enqueueJob(app, { type: THUMB, payload: thumbnailPayload() });
    await request(app).get(`/jobs/${jobId}`).set(bearer('admin'));
    await request(app).get('/jobs/job_000000000000000000000000').set(bearer('admin'));
    await request(app).get('/admin/jobs/queue?per_page=0').set(bearer('admin'));
    await request(app).get(`/no/such/${jobId}`).set(bearer('admin'));
    await request(app).get(`/jobs/${jobId}`);

    const families = await scrape();
    const count = (labels: Record<string, string>): number | undefined => sampleValue(families, 'http_request_duration_seconds_count', labels);
    expect(count({ method: 'POST', route: '/jobs', status: '201' })).toBeGreaterThanOrEqual(1);
    expect(count({ method: 'GET', route: '/jobs/:jobId', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(count({ method: 'GET', route: '/jobs/:jobId', status: '404' })).toBeGreaterThanOrEqual(1);
    // A route that throws a validation error keeps its label.
    expect(count({ method: 'GET', route: '/admin/jobs/queue', status: '422' })).toBeGreaterThanOrEqual(1);
    // Unknown paths and requests refused before routing share one label.
    expect(count({ method: 'GET', route: '(unmatched)', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(count({ method: 'GET', route: '(unmatched)', status: '401' })).toBeGreaterThanOrEqual(1);
    const routes = families.get('http_request_duration_seconds')!.samples.map((s) => s.labels.route ?? '');
    expect(routes.filter((r) => r.includes('job_'))).toEqual([]);
  });

  it('refreshes the queue gauges with one aggregation on demand, not on each scrape', async () => {
    await db.connection.collection('jobs').insertMany([
      jobDocument({ status: 'queued', type: THUMB, createdAt: new Date(clock.now().getTime() - 90_000) }),
      jobDocument({ status: 'queued', type: THUMB, createdAt: new Date(clock.now().getTime() - 30_000) }),
      jobDocument({ status: 'dlq', type: THUMB, createdAt: new Date(clock.now().getTime() - 30_000) }),
      jobDocument({ status: 'queued', type: PAYOUT, createdAt: new Date(clock.now().getTime() - 5_000) }),
    ] as unknown as Record<string, unknown>[]);

    const operations: string[] = [];
    db.connection.set('debug', (collection: string, method: string) => {
      operations.push(`${collection}.${method}`);
    });
    try {
      await scrape();
      await scrape();
      expect(operations).toEqual([]);
      await services.metrics!.queueGauges.refresh();
      expect(operations).toEqual(['jobs.aggregate']);
    } finally {
      db.connection.set('debug', false);
    }

    const families = await scrape();
    expect(sampleValue(families, 'jobs_queue_depth', { type: THUMB })).toBe(2);
    expect(sampleValue(families, 'jobs_queue_depth', { type: PAYOUT })).toBe(1);
    expect(sampleValue(families, 'jobs_oldest_queued_age_seconds', { type: THUMB })).toBe(90);
    expect(sampleValue(families, 'jobs_oldest_queued_age_seconds', { type: PAYOUT })).toBe(5);
    expect(sampleValue(families, 'jobs_status_count', { type: THUMB, status: 'dlq' })).toBe(1);

    // Jobs leave the queue: the gauges follow on the next refresh.
    await db.connection.collection('jobs').deleteMany({ type: THUMB });
    await services.metrics!.queueGauges.refresh();
    const later = await scrape();
    expect(sampleValue(later, 'jobs_queue_depth', { type: THUMB })).toBe(0);
    expect(sampleValue(later, 'jobs_oldest_queued_age_seconds', { type: THUMB })).toBe(0);
  });

  it('counts scheduled jobs apart, and never as a backlog in the oldest-age gauge', async () => {
    const now = clock.now().getTime();
    await db.connection.collection('jobs').insertMany([
      // Enqueued long ago for an hour from now: scheduled, no age.
      jobDocument({ status: 'queued', type: THUMB, createdAt: new Date(now - 3_600_000), nextRunAt: new Date(now + 3_600_000) }),
      // Created ten minutes ago, due for the last 20 s (e.g. a retry whose backoff ran out).
      jobDocument({ status: 'queued', type: PAYOUT, createdAt: new Date(now - 600_000), nextRunAt: new Date(now - 20_000) }),
      jobDocument({ status: 'queued', type: PAYOUT, createdAt: new Date(now - 600_000), nextRunAt: new Date(now + 5_000) }),
    ] as unknown as Record<string, unknown>[]);
    await services.metrics!.queueGauges.refresh();
    const families = await scrape();
    expect(families.get('jobs_scheduled')?.type).toBe('gauge');
    expect(sampleValue(families, 'jobs_scheduled', { type: THUMB })).toBe(1);
    expect(sampleValue(families, 'jobs_scheduled', { type: PAYOUT })).toBe(1);
    expect(sampleValue(families, 'jobs_oldest_queued_age_seconds', { type: THUMB })).toBe(0);
    expect(sampleValue(families, 'jobs_oldest_queued_age_seconds', { type: PAYOUT })).toBe(20);
    // Depth still counts every queued job, due or not.
    expect(sampleValue(families, 'jobs_queue_depth', { type: PAYOUT })).toBe(2);
  });

  it('refreshes the gauges on an interval between start() and stop()', async () => {
    const own = wireServices(wiring({ metricsRefreshIntervalMs: 20 }));
    const ownApp = createApp(wireApi(wiring(), own));
    own.metrics!.queueGauges.start();
    try {
      await db.connection.collection('jobs').insertOne(jobDocument({ status: 'queued', type: PAYOUT, createdAt: clock.now() }) as unknown as Record<string, unknown>);
      await waitFor(async () => (sampleValue(await scrape(ownApp), 'jobs_queue_depth', { type: PAYOUT }) === 1 ? true : undefined), {
        what: 'the refresher to see the queued job',
      });
    } finally {
      await own.metrics!.queueGauges.stop();
      own.metrics!.detach();
    }
  });

  it('keeps each app in its own registry and leaves the global one empty', async () => {
    const other = wireServices(wiring());
    const otherApp = createApp(wireApi(wiring(), other));
    await enqueueJob(otherApp, { type: THUMB, payload: thumbnailPayload() });
    expect(sampleValue(await scrape(otherApp), 'jobs_enqueued_total', { type: THUMB })).toBe(1);
    expect(other.metrics!.registry).not.toBe(services.metrics!.registry);
    expect(globalRegistry.getMetricsAsArray()).toEqual([]);
    other.metrics!.detach();
  });
});

describe('worker metrics server', () => {
  it('serves a registry on its own port', async () => {
    const metrics = createWorkerMetrics({ defaultLabels: { worker_id: 'worker-a' } });
    metrics.jobsProcessed.labels(THUMB, 'succeeded').inc(3);
    metrics.jobRunDuration.labels(THUMB, 'succeeded').observe(0.3);
    const server = await startMetricsServer({ registry: metrics.registry, port: 0, host: '127.0.0.1' });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const families = parseExposition(await res.text());
      expect(sampleValue(families, 'worker_jobs_processed_total', { type: THUMB, outcome: 'succeeded', worker_id: 'worker-a' })).toBe(3);
      expect(sampleValue(families, 'worker_job_run_duration_seconds_count', { type: THUMB, outcome: 'succeeded', worker_id: 'worker-a' })).toBe(1);
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('the exposition parser', () => {
  it.each([
    ['a sample before its TYPE', 'foo 1\n'],
    ['a bad label escape', '# TYPE foo gauge\nfoo{a="\\x"} 1\n'],
    ['a duplicate series', '# TYPE foo gauge\nfoo{a="1"} 1\nfoo{a="1"} 2\n'],
    ['a non-cumulative histogram', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ['a missing final newline', '# TYPE foo gauge\nfoo 1'],
  ])('rejects %s', (_name, text) => {
    expect(() => parseExposition(text)).toThrow();
  });
});
