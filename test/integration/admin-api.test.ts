import request from 'supertest';

import type { JobStatus } from '../../src/model/job';
import { buildTestApp } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { enqueueJob, leaseJobs, report, thumbnailPayload } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();
const clock = new TestClock();
let app: ReturnType<typeof buildTestApp>;
beforeAll(() => {
  app = buildTestApp(db, { clock, reclaimIntervalMs: 0 });
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

const admin = bearer('admin');
const MINUTE = 60_000;
const minutesAgo = (n: number): Date => new Date(clock.now().getTime() - n * MINUTE);

async function seed(...docs: ReturnType<typeof jobDocument>[]): Promise<void> {
  await db.connection.collection('jobs').insertMany(docs as unknown as Record<string, unknown>[]);
}

function queue(query: Record<string, string | number> = {}) {
  return request(app).get('/admin/jobs/queue').query(query).set(admin);
}

describe('GET /admin/jobs/queue', () => {
  it('answers an empty page with total 0 and total_pages 0 when there are no jobs', async () => {
    const res = await queue();
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ meta: { page: 1, per_page: 20, total: 0, total_pages: 0 }, data: [] });
  });

  it('lists newest first and pages to a partial last page, then empty pages', async () => {
    // 45 jobs, one a minute: job i was created i minutes ago.
    await seed(...Array.from({ length: 45 }, (_, i) => jobDocument({ status: 'queued', createdAt: minutesAgo(i) })));
    const first = await queue();
    expect(first.body.meta).toEqual({ page: 1, per_page: 20, total: 45, total_pages: 3 });
    expect(first.body.data).toHaveLength(20);
    expect(first.body.data[0].createdAt).toBe(minutesAgo(0).toISOString());
    const createdAts = first.body.data.map((j: { createdAt: string }) => Date.parse(j.createdAt));
    expect(createdAts).toEqual([...createdAts].sort((a, b) => b - a));

    const last = await queue({ page: 3 });
    expect(last.body.meta).toEqual({ page: 3, per_page: 20, total: 45, total_pages: 3 });
    expect(last.body.data.map((j: { createdAt: string }) => j.createdAt)).toEqual(
      [40, 41, 42, 43, 44].map((i) => minutesAgo(i).toISOString()),
    );

    const beyond = await queue({ page: 4 });
    expect(beyond.status).toBe(200);
    expect(beyond.body).toEqual({ meta: { page: 4, per_page: 20, total: 45, total_pages: 3 }, data: [] });
  });

  it('returns up to 100 jobs with per_page=100, and every page is disjoint', async () => {
    await seed(...Array.from({ length: 105 }, () => jobDocument({ status: 'succeeded', createdAt: minutesAgo(1) })));
    const page1 = await queue({ per_page: 100 });
    const page2 = await queue({ per_page: 100, page: 2 });
    expect(page1.body.meta).toEqual({ page: 1, per_page: 100, total: 105, total_pages: 2 });
    expect(page1.body.data).toHaveLength(100);
    expect(page2.body.data).toHaveLength(5);
    // Equal createdAt everywhere: the id tie-break keeps pages from overlapping.
    const ids = new Set([...page1.body.data, ...page2.body.data].map((j: { jobId: string }) => j.jobId));
    expect(ids.size).toBe(105);
  });

  it('returns full job documents', async () => {
    const doc = jobDocument({ status: 'dlq', createdAt: minutesAgo(3) });
    await seed(doc);
    const [job] = (await queue()).body.data;
    expect(job).toMatchObject({
      jobId: doc._id,
      type: 'thumbnail.create',
      status: 'dlq',
      attempt: 1,
      lastError: { code: 'boom', message: 'the handler threw' },
      attempts: [{ attempt: 1, outcome: 'failed' }],
      createdBy: 'service-1',
    });
  });

  describe('filters', () => {
    beforeEach(async () => {
      await seed(
        jobDocument({ status: 'queued', createdAt: minutesAgo(50), createdBy: 'billing' }),
        jobDocument({ status: 'dlq', createdAt: minutesAgo(40), createdBy: 'billing', type: 'payout.execute' }),
        jobDocument({ status: 'failed', createdAt: minutesAgo(30), createdBy: 'media' }),
        jobDocument({ status: 'dlq', createdAt: minutesAgo(20), createdBy: 'media' }),
        jobDocument({ status: 'succeeded', createdAt: minutesAgo(10), createdBy: 'media', type: 'payout.execute' }),
      );
    });

    const minutesOf = (body: { data: { createdAt: string }[] }): number[] =>
      body.data.map((j) => Math.round((clock.now().getTime() - Date.parse(j.createdAt)) / MINUTE));

    it.each([
      ['status', { status: 'dlq' }, [20, 40]],
      ['a list of statuses', { status: 'failed,dlq' }, [20, 30, 40]],
      ['type', { type: 'payout.execute' }, [10, 40]],
      ['createdBy', { createdBy: 'billing' }, [40, 50]],
      ['status and type together', { status: 'dlq', type: 'thumbnail.create' }, [20]],
      ['createdBy and status together', { createdBy: 'media', status: 'dlq' }, [20]],
      ['createdFrom (inclusive)', { createdFrom: 'm30' }, [10, 20, 30]],
      ['createdTo (exclusive)', { createdTo: 'm30' }, [40, 50]],
      ['a created-at range', { createdFrom: 'm40', createdTo: 'm20' }, [30, 40]],
      ['a type no job has', { type: 'nothing.here' }, []],
    ])('by %s', async (_name, filter, expectedMinutesAgo) => {
      const query = Object.fromEntries(
        Object.entries(filter).map(([k, v]) => [k, v.startsWith('m') && k.startsWith('created') && k !== 'createdBy' ? minutesAgo(Number(v.slice(1))).toISOString() : v]),
      );
      const res = await queue(query);
      expect(res.status).toBe(200);
      expect(minutesOf(res.body)).toEqual(expectedMinutesAgo);
      expect(res.body.meta.total).toBe(expectedMinutesAgo.length);
    });
  });

  it.each([
    ['page=0', { page: '0' }, 'query.page'],
    ['page=-1', { page: '-1' }, 'query.page'],
    ['page=abc', { page: 'abc' }, 'query.page'],
    ['page=1.5', { page: '1.5' }, 'query.page'],
    ['per_page=0', { per_page: '0' }, 'query.per_page'],
    ['per_page=101', { per_page: '101' }, 'query.per_page'],
    ['per_page=ten', { per_page: 'ten' }, 'query.per_page'],
    ['an unknown status', { status: 'running' }, 'query.status.0'],
    ['a createdFrom that is not a date-time', { createdFrom: 'yesterday' }, 'query.createdFrom'],
    ['createdFrom after createdTo', { createdFrom: '2030-01-02T00:00:00Z', createdTo: '2030-01-01T00:00:00Z' }, 'query.createdTo'],
  ])('answers 422 validation_error for %s', async (_name, query, field) => {
    const res = await queue(query);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
    expect(res.body.error.details).toEqual([{ field, message: expect.any(String) }]);
  });

  it('answers 422 for a repeated page parameter', async () => {
    const res = await request(app).get('/admin/jobs/queue?page=1&page=2').set(admin);
    expect(res.status).toBe(422);
  });
});

