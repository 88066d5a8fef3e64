import type { Connection } from 'mongoose';

import { createApp } from '../../src/app';
import { connectDatabase } from '../../src/storage/connection';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { HttpWorker, listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/** GET /admin/workers: who is working, kept cheap (one upsert per worker per interval, counted on the wire). */
const db = useTestDatabase();
const clock = new TestClock(Date.parse('2030-01-01T00:00:00Z'));
let connection: Connection;
let services: ApiServices;
let server: Awaited<ReturnType<typeof listen>>;
const workerWrites: string[] = [];
const ADMIN = tokenFor('admin', 'ops');

beforeAll(async () => {
  connection = await connectDatabase({ uri: testDatabaseUri(), dbName: db.dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary', monitorCommands: true });
  connection.getClient().on('commandStarted', (event) => {
    if (event.commandName === 'update' && event.command.update === 'workers') workerWrites.push(JSON.stringify(event.command.updates));
  });
  const params: ApiWiringParams = { connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0, workerSeenIntervalMs: 10_000 };
  services = wireServices(params);
  server = await listen(createApp(wireApi(params, services)));
});
afterAll(async () => {
  services.jobs.close();
  await server.close();
  await connection.close();
});

async function enqueue(type: string, payload: unknown, token = tokenFor('service', 'svc')): Promise<string> {
  const res = await fetch(`${server.baseUrl}/jobs`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ type, payload }) });
  if (res.status !== 201) throw new Error(`enqueue answered ${res.status}`);
  return ((await res.json()) as { jobId: string }).jobId;
}

async function listWorkers(token = ADMIN): Promise<{ status: number; body: { data: Record<string, unknown>[] } }> {
  const res = await fetch(`${server.baseUrl}/admin/workers`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as { data: Record<string, unknown>[] } };
}

it('lists each worker seen in the last five minutes with the types it asks for, the jobs it holds and when it was last seen', async () => {
  const noopJob = await enqueue('noop', {});
  const thumb = await enqueue('thumbnail.create', { assetId: 'asset_0123456789abcdef01234567', versionNumber: 1 });
  const a = new HttpWorker(server.baseUrl, tokenFor('worker'), 'worker-alpha');
  const b = new HttpWorker(server.baseUrl, tokenFor('worker'), 'worker-beta');
  const [leasedA] = await a.lease({ limit: 1, type: 'noop' });
  expect(leasedA?.jobId).toBe(noopJob);
  const [leasedB] = await b.lease({ limit: 5 });
  expect(leasedB?.jobId).toBe(thumb);
  clock.advance(15_000);
  expect((await b.report(thumb, 'heartbeat', { leaseId: leasedB!.leaseId, progress: 40 })).status).toBe(200);

  await waitFor(async () => ((await listWorkers()).body.data.length === 2 ? true : undefined), { what: 'both sightings' });
  const { body } = await listWorkers();
  expect(body.data).toEqual([
    {
      workerId: 'worker-beta',
      // It leased without a `type`: every type.
      types: null,
      tenant: null,
      lastSeenAt: clock.now().toISOString(),
      lastCall: 'heartbeat',
      jobs: [{ jobId: thumb, type: 'thumbnail.create', attempt: 1, progress: 40, leaseExpiresAt: expect.any(String) }],
    },
    {
      workerId: 'worker-alpha',
      types: ['noop'],
      tenant: null,
      lastSeenAt: new Date(clock.now().getTime() - 15_000).toISOString(),
      lastCall: 'lease',
      jobs: [{ jobId: noopJob, type: 'noop', attempt: 1, progress: 0, leaseExpiresAt: expect.any(String) }],
    },
  ]);

  // Once they are done and quiet for five minutes, they drop out of the list.
  await a.report(noopJob, 'succeed', { leaseId: leasedA!.leaseId });
  clock.advance(5 * 60_000 + 1);
  await waitFor(async () => ((await listWorkers()).body.data.length === 0 ? true : undefined), { what: 'the quiet workers to drop out' });
});

it('writes a sighting at most once per worker per interval, however many lease calls it makes', async () => {
  const w = new HttpWorker(server.baseUrl, tokenFor('worker'), 'worker-busy');
  clock.advance(60_000);
  workerWrites.length = 0;
  for (let i = 0; i < 25; i += 1) await w.lease({ limit: 1, type: 'payout.execute' });
  await waitFor(() => (workerWrites.length >= 1 ? true : undefined), { what: 'the first sighting' });
  expect(workerWrites).toHaveLength(1);
  // Other types: written at once (the list shows what it asks for now).
  await w.lease({ limit: 1, type: 'noop' });
  await waitFor(() => (workerWrites.length === 2 ? true : undefined), { what: 'the changed types' });
  clock.advance(10_000);
  await w.lease({ limit: 1, type: 'noop' });
  // The next interval's refresh waits for the interval's bulk write (a real-time timer of 10 s); a
  // listing writes what is pending first.
  expect(workerWrites).toHaveLength(2);
  const listed = (await listWorkers()).body.data.find((d) => d.workerId === 'worker-busy');
  expect(workerWrites).toHaveLength(3);
  expect(listed).toMatchObject({ types: ['noop'], lastCall: 'lease' });
});

it('a tenant admin sees its tenant’s workers only; other roles get 403', async () => {
  clock.advance(10 * 60_000);
  const acme = new HttpWorker(server.baseUrl, tokenFor('worker', 'acme-worker', { tenant: 'acme' }), 'worker-acme');
  const globex = new HttpWorker(server.baseUrl, tokenFor('worker', 'globex-worker', { tenant: 'globex' }), 'worker-globex');
  await acme.lease({ limit: 1 });
  await globex.lease({ limit: 1 });
  const acmeAdmin = tokenFor('admin', 'acme-ops', { tenant: 'acme' });
  await waitFor(async () => ((await listWorkers(acmeAdmin)).body.data.length === 1 ? true : undefined), { what: 'the acme worker' });
  expect((await listWorkers(acmeAdmin)).body.data.map((d) => d.workerId)).toEqual(['worker-acme']);
  await waitFor(async () => ((await listWorkers()).body.data.length === 2 ? true : undefined), { what: 'both for the admin' });
  for (const role of ['service', 'user', 'worker'] as const) expect((await listWorkers(tokenFor(role))).status).toBe(403);
});
