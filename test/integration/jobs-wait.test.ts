import type { Connection } from 'mongoose';

import { createApp } from '../../src/app';
import { JobsClient } from '../../src/client/jobs-client';
import { connectDatabase } from '../../src/storage/connection';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { HttpWorker, listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * GET /jobs/:jobId?wait=N over real sockets: held until the job finishes (on this instance or
 * another) or N seconds pass, access checked first, one shared query per interval however many
 * wait (counted on the wire with the driver's command monitoring), ended at once by a shutdown.
 */
const db = useTestDatabase();
const POLL_MS = 300;
let connection: Connection;
let services: ApiServices;
let other: ApiServices;
let server: Awaited<ReturnType<typeof listen>>;
let otherServer: Awaited<ReturnType<typeof listen>>;
let worker: HttpWorker;
const jobFinds: string[] = [];

const SERVICE = tokenFor('service', 'waiter');

function wiring(conn: Connection, overrides: Partial<ApiWiringParams> = {}): ApiWiringParams {
  return { connection: conn, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, resultPollIntervalMs: POLL_MS, ...overrides };
}

beforeAll(async () => {
  // This instance's own connection, watched: every find on the jobs collection is counted.
  connection = await connectDatabase({ uri: testDatabaseUri(), dbName: db.dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary', monitorCommands: true });
  connection.getClient().on('commandStarted', (event) => {
    if (event.commandName === 'find' && event.command.find === 'jobs') jobFinds.push(JSON.stringify(event.command.filter));
  });
  const p = wiring(connection);
  services = wireServices(p);
  server = await listen(createApp(wireApi(p, services)));
  // A second API instance on the same database (its own services, events and connection).
  const q = wiring(db.connection);
  other = wireServices(q);
  otherServer = await listen(createApp(wireApi(q, other)));
  worker = new HttpWorker(otherServer.baseUrl, tokenFor('worker'), 'wait-worker');
});
afterAll(async () => {
  services.jobs.close();
  other.jobs.close();
  await server.close();
  await otherServer.close();
  await connection.close();
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

async function enqueue(baseUrl = server.baseUrl): Promise<string> {
  const res = await fetch(`${baseUrl}/jobs`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${SERVICE}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'noop', payload: {} }),
  });
  if (res.status !== 201) throw new Error(`enqueue answered ${res.status}`);
  return ((await res.json()) as { jobId: string }).jobId;
}

/** GET /jobs/:jobId?wait=; resolves with the status, the job and when the answer came. */
async function getWaiting(jobId: string, wait: number | string, token = SERVICE, baseUrl = server.baseUrl): Promise<{ status: number; body: Record<string, unknown>; at: number }> {
  const res = await fetch(`${baseUrl}/jobs/${jobId}?wait=${wait}`, { headers: { Authorization: `Bearer ${token}` } });
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, body, at: Date.now() };
}

async function leaseAndSucceed(jobId: string, via: HttpWorker = worker): Promise<number> {
  const [lease] = await via.lease({ limit: 1 });
  expect(lease?.jobId).toBe(jobId);
  const done = await via.report(jobId, 'succeed', { leaseId: lease!.leaseId, result: { answer: 42 } });
  expect(done.status).toBe(200);
  return Date.now();
}

describe('GET /jobs/:jobId?wait=N', () => {
  it('answers as soon as the job finishes on the same instance', async () => {
    const jobId = await enqueue();
    const answer = getWaiting(jobId, 20);
    await waitFor(() => (services.jobs.waitingResultCalls === 1 ? true : undefined), { intervalMs: 10, what: 'the held request' });
    const local = new HttpWorker(server.baseUrl, tokenFor('worker'), 'local-worker');
    const finishedAt = await leaseAndSucceed(jobId, local);
    const { status, body, at } = await answer;
    expect({ status, jobStatus: body.status, result: body.result }).toEqual({ status: 200, jobStatus: 'succeeded', result: { answer: 42 } });
    // Woken by the finishing event, not by the poll.
    expect(at - finishedAt).toBeLessThan(POLL_MS);
  });

  it('answers within a second when another API instance recorded the finish (the shared poll)', async () => {
    const jobId = await enqueue();
    const answer = getWaiting(jobId, 20);
    await waitFor(() => (services.jobs.waitingResultCalls === 1 ? true : undefined), { intervalMs: 10, what: 'the held request' });
    const finishedAt = await leaseAndSucceed(jobId);
    const { body, at } = await answer;
    expect(body.status).toBe('succeeded');
    expect(at - finishedAt).toBeLessThan(1_000);
  });

  it('ends at `wait` when the job does not finish, answering as without it', async () => {
    const jobId = await enqueue();
    const asked = Date.now();
    const { status, body, at } = await getWaiting(jobId, 1.2);
    expect({ status, jobStatus: body.status }).toEqual({ status: 200, jobStatus: 'queued' });
    expect(at - asked).toBeGreaterThanOrEqual(1_150);
    // No request is held past its wait (a scheduling margin aside).
    expect(at - asked).toBeLessThan(1_200 + 500);
    expect(services.jobs.waitingResultCalls).toBe(0);
  });

  it('answers at once for a finished job, and for wait=0', async () => {
    const jobId = await enqueue();
    await leaseAndSucceed(jobId);
    const asked = Date.now();
    expect((await getWaiting(jobId, 30)).body.status).toBe('succeeded');
    const queued = await enqueue();
    expect((await getWaiting(queued, 0)).body.status).toBe('queued');
    expect(Date.now() - asked).toBeLessThan(500);
  });

  it('checks access before waiting: another principal gets 403 at once, an admin asking for an unknown job 404 at once', async () => {
    const jobId = await enqueue();
    const asked = Date.now();
    const stranger = await getWaiting(jobId, 10, tokenFor('service', 'someone-else'));
    const sameSubAsUser = await getWaiting(jobId, 10, tokenFor('user', 'waiter'));
    const unknown = await getWaiting('job_000000000000000000000000', 10, tokenFor('admin', 'ops'));
    expect([stranger.status, sameSubAsUser.status, unknown.status]).toEqual([403, 403, 404]);
    expect([stranger.body, unknown.body]).toEqual([
      { error: { code: 'access_denied', message: expect.any(String) } },
      { error: { code: 'job_not_found', message: expect.any(String) } },
    ]);
    expect(Date.now() - asked).toBeLessThan(1_000);
  });

  it('refuses a wait outside 0–30 seconds (422)', async () => {
    const jobId = await enqueue();
    for (const wait of ['31', '-1', 'abc', '1e3']) {
      const res = await getWaiting(jobId, wait);
      expect({ wait, status: res.status, code: (res.body.error as { code?: string } | undefined)?.code }).toEqual({ wait, status: 422, code: 'validation_error' });
    }
  });

  it('200 concurrent waiters cost one query per poll interval, not one each', async () => {
    const ids = await Promise.all(Array.from({ length: 200 }, () => enqueue()));
    const answers = ids.map((jobId) => getWaiting(jobId, 4));
    await waitFor(() => (services.jobs.waitingResultCalls === 200 ? true : undefined), { intervalMs: 10, what: 'all 200 held' });
    jobFinds.length = 0;
    const windowMs = 2_000;
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const polls = jobFinds.length;
    // One finish elsewhere: its waiter is answered by the next poll, the other 199 keep waiting.
    const finishedAt = await leaseAndSucceed(ids[0]!);
    const first = await answers[0]!;
    expect(first.body.status).toBe('succeeded');
    expect(first.at - finishedAt).toBeLessThan(1_000);
    const rest = await Promise.all(answers.slice(1));
    expect(rest.every((r) => r.status === 200 && r.body.status === 'queued')).toBe(true);
    process.stdout.write(`result waits: ${polls} job queries in ${windowMs} ms for 200 waiters (poll every ${POLL_MS} ms)\n`);
    // ~windowMs / POLL_MS polls (one query each, for all 200 ids); 200 waiters polling alone would be ~1,300.
    expect(polls).toBeLessThanOrEqual(Math.ceil(windowMs / POLL_MS) + 1);
    expect(polls).toBeGreaterThanOrEqual(Math.floor(windowMs / POLL_MS) - 1);
  }, 30_000);

  it('a shutdown ends every wait at once, each answered with the job as it is', async () => {
    const p = wiring(db.connection);
    const closing = wireServices(p);
    const closingServer = await listen(createApp(wireApi(p, closing)));
    try {
      const ids = await Promise.all([enqueue(), enqueue()]);
      const answers = ids.map((jobId) => getWaiting(jobId, 25, SERVICE, closingServer.baseUrl));
      await waitFor(() => (closing.jobs.waitingResultCalls === 2 ? true : undefined), { intervalMs: 10, what: 'both held' });
      const closedAt = Date.now();
      closing.jobs.close();
      const answered = await Promise.all(answers);
      expect(answered.map((a) => [a.status, a.body.status])).toEqual([
        [200, 'queued'],
        [200, 'queued'],
      ]);
      expect(Math.max(...answered.map((a) => a.at)) - closedAt).toBeLessThan(500);
    } finally {
      await closingServer.close();
    }
  });
});

describe('JobsClient.waitForResult', () => {
  it('resolves with the finished job, or with the job as it is once timeoutMs has passed', async () => {
    const client = new JobsClient({ baseUrl: server.baseUrl, token: SERVICE });
    const jobId = await enqueue();
    const waiting = client.waitForResult(jobId, { timeoutMs: 20_000 });
    await waitFor(() => (services.jobs.waitingResultCalls === 1 ? true : undefined), { intervalMs: 10 });
    await leaseAndSucceed(jobId);
    expect(await waiting).toMatchObject({ jobId, status: 'succeeded', result: { answer: 42 } });

    const unfinished = await enqueue();
    const asked = Date.now();
    expect(await client.waitForResult(unfinished, { timeoutMs: 700 })).toMatchObject({ jobId: unfinished, status: 'queued' });
    expect(Date.now() - asked).toBeGreaterThanOrEqual(600);
    expect(Date.now() - asked).toBeLessThan(2_000);
  });
});
