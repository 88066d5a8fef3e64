import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, payoutPayload, thumbnailPayload } from '../helpers/jobs';
import { HttpWorker, listen } from '../helpers/server';
import { tokenFor } from '../helpers/tokens';

// Races with real concurrent HTTP clients over real sockets, on the system clock.
const db = useTestDatabase();
let server: Awaited<ReturnType<typeof listen>>;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  app = buildTestApp(db, { reclaimIntervalMs: 0 });
  server = await listen(app);
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
  await db.connection.collection('job_slots').deleteMany({});
});

async function enqueueMany(count: number, body: () => Record<string, unknown>): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < count; start += 50) {
    ids.push(...(await Promise.all(Array.from({ length: Math.min(50, count - start) }, () => enqueueJob(app, body())))));
  }
  return ids;
}

describe('concurrent workers', () => {
  it('24 workers with mixed batch sizes drain 300 jobs; every job is leased exactly once', async () => {
    const ids = await enqueueMany(300, () => ({ type: 'thumbnail.create', payload: thumbnailPayload() }));
    const leases: { jobId: string; leaseId: string; workerId: string }[] = [];
    const token = tokenFor('worker');
    const limits = [1, 2, 3, 5, 8, 10, 20, 50];

    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const worker = new HttpWorker(server.baseUrl, token, `race-worker-${i}`);
        let emptyInARow = 0;
        while (emptyInARow < 3) {
          const jobs = await worker.lease({ limit: limits[i % limits.length]! });
          emptyInARow = jobs.length === 0 ? emptyInARow + 1 : 0;
          for (const job of jobs) leases.push({ ...job, workerId: worker.workerId });
          const reports = await Promise.all(jobs.map((job) => worker.report(job.jobId, 'succeed', { leaseId: job.leaseId })));
          for (const r of reports) expect(r.status).toBe(200);
        }
      }),
    );

    const leasedIds = leases.map((l) => l.jobId);
    expect(leasedIds).toHaveLength(300);
    expect(new Set(leasedIds).size).toBe(300);
    expect(new Set(leasedIds)).toEqual(new Set(ids));
    expect(new Set(leases.map((l) => l.leaseId)).size).toBe(300);
    expect(await db.connection.collection('jobs').countDocuments({ status: 'succeeded', attempt: 1 })).toBe(300);
  });

  it('10 workers racing for payout jobs never hold more than 5 at once', async () => {
    await enqueueMany(40, () => ({ type: 'payout.execute', payload: payoutPayload() }));
    const jobs = db.connection.collection('jobs');
    let racing = true;
    let maxLeased = 0;
    // Samples the server-side count of leased payouts while the workers race.
    const sampler = (async () => {
      while (racing) {
        maxLeased = Math.max(maxLeased, await jobs.countDocuments({ type: 'payout.execute', status: 'leased' }));
      }
    })();
    const token = tokenFor('worker');
    let succeeded = 0;
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const worker = new HttpWorker(server.baseUrl, token, `payout-worker-${i}`);
        while (succeeded < 40) {
          const leased = await worker.lease({ limit: 3, type: 'payout.execute' });
          // Hold the leases across a few more lease calls by the other workers before reporting.
          await new Promise((resolve) => setImmediate(resolve));
          for (const job of leased) {
            const r = await worker.report(job.jobId, 'succeed', { leaseId: job.leaseId });
            expect(r.status).toBe(200);
            succeeded += 1;
          }
        }
      }),
    );
    racing = false;
    await sampler;
    expect(succeeded).toBe(40);
    expect(maxLeased).toBeLessThanOrEqual(5);
    expect(maxLeased).toBeGreaterThan(0);
    expect(await jobs.countDocuments({ status: 'succeeded' })).toBe(40);
  });
});
