import pino from 'pino';

import { JobsClient } from '../../src/client/jobs-client';
import { SnoozeJobError, type JobHandler } from '../../src/worker/handler';
import { WorkerRunner, type JobFinishedEvent } from '../../src/worker/runner';
import { useTestDatabase } from '../helpers/database';
import { call, serviceToken, startApiInstance, type ApiInstance } from '../helpers/instances';
import { waitFor } from '../helpers/poll';
import { tokenFor } from '../helpers/tokens';

/**
 * The worker runtime against the real API over a socket: finished jobs are reported in batches
 * (at once when idle, together under load), single reports against an API without the batch route,
 * SnoozeJobError and checkpoints from the handler's side.
 */
const db = useTestDatabase();
let api: ApiInstance;
const runners: WorkerRunner[] = [];

beforeAll(async () => {
  api = await startApiInstance(db, { reclaimIntervalMs: 0 });
});
afterAll(async () => {
  await api.close();
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop()));
});

interface Sent {
  method: string;
  path: string;
  at: number;
}

/** A worker on the real API; `olderApi` answers POST /jobs/reports as an API without the route does. */
function startRunner(params: { handler: JobHandler; concurrency?: number; olderApi?: boolean }): { sent: Sent[]; finished: JobFinishedEvent[]; logs: string[] } {
  const sent: Sent[] = [];
  const finished: JobFinishedEvent[] = [];
  const logs: string[] = [];
  const counting: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    sent.push({ method: init?.method ?? 'GET', path: url.pathname, at: Date.now() });
    if (params.olderApi && url.pathname === '/jobs/reports') {
      return new Response(JSON.stringify({ error: { code: 'not_found', message: 'no route for POST /jobs/reports' } }), { status: 404, headers: { 'Content-Type': 'application/json' } });
    }
    return fetch(input, init);
  };
  const runner = new WorkerRunner({
    api: new JobsClient({ baseUrl: api.baseUrl, token: tokenFor('worker', 'flow-worker'), workerId: 'flow-worker-1', fetch: counting }),
    handlers: new Map([['noop', params.handler]]),
    logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
    concurrency: params.concurrency ?? 4,
    shutdownGraceMs: 1_000,
    leaseWaitSeconds: 1,
    onJobFinished: (event) => finished.push(event),
  });
  runner.start();
  runners.push(runner);
  return { sent, finished, logs };
}

async function enqueue(count: number, payload: Record<string, unknown> = {}): Promise<string[]> {
  const res = await call(api.baseUrl, { method: 'POST', path: '/jobs/batch', token: serviceToken(), body: { jobs: Array.from({ length: count }, () => ({ type: 'noop', payload })) } });
  return (res.body.results as { jobId: string }[]).map((r) => r.jobId);
}

const statusCounts = async () =>
  Object.fromEntries((await db.connection.collection('jobs').aggregate<{ _id: string; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }]).toArray()).map((g) => [g._id, g.n]));

describe('batch reports from the worker runtime', () => {
  it("an idle worker's report goes at once, in one batch request of one", async () => {
    let finishedAt = 0;
    const { sent } = startRunner({
      handler: async () => {
        finishedAt = Date.now();
        return { ok: true };
      },
    });
    const [jobId] = await enqueue(1);
    await waitFor(async () => ((await db.connection.collection('jobs').findOne({ _id: jobId as never }))?.status === 'succeeded' ? true : undefined), { intervalMs: 5 });
    const reports = sent.filter((s) => s.path === '/jobs/reports');
    expect(reports).toHaveLength(1);
    // No lingering for an idle worker: the report left as the handler returned.
    expect(reports[0]!.at - finishedAt).toBeLessThan(20);
    expect(sent.filter((s) => s.path.endsWith('/succeed'))).toEqual([]);
  });

  it('under load the reports of many jobs share few requests; every job is reported once', async () => {
    await enqueue(300);
    const { sent, finished } = startRunner({ handler: async () => ({ ok: true }), concurrency: 60 });
    await waitFor(() => (finished.length === 300 ? true : undefined), { timeoutMs: 30_000 });
    await waitFor(async () => ((await statusCounts()).succeeded === 300 ? true : undefined));
    const batches = sent.filter((s) => s.path === '/jobs/reports').length;
    process.stdout.write(`300 jobs at concurrency 60: ${batches} report requests, ${sent.filter((s) => s.path === '/jobs/lease').length} lease requests\n`);
    expect(batches).toBeLessThan(100);
    expect(finished.every((e) => e.outcome === 'succeeded')).toBe(true);
  });

  it('against an API without the batch route (404) it falls back to the single endpoints, once, and loses nothing', async () => {
    await enqueue(20, { failItems: ['x'] });
    const { sent, finished, logs } = startRunner({ handler: async (ctx) => (ctx.attempt === 1 && ctx.jobId.endsWith('0') ? Promise.reject(new Error('once')) : { ok: true }), olderApi: true });
    await waitFor(() => (finished.filter((e) => e.outcome === 'succeeded').length === 20 ? true : undefined), { timeoutMs: 20_000 });
    expect(sent.filter((s) => s.path === '/jobs/reports')).toHaveLength(1);
    expect(sent.filter((s) => s.path.endsWith('/succeed'))).toHaveLength(20);
    expect(logs.filter((l) => l.includes('reporting one by one'))).toHaveLength(1);
    expect((await statusCounts()).succeeded).toBe(20);
  });
});

