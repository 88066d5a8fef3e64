import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startJavaServer } from '../../src/embedded-db/java-server';
import type { EmbeddedDatabase } from '../../src/embedded-db/types';
import { makeImage } from '../fixtures/images';
import { waitFor } from '../helpers/poll';
import { startApiProcess, startWorkerProcess, type ServiceProcess } from '../helpers/processes';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * A database outage with real processes: an API and a worker on this file's own mongo-java-server
 * (H2-file-backed, so data survives the restart). While the database is down: every request that
 * needs it answers 503 `unavailable` within a bound, /readyz says 503, and the worker backs off
 * instead of spinning. When it returns, everything recovers by itself, and no request that was
 * answered with success names a write that did not happen (nor does a 503 hide one).
 */
jest.setTimeout(120_000);

const DB_TIMEOUT_MS = 1_000;
const OUTAGE_MS = 6_000;
/** Bound on any answer while the database is down: the driver's wait plus room for a busy machine. */
const ANSWER_BOUND_MS = DB_TIMEOUT_MS + 3_000;
const WORKER_ID = 'outage-worker-1';

let database: EmbeddedDatabase | undefined;
let dataDir = '';
let api: ServiceProcess | undefined;
let worker: ServiceProcess | undefined;
let baseUrl = '';
let workerExited = false;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'jobs-outage-'));
  database = await startJavaServer({ port: 0, dataFile: path.join(dataDir, 'outage.h2') });
  const env = {
    MONGODB_URI: database.uri,
    MONGODB_DB_NAME: 'outage',
    JWT_SECRET: TEST_JWT_SECRET,
    DB_TIMEOUT_MS: String(DB_TIMEOUT_MS),
    RECLAIM_INTERVAL_MS: '200',
    JOB_POLICY_OVERRIDES: JSON.stringify({ noop: { timeoutSeconds: 3, backoffBaseSeconds: 0.2, backoffCapSeconds: 1 } }),
  };
  const started = await startApiProcess(env);
  api = started.api;
  baseUrl = started.baseUrl;
  // Plain polling (no long-poll): the worker's own backoff is what keeps it from spinning.
  worker = startWorkerProcess({
    ...env,
    JOBS_API_URL: baseUrl,
    WORKER_TOKEN: tokenFor('worker', 'outage-workers'),
    WORKER_ID,
    WORKER_TYPES: 'noop',
    // Room to spare: jobs whose reports wait out the outage hold their slots, and leasing goes on.
    WORKER_CONCURRENCY: '8',
    WORKER_LEASE_WAIT_SECONDS: '0',
  });
  await worker.waitForLine(/"msg":"worker started"/);
  void worker.exited.then(() => {
    workerExited = true;
  });
});

afterAll(async () => {
  await Promise.all([worker?.stop(), api?.stop()]);
  await database?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: { error?: { code?: string }; jobId?: string; status?: string } & Record<string, unknown>;
  ms: number;
}

async function call(method: string, route: string, options: { role?: 'admin' | 'service' | 'worker'; body?: unknown; bytes?: Buffer; contentType?: string } = {}): Promise<Answer> {
  const started = Date.now();
  const headers: Record<string, string> = { Authorization: `Bearer ${tokenFor(options.role ?? 'admin', 'outage-caller')}`, 'X-Worker-Id': 'outage-prober' };
  let body: BodyInit | undefined;
  if (options.bytes) {
    headers['Content-Type'] = options.contentType ?? 'application/octet-stream';
    body = new Uint8Array(options.bytes);
  } else if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  // A hung request fails this test: nothing may take longer than this.
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${baseUrl}${route}`, { method, headers, ...(body === undefined ? {} : { body }), signal: AbortSignal.timeout(15_000) });
    text = await res.text();
  } catch (err) {
    // Which request hung, and what the API last logged.
    throw new Error(`${method} ${route}: ${String(err)} after ${Date.now() - started} ms; the API's last lines:\n${(api?.lines ?? []).slice(-15).map((l) => l.slice(0, 300)).join('\n')}`, { cause: err });
  }
  return { status: res.status, body: (text.startsWith('{') ? JSON.parse(text) : {}) as Answer['body'], ms: Date.now() - started };
}

