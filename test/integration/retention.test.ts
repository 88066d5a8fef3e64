import type { Express } from 'express';
import request from 'supertest';

import { createApp } from '../../src/app';
import { ConfigError, loadApiConfig } from '../../src/config';
import type { JobStatus } from '../../src/model/job';
import { DEFAULT_RETENTION, RetentionCleaner, type RetentionSettings } from '../../src/jobs/retention';
import { RetentionRepository } from '../../src/storage/retention-repository';
import { wireApi, wireServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { waitFor } from '../helpers/poll';
import { bearer, TEST_JWT_SECRET } from '../helpers/tokens';

const db = useTestDatabase();
const clock = new TestClock();
let app: Express;
beforeAll(() => {
  const params: ApiWiringParams = { connection: db.connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0 };
  app = createApp(wireApi(params, wireServices(params)));
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

const DAY = 86_400_000;
const admin = bearer('admin');
const daysAgo = (days: number): Date => new Date(clock.now().getTime() - days * DAY);

type Seeded = ReturnType<typeof jobDocument>;

/** `count` jobs in `status` that finished `days` days ago (created an hour before that). */
function finished(status: JobStatus, days: number, count: number): Seeded[] {
  return Array.from({ length: count }, () => jobDocument({ status, createdAt: new Date(daysAgo(days).getTime() - 3_600_000), completedAt: daysAgo(days) }));
}

async function seed(docs: Seeded[]): Promise<void> {
  await db.connection.collection('jobs').insertMany(docs as unknown as Record<string, unknown>[]);
}

async function remainingIds(): Promise<string[]> {
  return (await db.connection.collection('jobs').find({}, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id)).sort();
}

/** A cleaner over the real store, with the pauses between batches recorded instead of waited for. */
function cleaner(settings: Partial<RetentionSettings> = {}): { cleaner: RetentionCleaner; pauses: number[] } {
  const pauses: number[] = [];
  return {
    pauses,
    cleaner: new RetentionCleaner({
      store: new RetentionRepository(db.connection),
      clock,
      logger: silentLogger,
      ...DEFAULT_RETENTION,
      batchSize: 10,
      batchPauseMs: 250,
      ...settings,
      pause: async (ms) => {
        pauses.push(ms);
      },
    }),
  };
}

describe('the retention cleaner', () => {
  it('deletes exactly the finished jobs older than their status retention, in bounded batches, and never queued or leased ones', async () => {
    // Retention: succeeded 7 days, failed and cancelled 30, dead letters 90 (the defaults).
    const expired = [...finished('succeeded', 8, 25), ...finished('failed', 31, 4), ...finished('cancelled', 45, 3), ...finished('dlq', 91, 2)];
    const kept = [
      ...finished('succeeded', 6.9, 3),
      ...finished('failed', 29, 2),
      ...finished('cancelled', 29.5, 1),
      ...finished('dlq', 89, 2),
      // A dead letter is kept longer than a failed job of the same age.
      ...finished('dlq', 31, 1),
      // Unfinished jobs are never touched, whatever their age (even with a stray completedAt).
      jobDocument({ status: 'queued', createdAt: daysAgo(400) }),
      jobDocument({ status: 'leased', createdAt: daysAgo(400) }),
      jobDocument({ status: 'queued', createdAt: daysAgo(400), completedAt: daysAgo(399) }),
      jobDocument({ status: 'leased', createdAt: daysAgo(400), completedAt: daysAgo(399) }),
    ];
    await seed([...expired, ...kept]);

    const { cleaner: retention, pauses } = cleaner();
    const report = await retention.runOnce();
    expect(report.deleted).toEqual({ succeeded: 25, failed: 4, cancelled: 3, dlq: 2 });
    // At most batchSize per delete; a pause after each full batch.
    expect(report.batches).toEqual([10, 10, 5, 4, 3, 2]);
    expect(pauses).toEqual([250, 250]);
    expect(await remainingIds()).toEqual(kept.map((d) => d._id).sort());

    // Nothing is left to delete; a second pass deletes nothing.
    expect((await retention.runOnce()).batches).toEqual([]);
  });

  it('keeps the stats exact: they count what remains', async () => {
    await seed([...finished('succeeded', 10, 12), ...finished('succeeded', 1, 3), ...finished('dlq', 100, 2), ...finished('failed', 100, 1), jobDocument({ status: 'queued', createdAt: daysAgo(50) })]);
    const before = (await request(app).get('/admin/jobs/stats').set(admin)).body;
    expect(before.statusCounts).toMatchObject({ queued: 1, leased: 0, succeeded: 15, failed: 1, cancelled: 0, dlq: 2 });

    await cleaner().cleaner.runOnce();
    const after = (await request(app).get('/admin/jobs/stats').set(admin)).body;
    expect(after.totalJobs).toBe(4);
    expect(after.statusCounts).toMatchObject({ queued: 1, leased: 0, succeeded: 3, failed: 0, cancelled: 0, dlq: 0 });
    expect(after.byType['thumbnail.create']).toEqual(after.statusCounts);
    const listed = await request(app).get('/admin/jobs/queue').query({ per_page: 100 }).set(admin);
    expect(listed.body.meta.total).toBe(4);
  });

  it('keeps a status forever when its retention is 0 days', async () => {
    await seed([...finished('succeeded', 1_000, 3), ...finished('dlq', 1_000, 2), ...finished('failed', 1_000, 1)]);
    const report = await cleaner({ succeededDays: 0, dlqDays: 0 }).cleaner.runOnce();
    expect(report.deleted).toEqual({ succeeded: 0, failed: 1, cancelled: 0, dlq: 0 });
    expect(await db.connection.collection('jobs').countDocuments()).toBe(5);
  });

  it('keeps a job that was requeued between being found and being deleted', async () => {
    const [dead, other] = finished('dlq', 100, 2);
    await seed([dead!, other!]);
    const store = new RetentionRepository(db.connection);
    const before = daysAgo(90);
    const ids = await store.findExpired({ status: 'dlq', before, limit: 10 });
    expect(ids.sort()).toEqual([dead!._id, other!._id].sort());
    expect((await request(app).post(`/admin/jobs/${dead!._id}/requeue`).set(admin)).status).toBe(200);
    expect(await store.deleteExpired({ ids, status: 'dlq', before })).toBe(1);
    expect(await remainingIds()).toEqual([dead!._id]);
  });

  it('runs on its own once started and stops cleanly', async () => {
    await seed(finished('succeeded', 30, 15));
    const { cleaner: retention } = cleaner({ intervalMs: 20, batchSize: 4 });
    retention.start();
    try {
      await waitFor(async () => ((await db.connection.collection('jobs').countDocuments()) === 0 ? true : undefined), { what: 'the cleaner to run', timeoutMs: 5_000 });
    } finally {
      await retention.stop();
    }
  });

  it('has an index on (status, completedAt) for its query', async () => {
    const indexes = await db.connection.collection('jobs').indexes();
    expect(indexes.find((i) => i.name === 'retention')?.key).toEqual({ status: 1, completedAt: 1 });
  });
});

describe('retention and scheduler configuration', () => {
  const base = { MONGODB_URI: 'mongodb://localhost:27017', JWT_SECRET: 'x'.repeat(32) };

  it('defaults: succeeded 7 days, failed and cancelled 30, dead letters 90 (kept longest); cleaner every minute in batches of 500', () => {
    expect(loadApiConfig(base)).toMatchObject({
      JOB_RETENTION_SUCCEEDED_DAYS: 7,
      JOB_RETENTION_FAILED_DAYS: 30,
      JOB_RETENTION_DLQ_DAYS: 90,
      RETENTION_INTERVAL_MS: 60_000,
      RETENTION_BATCH_SIZE: 500,
      RETENTION_BATCH_PAUSE_MS: 200,
      SCHEDULER_INTERVAL_MS: 1_000,
      SCHEDULER_MISFIRE_GRACE_MS: 60_000,
    });
  });

  it('takes 0 as "keep forever" and "off", and an empty value as unset', () => {
    expect(loadApiConfig({ ...base, JOB_RETENTION_SUCCEEDED_DAYS: '0', RETENTION_INTERVAL_MS: '0', SCHEDULER_INTERVAL_MS: '0', JOB_RETENTION_DLQ_DAYS: '' })).toMatchObject({
      JOB_RETENTION_SUCCEEDED_DAYS: 0,
      JOB_RETENTION_DLQ_DAYS: 90,
      RETENTION_INTERVAL_MS: 0,
      SCHEDULER_INTERVAL_MS: 0,
    });
  });

  it('refuses a misfire grace shorter than the scheduler interval (on-time occurrences would count as missed)', () => {
    expect(() => loadApiConfig({ ...base, SCHEDULER_INTERVAL_MS: '120000', SCHEDULER_MISFIRE_GRACE_MS: '60000' })).toThrow(
      'invalid configuration: SCHEDULER_MISFIRE_GRACE_MS must be at least SCHEDULER_INTERVAL_MS',
    );
    expect(loadApiConfig({ ...base, SCHEDULER_INTERVAL_MS: '120000', SCHEDULER_MISFIRE_GRACE_MS: '120000' }).SCHEDULER_MISFIRE_GRACE_MS).toBe(120_000);
  });

  it.each([
    ['JOB_RETENTION_SUCCEEDED_DAYS', '-1', 'must be a whole number'],
    ['JOB_RETENTION_FAILED_DAYS', '1.5', 'must be a whole number'],
    ['JOB_RETENTION_DLQ_DAYS', 'forever', 'must be a whole number'],
    ['JOB_RETENTION_DLQ_DAYS', '40000', ''],
    ['RETENTION_BATCH_SIZE', '0', ''],
    ['RETENTION_INTERVAL_MS', '10', 'must be 0 (off) or from 1000'],
    ['SCHEDULER_INTERVAL_MS', '5', 'must be 0 (off) or from 100'],
    ['SCHEDULER_MISFIRE_GRACE_MS', 'soon', 'must be a whole number'],
    ['SCHEDULER_MISFIRE_GRACE_MS', '0', ''],
  ])('stops start-up with one line naming %s=%s', (variable, value, problem) => {
    expect(() => loadApiConfig({ ...base, [variable]: value })).toThrow(ConfigError);
    expect(() => loadApiConfig({ ...base, [variable]: value })).toThrow(`invalid configuration: ${variable} ${problem}`);
  });
});