describe('snooze and checkpoints from the handler', () => {
  it('SnoozeJobError puts the job back for its seconds without spending the attempt', async () => {
    const [jobId] = await enqueue(1);
    const { finished } = startRunner({
      handler: async () => {
        throw new SnoozeJobError(600, 'the provider said later');
      },
    });
    await waitFor(() => (finished.length === 1 ? true : undefined));
    expect(finished[0]!.outcome).toBe('snoozed');
    const job = (await db.connection.collection('jobs').findOne({ _id: jobId as never }))!;
    expect(job).toMatchObject({ status: 'queued', attempt: 0 });
    expect((job.nextRunAt as Date).getTime() - Date.now()).toBeGreaterThan(590_000);
    expect((job.attempts as { outcome: string }[]).map((a) => a.outcome)).toEqual(['snoozed']);
    expect(() => new SnoozeJobError(0)).toThrow(RangeError);
  });

  it('ctx.saveCheckpoint stores it at once; ctx.checkpoint of the next run of the job returns it', async () => {
    const [jobId] = await enqueue(1);
    const seen: unknown[] = [];
    const { finished } = startRunner({
      handler: async (ctx) => {
        seen.push(ctx.checkpoint);
        if (ctx.attempt === 1) {
          await ctx.saveCheckpoint({ cursor: 'page-7' });
          expect(ctx.checkpoint).toEqual({ cursor: 'page-7' });
          const stored = await db.connection.collection('jobs').findOne({ _id: jobId as never });
          expect(stored!.checkpoint).toEqual({ cursor: 'page-7' });
          throw new Error('crashed after saving');
        }
        return { resumed: ctx.checkpoint };
      },
    });
    await waitFor(async () => ((await db.connection.collection('jobs').findOne({ _id: jobId as never }))?.status === 'succeeded' ? true : undefined), { timeoutMs: 15_000 });
    // The runner records its event once the report's answer is back, a moment after the database has it.
    await waitFor(() => (finished.length === 2 ? true : undefined));
    expect(seen).toEqual([null, { cursor: 'page-7' }]);
    expect(finished.map((e) => e.outcome)).toEqual(['failed', 'succeeded']);
  });

  it('a checkpoint save is refused (and the run stopped) once a cancel was requested', async () => {
    const [jobId] = await enqueue(1);
    let refused: unknown;
    const { finished } = startRunner({
      handler: async (ctx) => {
        await call(api.baseUrl, { method: 'POST', path: `/jobs/${ctx.jobId}/cancel`, token: serviceToken() });
        refused = await ctx.saveCheckpoint({ n: 1 }).catch((err: unknown) => err);
        expect(ctx.signal.aborted).toBe(true);
        throw refused;
      },
    });
    await waitFor(() => (finished.length === 1 ? true : undefined));
    expect(refused).toBeInstanceOf(Error);
    expect((await db.connection.collection('jobs').findOne({ _id: jobId as never }))!.status).toBe('cancelled');
  });
});