describe('GET /admin/jobs/stats', () => {
  it('has every status key at 0, every registered type, and null age when the collection is empty', async () => {
    const res = await request(app).get('/admin/jobs/stats').set(admin);
    expect(res.status).toBe(200);
    const zeros = { waiting: 0, queued: 0, leased: 0, succeeded: 0, failed: 0, cancelled: 0, dlq: 0 };
    expect(res.body).toEqual({
      totalJobs: 0,
      statusCounts: zeros,
      oldestQueuedJobAgeMs: null,
      byType: { noop: zeros, 'payout.execute': zeros, 'thumbnail.create': zeros },
      oldestQueuedJobAgeMsByType: { noop: null, 'payout.execute': null, 'thumbnail.create': null },
      scheduled: 0,
      scheduledByType: { noop: 0, 'payout.execute': 0, 'thumbnail.create': 0 },
      partialSucceeded: 0,
      partialSucceededByType: { noop: 0, 'payout.execute': 0, 'thumbnail.create': 0 },
      generatedAt: clock.now().toISOString(),
    });
  });

  it('counts a seeded mix of statuses exactly, per type, with the oldest queued job age', async () => {
    const mix: [string, JobStatus, number][] = [
      ['thumbnail.create', 'queued', 3],
      ['thumbnail.create', 'leased', 2],
      ['thumbnail.create', 'succeeded', 5],
      ['thumbnail.create', 'failed', 1],
      ['thumbnail.create', 'cancelled', 1],
      ['thumbnail.create', 'dlq', 2],
      ['payout.execute', 'queued', 1],
      ['payout.execute', 'succeeded', 4],
      ['payout.execute', 'dlq', 1],
      ['legacy.type', 'failed', 2],
      ['thumbnail.create', 'waiting', 2],
    ];
    let minute = 0;
    await seed(...mix.flatMap(([type, status, n]) => Array.from({ length: n }, () => jobDocument({ type, status, createdAt: minutesAgo((minute += 1)) }))));
    // Two of the succeeded thumbnails finished with a partial result.
    await seed(...Array.from({ length: 2 }, () => jobDocument({ type: 'thumbnail.create', status: 'succeeded', partial: true, createdAt: minutesAgo(0) })));
    // Queued jobs were created 1-3 minutes ago (thumbnail) and 15 minutes ago (payout).

    const res = await request(app).get('/admin/jobs/stats').set(admin);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      totalJobs: 26,
      statusCounts: { waiting: 2, queued: 4, leased: 2, succeeded: 11, failed: 3, cancelled: 1, dlq: 3 },
      oldestQueuedJobAgeMs: 15 * MINUTE,
      byType: {
        'legacy.type': { waiting: 0, queued: 0, leased: 0, succeeded: 0, failed: 2, cancelled: 0, dlq: 0 },
        noop: { waiting: 0, queued: 0, leased: 0, succeeded: 0, failed: 0, cancelled: 0, dlq: 0 },
        'payout.execute': { waiting: 0, queued: 1, leased: 0, succeeded: 4, failed: 0, cancelled: 0, dlq: 1 },
        'thumbnail.create': { waiting: 2, queued: 3, leased: 2, succeeded: 7, failed: 1, cancelled: 1, dlq: 2 },
      },
      oldestQueuedJobAgeMsByType: { 'legacy.type': null, noop: null, 'payout.execute': 15 * MINUTE, 'thumbnail.create': 3 * MINUTE },
      scheduled: 0,
      scheduledByType: { 'legacy.type': 0, noop: 0, 'payout.execute': 0, 'thumbnail.create': 0 },
      partialSucceeded: 2,
      partialSucceededByType: { noop: 0, 'payout.execute': 0, 'thumbnail.create': 2 },
      generatedAt: clock.now().toISOString(),
    });
  });

  it('tells due from scheduled: the age counts only due jobs, by how long they have been due', async () => {
    const now = clock.now().getTime();
    await seed(
      // Created an hour ago, due (its retry backoff over) five minutes ago: five minutes late.
      jobDocument({ type: 'noop', status: 'queued', createdAt: minutesAgo(60), nextRunAt: new Date(now - 5 * MINUTE) }),
      // Due in an hour (scheduleAt), however long ago it was enqueued: no backlog at all.
      jobDocument({ type: 'noop', status: 'queued', createdAt: minutesAgo(120), nextRunAt: new Date(now + 60 * MINUTE) }),
      jobDocument({ type: 'payout.execute', status: 'queued', createdAt: minutesAgo(1), nextRunAt: new Date(now + 1_000) }),
    );
    const res = await request(app).get('/admin/jobs/stats').set(admin);
    expect(res.body).toMatchObject({
      statusCounts: { queued: 3 },
      oldestQueuedJobAgeMs: 5 * MINUTE,
      oldestQueuedJobAgeMsByType: { noop: 5 * MINUTE, 'payout.execute': null, 'thumbnail.create': null },
      scheduled: 2,
      scheduledByType: { noop: 1, 'payout.execute': 1, 'thumbnail.create': 0 },
    });
    // Once the payout's time comes, it is due, and late by as long as the clock has gone past it.
    clock.advance(3_000);
    const later = await request(app).get('/admin/jobs/stats').set(admin);
    expect(later.body).toMatchObject({ scheduled: 1, scheduledByType: { 'payout.execute': 0 }, oldestQueuedJobAgeMsByType: { 'payout.execute': 2_000 } });
  });

  it('computes the age against the injected clock', async () => {
    await seed(jobDocument({ status: 'queued', createdAt: clock.now() }));
    clock.advance(42_000);
    const res = await request(app).get('/admin/jobs/stats').set(admin);
    expect(res.body.oldestQueuedJobAgeMs).toBe(42_000);
  });

  it('reads the collection with one aggregation, whatever the number of statuses and types', async () => {
    await seed(...(['queued', 'leased', 'succeeded', 'failed', 'cancelled', 'dlq'] as const).map((status) => jobDocument({ status, createdAt: minutesAgo(1) })));
    const operations: string[] = [];
    db.connection.set('debug', (collection: string, method: string) => {
      operations.push(`${collection}.${method}`);
    });
    try {
      expect((await request(app).get('/admin/jobs/stats').set(admin)).status).toBe(200);
    } finally {
      db.connection.set('debug', false);
    }
    expect(operations).toEqual(['jobs.aggregate']);
  });
});

