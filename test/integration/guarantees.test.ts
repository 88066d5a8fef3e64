import type { Connection } from 'mongoose';
import request from 'supertest';

import { createApp } from '../../src/app';
import { connectDatabase } from '../../src/storage/connection';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { payoutPayload } from '../helpers/jobs';
import { waitFor } from '../helpers/poll';
import { HttpWorker, listen } from '../helpers/server';
import { TEST_JWT_SECRET, bearer, tokenFor } from '../helpers/tokens';

/**
 * Regression tests for the defects a black-box attack found (issue 11): each races real concurrent
 * HTTP clients over real sockets against one API instance on the test database.
 */
const db = useTestDatabase();
const clock = new TestClock();
let services: ApiServices;
let server: Awaited<ReturnType<typeof listen>>;
let worker: HttpWorker;
const SECOND = 1_000;

function params(connection: Connection, overrides: Partial<ApiWiringParams> = {}): ApiWiringParams {
  return { connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0, ...overrides };
}

beforeAll(async () => {
  const p = params(db.connection);
  services = wireServices(p);
  server = await listen(createApp(wireApi(p, services)));
  worker = new HttpWorker(server.baseUrl, tokenFor('worker'), 'guarantee-worker');
});
afterAll(async () => {
  services.jobs.close();
  await server.close();
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
  await db.connection.collection('job_slots').deleteMany({});
});

const SERVICE = tokenFor('service', 'svc-guarantees');

