import { createApp } from '../../src/app';
import { wireApi, wireServices, type ApiServices } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, thumbnailPayload } from '../helpers/jobs';
import { waitFor } from '../helpers/poll';
import { listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

const db = useTestDatabase();
const clock = new TestClock();
let server: Awaited<ReturnType<typeof listen>>;
let app: ReturnType<typeof createApp>;
let services: ApiServices;
beforeAll(async () => {
  const params = { connection: db.connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0, leasePollIntervalMs: 100 };
  services = wireServices(params);
  app = createApp(wireApi(params, services));
  server = await listen(app);
});

/** Resolves once `count` lease calls are waiting on the server. */
const untilWaiting = (count = 1) => waitFor(() => (services.jobs.waitingLeaseCalls >= count ? true : undefined), { intervalMs: 10 });
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

async function longPoll(params: { wait: number; type?: string }): Promise<{ jobs: { jobId: string }[]; ms: number; status: number }> {
  const started = Date.now();
  const query = new URLSearchParams({ wait: String(params.wait), ...(params.type ? { type: params.type } : {}) });
  const res = await fetch(`${server.baseUrl}/jobs/lease?${query.toString()}`, {
    headers: { Authorization: `Bearer ${tokenFor('worker')}`, 'X-Worker-Id': 'long-poller' },
  });
  const body = (await res.json()) as { jobs: { jobId: string }[] };
  return { jobs: body.jobs ?? [], ms: Date.now() - started, status: res.status };
}

describe('GET /jobs/lease?wait= (long-poll)', () => {
  it('answers at once when a job is available', async () => {
    const jobId = await enqueueJob(app, { type: 'thumbnail.create', payload: thumbnailPayload() });
    const res = await longPoll({ wait: 10 });
    expect(res.jobs.map((j) => j.jobId)).toEqual([jobId]);
    expect(res.ms).toBeLessThan(5_000);
  });

  it('holds an empty lease call and hands over a job enqueued meanwhile', async () => {
    const waiting = longPoll({ wait: 20 });
    await untilWaiting();
    const jobId = await enqueueJob(app, { type: 'thumbnail.create', payload: thumbnailPayload() });
    const res = await waiting;
    expect(res.jobs.map((j) => j.jobId)).toEqual([jobId]);
    expect(res.ms).toBeLessThan(10_000);
    expect(services.jobs.waitingLeaseCalls).toBe(0);
  });

  it('finds a job that becomes due while it waits (the shared poll)', async () => {
    const scheduleAt = new Date(clock.now().getTime() + 60_000).toISOString();
    const jobId = await enqueueJob(app, { type: 'thumbnail.create', payload: thumbnailPayload(), scheduleAt });
    const waiting = longPoll({ wait: 20 });
    await untilWaiting();
    clock.advance(60_000);
    const res = await waiting;
    expect(res.jobs.map((j) => j.jobId)).toEqual([jobId]);
  });

  it('answers empty when the wait ends without work', async () => {
    const res = await longPoll({ wait: 1 });
    expect(res.status).toBe(200);
    expect(res.jobs).toEqual([]);
    expect(res.ms).toBeGreaterThanOrEqual(900);
  });

  it('is not woken by jobs of other types', async () => {
    const waiting = longPoll({ wait: 1, type: 'payout.execute' });
    await untilWaiting();
    await enqueueJob(app, { type: 'thumbnail.create', payload: thumbnailPayload() });
    expect((await waiting).jobs).toEqual([]);
  });

  it.each(['31', '-1', 'soon'])('rejects wait=%s with 422', async (wait) => {
    const res = await fetch(`${server.baseUrl}/jobs/lease?wait=${wait}`, { headers: { Authorization: `Bearer ${tokenFor('worker')}`, 'X-Worker-Id': 'long-poller' } });
    expect(res.status).toBe(422);
  });
});