describe('GET /admin/jobs/throughput', () => {
  it('counts jobs finished per minute by outcome over the last hour', async () => {
    const inMinute = (n: number, second = 10): Date => new Date(Math.floor(clock.now().getTime() / MINUTE) * MINUTE - n * MINUTE + second * 1000);
    await seed(
      jobDocument({ status: 'succeeded', createdAt: minutesAgo(90), completedAt: inMinute(0) }),
      jobDocument({ status: 'succeeded', createdAt: minutesAgo(90), completedAt: inMinute(0, 50) }),
      jobDocument({ status: 'failed', createdAt: minutesAgo(90), completedAt: inMinute(0) }),
      jobDocument({ status: 'succeeded', createdAt: minutesAgo(90), completedAt: inMinute(5) }),
      jobDocument({ status: 'dlq', createdAt: minutesAgo(90), completedAt: inMinute(59) }),
      // Outside the window, or not a success/failure:
      jobDocument({ status: 'succeeded', createdAt: minutesAgo(90), completedAt: inMinute(60) }),
      jobDocument({ status: 'cancelled', createdAt: minutesAgo(90), completedAt: inMinute(1) }),
      jobDocument({ status: 'queued', createdAt: minutesAgo(1) }),
    );
    const res = await request(app).get('/admin/jobs/throughput').set(admin);
    expect(res.status).toBe(200);
    const { buckets } = res.body as { buckets: { start: string; succeeded: number; failed: number; dlq: number }[] };
    expect(res.body.bucketSeconds).toBe(60);
    expect(buckets).toHaveLength(60);
    expect(buckets[0]!.start).toBe(new Date(inMinute(59, 0)).toISOString());
    expect(buckets[59]!.start).toBe(new Date(inMinute(0, 0)).toISOString());
    expect(buckets[59]).toMatchObject({ succeeded: 2, failed: 1, dlq: 0 });
    expect(buckets[54]).toMatchObject({ succeeded: 1, failed: 0, dlq: 0 });
    expect(buckets[0]).toMatchObject({ succeeded: 0, failed: 0, dlq: 1 });
    const totals = buckets.reduce((sum, b) => sum + b.succeeded + b.failed + b.dlq, 0);
    expect(totals).toBe(5);
  });

  it('takes the window length in minutes (1-1440)', async () => {
    expect((await request(app).get('/admin/jobs/throughput?minutes=5').set(admin)).body.buckets).toHaveLength(5);
    expect((await request(app).get('/admin/jobs/throughput?minutes=0').set(admin)).status).toBe(422);
    expect((await request(app).get('/admin/jobs/throughput?minutes=1441').set(admin)).status).toBe(422);
  });
});