async function post(path: string, body: unknown, token = SERVICE): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.baseUrl}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function enqueue(body: Record<string, unknown>, token = SERVICE): Promise<string> {
  const res = await post('/jobs', body, token);
  if (res.status !== 201) throw new Error(`enqueue answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.jobId as string;
}

async function jobDoc(jobId: string): Promise<Record<string, unknown>> {
  const doc = await db.connection.collection('jobs').findOne({ _id: jobId as never });
  if (!doc) throw new Error(`job ${jobId} is gone`);
  return doc as Record<string, unknown>;
}

const noop = { type: 'noop', payload: {} };

describe('an acknowledged cancel is final (defects 1 and 2)', () => {
  it('when the worker dies after a cancel was acknowledged, the reclaim ends the job cancelled and it is never leased again', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => enqueue(noop)));
    const leased = await worker.lease({ limit: 20 });
    expect(leased).toHaveLength(20);
    for (const id of ids) {
      const cancel = await post(`/jobs/${id}/cancel`, {});
      expect(cancel).toEqual({ status: 200, body: { jobId: id, status: 'leased' } });
    }
    // The worker vanished: its leases expire, and racing lease calls reclaim them.
    clock.advance(31 * SECOND);
    const rounds = await Promise.all(Array.from({ length: 6 }, (_, i) => new HttpWorker(server.baseUrl, tokenFor('worker'), `next-worker-${i}`).lease({ limit: 20 })));
    expect(rounds.flat()).toEqual([]);
    for (const id of ids) {
      const doc = await jobDoc(id);
      expect(doc).toMatchObject({ status: 'cancelled', attempt: 1, leaseId: null, lastError: { code: 'cancelled' } });
      expect((doc.attempts as { outcome: string }[]).map((a) => a.outcome)).toEqual(['cancelled']);
    }
    expect(await worker.lease({ limit: 20 })).toEqual([]);
  });

  it('a retryable fail racing a cancel never writes queued over the cancel, and the cancel never answers 409', async () => {
    const outcomes: { cancel: number; status: unknown; fail: number }[] = [];
    const bothOrders = (): boolean => outcomes.some((o) => o.status === 'leased') && outcomes.some((o) => o.status === 'cancelled');
    // At least 60 rounds, and more (up to 300) until both orders of the race have happened: on a
    // loaded machine one side can win many rounds in a row.
    for (let round = 0; round < 300 && (round < 60 || !bothOrders()); round += 1) {
      const id = await enqueue(noop);
      const [job] = await worker.lease({ limit: 1 });
      expect(job?.jobId).toBe(id);
      // Which request leaves first alternates, so both orders of the race come up.
      const sendFail = () => worker.report(id, 'fail', { leaseId: job!.leaseId, error: { message: 'transient', retryable: true } });
      const sendCancel = () => post(`/jobs/${id}/cancel`, {});
      const [failed, cancelled] =
        round % 2 === 0 ? await Promise.all([sendFail(), sendCancel()]) : await Promise.all([sendCancel(), sendFail()]).then(([c, f]) => [f, c] as const);
      outcomes.push({ cancel: cancelled.status, status: cancelled.body.status, fail: failed.status });
      expect(cancelled.status).toBe(200);
      expect(failed.status).toBe(200);
      // Acknowledged either way (cancelled at once, or flagged while leased): the job ends cancelled.
      expect((await jobDoc(id)).status).toBe('cancelled');
      // The retry was due at once (advance past any backoff): nothing may lease it again.
      clock.advance(3_600 * SECOND);
      expect(await worker.lease({ limit: 5 })).toEqual([]);
    }
    // Both orders happened, so both sides of the race were exercised.
    expect(outcomes.some((o) => o.status === 'leased')).toBe(true);
    expect(outcomes.some((o) => o.status === 'cancelled')).toBe(true);
  });

  it('a cancel racing the reclaim of its job either cancels it or flags it, and the job ends cancelled', async () => {
    for (let round = 0; round < 30; round += 1) {
      const id = await enqueue(noop);
      await worker.lease({ limit: 1 });
      clock.advance(31 * SECOND);
      const other = new HttpWorker(server.baseUrl, tokenFor('worker'), 'reclaiming-worker');
      const [cancel, leased] = await Promise.all([post(`/jobs/${id}/cancel`, {}), other.lease({ limit: 1 })]);
      expect(cancel.status).toBe(200);
      if (leased.length === 1) {
        // The reclaim and a new lease came first: the cancel flagged the new lease; its fail ends it cancelled.
        expect(cancel.body.status).toBe('leased');
        const failed = await other.report(id, 'fail', { leaseId: leased[0]!.leaseId, error: { message: 'stopped', retryable: true } });
        expect(failed.body).toMatchObject({ status: 'cancelled' });
      }
      expect((await jobDoc(id)).status).toBe('cancelled');
    }
  });

  it('a point of no return is recorded only while no cancel is requested, and a cancel is refused after it', async () => {
    const id = await enqueue(noop);
    const [job] = await worker.lease({ limit: 1 });
    const committed = await worker.report(id, 'heartbeat', { leaseId: job!.leaseId, irreversible: true });
    expect(committed.body).toMatchObject({ cancelRequested: false });
    expect((await jobDoc(id)).irreversibleAt).toBeInstanceOf(Date);
    expect(await post(`/jobs/${id}/cancel`, {})).toMatchObject({ status: 409, body: { error: { code: 'invalid_state' } } });
    expect((await jobDoc(id)).cancelRequested).toBe(false);

    const other = await enqueue(noop);
    const [second] = await worker.lease({ limit: 1 });
    expect((await post(`/jobs/${other}/cancel`, {})).body.status).toBe('leased');
    const refused = await worker.report(other, 'heartbeat', { leaseId: second!.leaseId, irreversible: true });
    expect(refused.body).toMatchObject({ cancelRequested: true });
    const doc = await jobDoc(other);
    expect(doc.irreversibleAt).toBeNull();
    expect(doc.cancelRequestedAt).toBeInstanceOf(Date);
  });

  it('racing cancels against points of no return: exactly one side wins each time, never both', async () => {
    for (let round = 0; round < 40; round += 1) {
      const id = await enqueue(noop);
      const [job] = await worker.lease({ limit: 1 });
      const [beat, cancel] = await Promise.all([worker.report(id, 'heartbeat', { leaseId: job!.leaseId, irreversible: true }), post(`/jobs/${id}/cancel`, {})]);
      const doc = await jobDoc(id);
      const cancelWon = cancel.status === 200;
      expect(cancelWon).toBe((beat.body as { cancelRequested: boolean }).cancelRequested);
      expect(doc.cancelRequested).toBe(cancelWon);
      expect(doc.irreversibleAt === null).toBe(cancelWon);
      if (!cancelWon) expect(cancel.body).toMatchObject({ error: { code: 'invalid_state' } });
    }
  });
});

describe('a concurrency limit holds while reclaims race heartbeats (defect 3)', () => {
  it('a reclaim frees only the slots of leases it took back; a heartbeat that won keeps its lease', async () => {
    const holder = new HttpWorker(server.baseUrl, tokenFor('worker'), 'payout-holder');
    for (let round = 0; round < 8; round += 1) {
      await db.connection.collection('jobs').deleteMany({});
      await db.connection.collection('job_slots').deleteMany({});
      // Many expired leases of another type, found before and after the payouts, make the reclaim
      // pass slow and put the payouts in its middle: the heartbeats land while it runs.
      const stale = (count: number): Promise<unknown> => {
        const at = clock.now();
        return db.connection.collection('jobs').insertMany(
          Array.from({ length: count }, () => ({ ...jobDocument({ status: 'leased', createdAt: at, type: 'noop' }), leaseExpiresAt: new Date(at.getTime() + 1_000) })) as never[],
        );
      };
      await stale(190);
      await Promise.all(Array.from({ length: 10 }, () => enqueue({ type: 'payout.execute', payload: payoutPayload() })));
      const held = await holder.lease({ limit: 10, type: 'payout.execute' });
      expect(held).toHaveLength(5);
      await stale(100);
      clock.advance(61 * SECOND);
      const rival = new HttpWorker(server.baseUrl, tokenFor('worker'), 'payout-rival');
      // The heartbeats and the reclaim pass start a few ms apart (a different offset each round), so
      // that some heartbeats land while the pass runs: after it read the expired leases, before it
      // took them back.
      const offsetMs = (round % 6) - 4;
      const after = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
      const [rivalJobs, ...beats] = await Promise.all([
        after(-offsetMs).then(() => rival.lease({ limit: 10, type: 'payout.execute' })),
        ...held.map((job) => after(offsetMs).then(() => holder.report(job.jobId, 'heartbeat', { leaseId: job.leaseId }))),
      ]);
      const live = await db.connection.collection('jobs').countDocuments({ type: 'payout.execute', status: 'leased' });
      expect(live).toBeLessThanOrEqual(5);
      const kept = held.filter((_, i) => (beats[i] as { status: number }).status === 200);
      expect(kept.length + rivalJobs.length).toBeLessThanOrEqual(5);
      // Every lease the holder kept is still its own: its next heartbeat is accepted.
      for (const job of kept) {
        const doc = await jobDoc(job.jobId);
        expect(doc).toMatchObject({ status: 'leased', leaseId: job.leaseId });
        expect((await holder.report(job.jobId, 'heartbeat', { leaseId: job.leaseId })).status).toBe(200);
      }
      // And no two live leases share a slot.
      const slots = await db.connection.collection('jobs').distinct('slotId', { type: 'payout.execute', status: 'leased' });
      expect(slots).toHaveLength(live);
    }
  });
});

describe('idempotency keys are scoped by the creating principal (defect 5)', () => {
  it("another service reusing a key gets a job of its own, never the first service's", async () => {
    const body = { ...noop, idempotencyKey: 'order-42' };
    const first = await post('/jobs', body, tokenFor('service', 'svc-a'));
    const again = await post('/jobs', body, tokenFor('service', 'svc-a'));
    const other = await post('/jobs', body, tokenFor('service', 'svc-b'));
    const otherTenant = await post('/jobs', body, tokenFor('service', 'svc-a', { tenant: 'acme' }));
    expect(first.status).toBe(201);
    expect(again).toMatchObject({ status: 200, body: { jobId: first.body.jobId } });
    expect(other.status).toBe(201);
    expect(other.body.jobId).not.toBe(first.body.jobId);
    expect(otherTenant.status).toBe(201);
    expect(new Set([first.body.jobId, other.body.jobId, otherTenant.body.jobId]).size).toBe(3);
  });

  it("a service that pre-enqueues a schedule's occurrence keys cannot make the schedule adopt its jobs", async () => {
    const admin = bearer('admin', 'ops');
    const created = await request(server.baseUrl)
      .post('/admin/schedules')
      .set(admin)
      .send({ name: 'nightly-noop', type: 'noop', payload: {}, cron: '0 3 * * *', timeZone: 'UTC' });
    expect(created.status).toBe(201);
    const due = new Date(created.body.nextRunAt as string);
    // The attacker parks jobs under the occurrence's key, far in the future.
    const parked = await post('/jobs', { type: 'noop', payload: { sleepMs: 1 }, idempotencyKey: `schedule:nightly-noop:${due.toISOString()}`, scheduleAt: '2099-01-01T00:00:00Z' });
    expect(parked.status).toBe(201);
    clock.advance(due.getTime() - clock.now().getTime());
    const report = await services.scheduler!.tick();
    expect(report.fired).toEqual([`nightly-noop@${due.toISOString()}`]);
    const fired = await db.connection.collection('jobs').find({ createdBy: 'schedule:nightly-noop' }).toArray();
    expect(fired).toHaveLength(1);
    expect(fired[0]!._id).not.toBe(parked.body.jobId);
    expect(fired[0]!.payload).toEqual({});
    await request(server.baseUrl).delete('/admin/schedules/nightly-noop').set(admin);
  });
});

describe('ownership is (sub, role, tenant) and schedule: subjects are reserved (defect 10)', () => {
  it("a user token with a service's sub neither reads nor cancels that service's jobs", async () => {
    const id = await enqueue(noop, tokenFor('service', 'svc-owner'));
    const impostor = tokenFor('user', 'svc-owner');
    const read = await fetch(`${server.baseUrl}/jobs/${id}`, { headers: { Authorization: `Bearer ${impostor}` } });
    expect(read.status).toBe(403);
    expect(await post(`/jobs/${id}/cancel`, {}, impostor)).toMatchObject({ status: 403, body: { error: { code: 'access_denied' } } });
    const owner = await fetch(`${server.baseUrl}/jobs/${id}`, { headers: { Authorization: `Bearer ${tokenFor('service', 'svc-owner')}` } });
    expect(owner.status).toBe(200);
    expect((await jobDoc(id)).status).toBe('queued');
  });

  it('a token whose sub starts with schedule: is refused', async () => {
    const forged = tokenFor('service', 'schedule:nightly-noop');
    const res = await post('/jobs', noop, forged);
    expect(res).toMatchObject({ status: 401, body: { error: { code: 'unauthenticated' } } });
  });
});

describe('long-polls wake no more waiters than there is work they can take (defect 6)', () => {
  let watched: Connection;
  let watchedServices: ApiServices;
  let watchedServer: Awaited<ReturnType<typeof listen>>;
  let finds = 0;

  beforeAll(async () => {
    // A second API instance on a connection whose commands are counted on the wire.
    watched = await connectDatabase({ uri: testDatabaseUri(), dbName: db.dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary', monitorCommands: true });
    watched.getClient().on('commandStarted', (event) => {
      if ((event.commandName === 'find' || event.commandName === 'count') && event.command[event.commandName] === 'jobs') finds += 1;
    });
    const p = params(watched, { clock: { now: () => new Date() }, reclaimIntervalMs: 60_000, leasePollIntervalMs: 200 });
    watchedServices = wireServices(p);
    watchedServer = await listen(createApp(wireApi(p, watchedServices)));
  });
  afterAll(async () => {
    watchedServices.jobs.close();
    await watchedServer.close();
    await watched.close();
  });

  function longPoll(params: { token: string; type?: string; wait: number; i: number }): Promise<{ jobs: { jobId: string }[] }> {
    const query = new URLSearchParams({ wait: String(params.wait), limit: '1', ...(params.type ? { type: params.type } : {}) });
    return fetch(`${watchedServer.baseUrl}/jobs/lease?${query.toString()}`, {
      headers: { Authorization: `Bearer ${params.token}`, 'X-Worker-Id': `herd-worker-${params.i}` },
    }).then((res) => res.json() as Promise<{ jobs: { jobId: string }[] }>);
  }
  const untilWaiting = (count: number) => waitFor(() => (watchedServices.jobs.waitingLeaseCalls >= count ? true : undefined), { intervalMs: 10, timeoutMs: 20_000 });

  it('one enqueue with 200 waiting lease calls costs a few queries, not one per waiter', async () => {
    const token = tokenFor('worker');
    const polls = Array.from({ length: 200 }, (_, i) => longPoll({ token, type: 'noop', wait: 3, i }));
    await untilWaiting(200);
    finds = 0;
    const enqueued = await request(watchedServer.baseUrl).post('/jobs').set(bearer('service', 'svc-herd')).send(noop);
    expect(enqueued.status).toBe(201);
    await waitFor(() => (watchedServices.jobs.waitingLeaseCalls === 199 ? true : undefined), { intervalMs: 5 });
    const afterWake = finds;
    const results = await Promise.all(polls);
    expect(results.filter((r) => r.jobs.length === 1)).toHaveLength(1);
    // Before the fix every waiter ran its own lease query (200+).
    expect(afterWake).toBeLessThan(10);
  });

  it("idle waiters of one tenant are not woken by another tenant's queued job", async () => {
    const tenantB = tokenFor('service', 'svc-b', { tenant: 'tenant-b' });
    const queued = await request(watchedServer.baseUrl).post('/jobs').set({ Authorization: `Bearer ${tenantB}` }).send(noop);
    expect(queued.status).toBe(201);
    const tokenA = tokenFor('worker', 'worker-a', { tenant: 'tenant-a' });
    const polls = Array.from({ length: 100 }, (_, i) => longPoll({ token: tokenA, wait: 2, i }));
    await untilWaiting(100);
    finds = 0;
    const results = await Promise.all(polls);
    expect(results.every((r) => r.jobs.length === 0)).toBe(true);
    // About 2 s of polling at 200 ms: one shared probe per interval (about 10), never 100 per interval.
    expect(finds).toBeLessThan(40);
  });

  it('payout waiters are not woken while every payout slot is held', async () => {
    await Promise.all(Array.from({ length: 8 }, () => request(watchedServer.baseUrl).post('/jobs').set(bearer('service', 'svc-pay')).send({ type: 'payout.execute', payload: payoutPayload() })));
    const holder = new HttpWorker(watchedServer.baseUrl, tokenFor('worker'), 'slot-holder');
    expect(await holder.lease({ limit: 8, type: 'payout.execute' })).toHaveLength(5);
    const token = tokenFor('worker');
    const polls = Array.from({ length: 50 }, (_, i) => longPoll({ token, type: 'payout.execute', wait: 2, i }));
    await untilWaiting(50);
    finds = 0;
    const results = await Promise.all(polls);
    expect(results.every((r) => r.jobs.length === 0)).toBe(true);
    expect(finds).toBeLessThan(40);
  });
});