const enqueue = (payload: object, idempotencyKey?: string) =>
  call('POST', '/jobs', { role: 'service', body: { type: 'noop', payload, ...(idempotencyKey ? { idempotencyKey } : {}) } });

interface LoggedRequest {
  time: number;
  url: string;
  status: number;
  workerId: string | undefined;
}

/** The API's request log (src/http/request-logging.ts lines). */
function requestLog(process: ServiceProcess): LoggedRequest[] {
  const out: LoggedRequest[] = [];
  for (const line of process.lines) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { time?: number; req?: { url?: string; workerId?: string }; res?: { statusCode?: number } };
    if (!entry.req?.url || entry.res?.statusCode === undefined || entry.time === undefined) continue;
    out.push({ time: entry.time, url: entry.req.url, status: entry.res.statusCode, workerId: entry.req.workerId });
  }
  return out;
}

interface LoopCall {
  key: string;
  startedAt: number;
  endedAt: number;
  status: number;
  jobId: string | undefined;
}

/** A steady stream of keyed enqueues (one every 100 ms) until stopped. */
function startEnqueueLoop(): { calls: LoopCall[]; stop(): Promise<void> } {
  const calls: LoopCall[] = [];
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i += 1) {
      const key = `loop-${i}`;
      const startedAt = Date.now();
      const res = await enqueue({}, key).catch(() => undefined);
      // No answer at all (the API itself went away) is recorded as status 0 and fails the test.
      calls.push({ key, startedAt, endedAt: Date.now(), status: res?.status ?? 0, jobId: res?.body.jobId });
      if (!res) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    calls,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

describe('a database outage', () => {
  it('answers 503 within a bound, backs workers off, recovers by itself, and reports no write that did not happen', async () => {
    // ---- Before: the system works, and some jobs are in flight when the database goes. ----
    const png = await makeImage({ contentType: 'image/png', width: 16, height: 16 });
    const asset = await call('POST', '/assets', { role: 'service', bytes: png, contentType: 'image/png' });
    expect(asset.status).toBe(201);
    const known = new Set<string>();
    const warmup = await Promise.all([1, 2, 3, 4].map(() => enqueue({})));
    warmup.forEach((r) => known.add(r.body.jobId!));
    const statusesOf = async (jobIds: string[]) => (await Promise.all(jobIds.map((id) => call('GET', `/jobs/${id}`)))).map((r) => r.body.status);
    await waitFor(async () => ((await statusesOf([...known])).every((s) => s === 'succeeded') ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'the warm-up jobs to succeed',
    });
    let inFlight: string[] = [];
    const loop = startEnqueueLoop();
    let stoppedAt = 0;
    let restartAt = 0;
    let dbUpAt = 0;
    let readyAfterMs = 0;
    let writableAfterMs = 0;
    try {
      await waitFor(() => (loop.calls.filter((c) => c.status === 201).length >= 3 ? true : undefined), { timeoutMs: 10_000, what: 'the enqueue loop to start' });
      // The worker is taking the loop's jobs, so its idle backoff stays short when the database goes
      // (an idle worker may sleep 5 s between polls, which would leave no lease call inside the
      // outage); then long jobs are leased, to be in flight when it goes.
      await waitFor(
        async () => {
          const loopJobs = loop.calls.filter((c) => c.jobId !== undefined).map((c) => c.jobId!);
          return (await statusesOf(loopJobs.slice(-3))).some((s) => s === 'succeeded') ? true : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 50, what: "the worker to run the enqueue loop's jobs" },
      );
      inFlight = (await Promise.all([1, 2, 3].map(() => enqueue({ sleepMs: 2_500 })))).map((r) => r.body.jobId!);
      inFlight.forEach((id) => known.add(id));
      await waitFor(async () => ((await statusesOf(inFlight)).every((s) => s === 'leased') ? true : undefined), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'the long jobs to be leased',
      });

      // ---- The database stops. ----
      await database!.stop();
      stoppedAt = Date.now();
      const probes: [name: string, answer: Promise<Answer>, expected: number][] = [
        ['POST /jobs', enqueue({}, 'during-outage'), 503],
        ['POST /jobs/batch', call('POST', '/jobs/batch', { role: 'service', body: { jobs: [{ type: 'noop', payload: {} }] } }), 503],
        ['GET /jobs/:jobId', call('GET', `/jobs/${inFlight[0]!}`), 503],
        ['POST /jobs/:jobId/cancel', call('POST', `/jobs/${inFlight[0]!}/cancel`), 503],
        ['GET /jobs/lease', call('GET', '/jobs/lease', { role: 'worker' }), 503],
        ['POST /jobs/:jobId/succeed', call('POST', `/jobs/${inFlight[1]!}/succeed`, { role: 'worker', body: { leaseId: 'lease_none' } }), 503],
        ['GET /admin/jobs/stats', call('GET', '/admin/jobs/stats'), 503],
        ['GET /admin/jobs/queue', call('GET', '/admin/jobs/queue'), 503],
        ['POST /escrows', call('POST', '/escrows', { body: { batchId: 'outage', amount: 1, currency: 'EUR', payee: 'acct_outage' } }), 503],
        ['GET /escrows/:escrowId', call('GET', '/escrows/escrow_outage'), 503],
        ['POST /assets', call('POST', '/assets', { role: 'service', bytes: png, contentType: 'image/png' }), 503],
        ['GET /assets/:assetId', call('GET', `/assets/${String(asset.body.assetId)}`), 503],
        ['GET /readyz', call('GET', '/readyz'), 503],
        ['GET /healthz', call('GET', '/healthz'), 200],
      ];
      const answers = await Promise.all(probes.map(async ([name, answer, expected]) => ({ name, expected, ...(await answer) })));
      process.stdout.write(
        `outage: answers while the database is down (bound ${ANSWER_BOUND_MS} ms)\n${answers
          .map((a) => `  ${a.name.padEnd(26)} ${a.status} ${String(a.body.error?.code ?? '-').padEnd(12)} ${a.ms} ms`)
          .join('\n')}\n`,
      );
      for (const a of answers) {
        expect({ name: a.name, status: a.status, code: a.expected === 503 ? a.body.error?.code : undefined }).toEqual({
          name: a.name,
          status: a.expected,
          code: a.expected === 503 ? 'unavailable' : undefined,
        });
        expect({ name: a.name, withinBound: a.ms <= ANSWER_BOUND_MS }).toEqual({ name: a.name, withinBound: true });
      }

      // Keep it down a while: the worker must back off, not spin.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + OUTAGE_MS - Date.now())));
      restartAt = Date.now();
      database = await startJavaServer({ port: database!.port, dataFile: path.join(dataDir, 'outage.h2') });
      dbUpAt = Date.now();

      // ---- Recovery, by itself: readiness, then writes. ----
      await waitFor(async () => ((await call('GET', '/readyz')).status === 200 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: '/readyz to answer 200' });
      readyAfterMs = Date.now() - dbUpAt;
      await waitFor(() => (loop.calls.some((c) => c.startedAt >= dbUpAt && c.status === 201) ? true : undefined), { timeoutMs: 30_000, intervalMs: 50, what: 'enqueue to work again' });
      writableAfterMs = Math.min(...loop.calls.filter((c) => c.startedAt >= dbUpAt && c.status === 201).map((c) => c.endedAt)) - dbUpAt;
    } finally {
      await loop.stop();
    }

    const leaseCalls = requestLog(api!).filter((r) => r.url.startsWith('/jobs/lease') && r.workerId === WORKER_ID && r.time >= stoppedAt && r.time < restartAt);
    const backoffs = worker!.lines
      .filter((l) => l.includes('"msg":"lease failed; backing off"'))
      .map((l) => JSON.parse(l) as { time: number; retryInMs: number })
      .filter((l) => l.time >= stoppedAt && l.time < restartAt);
    process.stdout.write(
      `outage: the worker made ${leaseCalls.length} lease calls in ${restartAt - stoppedAt} ms of outage (answered ${[...new Set(leaseCalls.map((c) => c.status))].join(',')}); its backoff waits: ${backoffs.map((b) => b.retryInMs).join(', ')} ms\n`,
    );
    // It kept trying, at most about once a second (each call waits DB_TIMEOUT_MS, then the backoff grows).
    expect(leaseCalls.length).toBeGreaterThanOrEqual(1);
    expect(leaseCalls.length).toBeLessThanOrEqual(Math.ceil(OUTAGE_MS / 1_000) + 1);
    expect(leaseCalls.every((c) => c.status === 503)).toBe(true);

    // The enqueue refused during the outage left nothing behind: the same key creates a new job now.
    const again = await enqueue({}, 'during-outage');
    expect(again.status).toBe(201);
    known.add(again.body.jobId!);

    const unhandled = api!.lines.filter((l) => l.includes('"msg":"unhandled error"'));
    if (unhandled.length > 0) process.stdout.write(`outage: the API logged unhandled errors:\n${unhandled.join('\n').slice(0, 4_000)}\n`);
    expect(unhandled).toEqual([]);

    // Every success names a job that exists; every 503 sent wholly inside the outage wrote nothing;
    // a 503 that straddled the stop may or may not have written (the key tells, and never twice).
    let straddled = 0;
    for (const c of loop.calls) {
      if (c.status === 201 || c.status === 200) {
        expect((await call('GET', `/jobs/${c.jobId!}`)).status).toBe(200);
        known.add(c.jobId!);
        continue;
      }
      expect({ key: c.key, status: c.status }).toEqual({ key: c.key, status: 503 });
      const retried = await enqueue({}, c.key);
      known.add(retried.body.jobId!);
      if (c.startedAt >= stoppedAt && c.endedAt < restartAt) expect({ key: c.key, status: retried.status }).toEqual({ key: c.key, status: 201 });
      else straddled += retried.status === 200 ? 1 : 0;
    }

    // Everything drains with the same worker process (never restarted): the in-flight jobs' leases
    // expire and they run again.
    const stats = await waitFor(
      async () => {
        const res = await call('GET', '/admin/jobs/stats');
        const counts = res.body.statusCounts as Record<string, number> | undefined;
        return res.status === 200 && counts && counts.queued === 0 && counts.leased === 0 ? res.body : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 250, what: 'every job to finish after the outage' },
    );
    const allDoneAfterMs = Date.now() - dbUpAt;
    expect(workerExited).toBe(false);
    // No phantom jobs: the database holds exactly the jobs some 2xx answer named, all succeeded.
    expect(stats.totalJobs).toBe(known.size);
    expect((stats.statusCounts as Record<string, number>).succeeded).toBe(known.size);
    expect(await statusesOf(inFlight)).toEqual(['succeeded', 'succeeded', 'succeeded']);

    process.stdout.write(
      `outage: database down ${restartAt - stoppedAt} ms; after it returned: /readyz 200 in ${readyAfterMs} ms, enqueue 201 in ${writableAfterMs} ms, ` +
        `all ${known.size} jobs succeeded in ${allDoneAfterMs} ms; enqueue loop: ${loop.calls.length} calls, ` +
        `${loop.calls.filter((c) => c.status === 503).length} answered 503 (${straddled} of them straddled the stop and had landed)\n`,
    );
  });
});