describe('POST /admin/jobs/:jobId/requeue', () => {
  async function deadJob(): Promise<string> {
    const jobId = await enqueueJob(app, { type: 'thumbnail.create', payload: thumbnailPayload(), maxAttempts: 1 });
    const [job] = await leaseJobs(app);
    const res = await report(app, jobId, 'fail', { leaseId: job!.leaseId, error: { message: 'decoder crashed', code: 'decode' } });
    expect(res.body.status).toBe('dlq');
    return jobId;
  }

  it('puts a dead job back in the queue with a fresh attempt budget, keeping its history', async () => {
    const jobId = await deadJob();
    clock.advance(10_000);
    const res = await request(app).post(`/admin/jobs/${jobId}/requeue`).set(admin);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ jobId, status: 'queued' });

    const detail = (await request(app).get(`/jobs/${jobId}`).set(admin)).body;
    expect(detail).toMatchObject({ status: 'queued', attempt: 0, nextRunAt: clock.now().toISOString(), completedAt: null, workerId: null });
    expect(detail.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'failed', error: { code: 'decode', message: 'decoder crashed' } })]);

    const [again] = await leaseJobs(app);
    expect(again).toMatchObject({ jobId, attempt: 1 });
  });

  it.each(['failed', 'cancelled'] as const)('requeues a %s job', async (status) => {
    const doc = jobDocument({ status, createdAt: minutesAgo(5) });
    await seed(doc);
    const res = await request(app).post(`/admin/jobs/${doc._id}/requeue`).set(admin);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ jobId: doc._id, status: 'queued' });
  });

  it.each(['queued', 'leased', 'succeeded'] as const)('answers 409 invalid_state for a %s job', async (status) => {
    const doc = jobDocument({ status, createdAt: minutesAgo(5) });
    await seed(doc);
    const res = await request(app).post(`/admin/jobs/${doc._id}/requeue`).set(admin);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('invalid_state');
  });

  it('answers 404 job_not_found for an unknown job and 422 for a malformed id', async () => {
    const unknown = await request(app).post('/admin/jobs/job_000000000000000000000000/requeue').set(admin);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('job_not_found');
    expect((await request(app).post('/admin/jobs/not-a-job/requeue').set(admin)).status).toBe(422);
  });
});

describe('admin authorization', () => {
  const endpoints: [string, string][] = [
    ['get', '/admin/jobs/queue'],
    ['get', '/admin/jobs/stats'],
    ['get', '/admin/jobs/throughput'],
    ['post', '/admin/jobs/job_000000000000000000000000/requeue'],
  ];

  it.each(endpoints.flatMap(([method, path]) => (['service', 'worker', 'user'] as const).map((role) => [method, path, role] as const)))(
    '%s %s answers 403 permission_denied to a %s token',
    async (method, path, role) => {
      const res = await (method === 'get' ? request(app).get(path) : request(app).post(path)).set(bearer(role));
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('permission_denied');
    },
  );

  it.each(endpoints)('%s %s answers 401 without a token', async (method, path) => {
    const res = await (method === 'get' ? request(app).get(path) : request(app).post(path));
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });
});
