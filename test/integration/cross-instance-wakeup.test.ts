import type { Connection } from 'mongoose';

import { createApp } from '../../src/app';
import { startJavaServer } from '../../src/embedded-db/java-server';
import type { EmbeddedDatabase } from '../../src/embedded-db/types';
import { connectDatabase } from '../../src/storage/connection';
import { ensureIndexes } from '../../src/storage/indexes';
import { wireApi, wireServices, type ApiServices } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { waitFor } from '../helpers/poll';
import { listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * Two API instances on one database: a job enqueued through one wakes a long-poll waiting on the
 * other at once, through the change feed, though the other's shared poll is set to run only once a
 * minute. The suite's database has no oplog, so this file starts its own test server with one.
 */
let database: EmbeddedDatabase;
const instances: { connection: Connection; services: ApiServices; server: Awaited<ReturnType<typeof listen>> }[] = [];

async function startInstance(): Promise<(typeof instances)[number]> {
  const connection = await connectDatabase({ uri: database.uri, dbName: 'wakeup', timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary' });
  await ensureIndexes(connection);
  const params = { connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, leasePollIntervalMs: 60_000, leasePollMaxIntervalMs: 60_000 };
  const services = wireServices(params);
  const server = await listen(createApp(wireApi(params, services)));
  const instance = { connection, services, server };
  instances.push(instance);
  return instance;
}

beforeAll(async () => {
  database = await startJavaServer({ port: 0, oplog: true });
});
afterAll(async () => {
  for (const { services, server, connection } of instances) {
    services.jobs.close();
    await server.close();
    await connection.close();
  }
  await database.stop();
});

function longPoll(baseUrl: string, waitSeconds: number): Promise<{ jobs: { jobId: string }[]; ms: number }> {
  const started = Date.now();
  return fetch(`${baseUrl}/jobs/lease?type=noop&wait=${waitSeconds}`, { headers: { Authorization: `Bearer ${tokenFor('worker')}`, 'X-Worker-Id': 'wakeup-worker' } })
    .then((res) => res.json() as Promise<{ jobs: { jobId: string }[] }>)
    .then((body) => ({ jobs: body.jobs, ms: Date.now() - started }));
}

async function enqueue(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/jobs`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${tokenFor('service', 'svc-wakeup')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'noop', payload: {} }),
  });
  return ((await res.json()) as { jobId: string }).jobId;
}

describe('cross-instance wake-up', () => {
  it('without a feed, a long-poll on B does not learn of a job enqueued on A before its (minute-long) poll', async () => {
    const a = await startInstance();
    const b = await startInstance();
    const poll = longPoll(b.server.baseUrl, 2);
    await waitFor(() => (b.services.jobs.waitingLeaseCalls === 1 ? true : undefined), { intervalMs: 10 });
    const jobId = await enqueue(a.server.baseUrl);
    expect((await poll).jobs).toEqual([]);
    // Taken, so the next test starts from an empty queue.
    const taken = await longPoll(a.server.baseUrl, 0);
    expect(taken.jobs.map((j) => j.jobId)).toEqual([jobId]);
  });

  it('with the change feed, a job enqueued on A wakes the long-poll waiting on B within a moment', async () => {
    const a = instances[0]!;
    const b = instances[1]!;
    expect(await b.services.jobs.startWorkFeed('on')).toBe(true);
    for (let round = 0; round < 3; round += 1) {
      const poll = longPoll(b.server.baseUrl, 20);
      await waitFor(() => (b.services.jobs.waitingLeaseCalls === 1 ? true : undefined), { intervalMs: 10 });
      const enqueuedAt = Date.now();
      const jobId = await enqueue(a.server.baseUrl);
      const answer = await poll;
      expect(answer.jobs.map((j) => j.jobId)).toEqual([jobId]);
      expect(Date.now() - enqueuedAt).toBeLessThan(1_500);
    }
  });
});
