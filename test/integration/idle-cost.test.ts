import type { Connection } from 'mongoose';

import { createApp } from '../../src/app';
import { connectDatabase, DRIVER_MONITORING_COMMANDS } from '../../src/storage/connection';
import { wireApi, wireServices, type ApiServices } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * What idle workers cost the database, counted on the wire (every command but the driver's own
 * monitoring). The idle target itself (< 1 request/s for an API and 8 workers) is measured by the
 * bench (`npm run bench`, scenario idle); this checks the mechanism.
 */
const db = useTestDatabase();
let connection: Connection;
let services: ApiServices;
let server: Awaited<ReturnType<typeof listen>>;
const commands: string[] = [];
/** Short, so the test sees several refresh intervals of the worker sightings. */
const WORKER_SEEN_INTERVAL_MS = 500;

beforeAll(async () => {
  connection = await connectDatabase({ uri: testDatabaseUri(), dbName: db.dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary', monitorCommands: true });
  connection.getClient().on('commandStarted', (event) => {
    if (!DRIVER_MONITORING_COMMANDS.has(event.commandName)) commands.push(`${event.commandName} ${String(event.command[event.commandName])}`);
  });
  const params = { connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, workerSeenIntervalMs: WORKER_SEEN_INTERVAL_MS };
  services = wireServices(params);
  server = await listen(createApp(wireApi(params, services)));
});
afterAll(async () => {
  services.jobs.close();
  await server.close();
  await connection.close();
});

it('renewed long-polls of idle workers cost no query each: the shared poll asks for all of them', async () => {
  const stop = new AbortController();
  let renewals = 0;
  const workers = Array.from({ length: 8 }, async (_, i) => {
    while (!stop.signal.aborted) {
      await fetch(`${server.baseUrl}/jobs/lease?limit=4&wait=1`, {
        headers: { Authorization: `Bearer ${tokenFor('worker')}`, 'X-Worker-Id': `idle-worker-${i}` },
        signal: stop.signal,
      }).then((res) => res.json(), () => undefined);
      renewals += 1;
    }
  });
  await waitFor(() => (services.jobs.waitingLeaseCalls === 8 ? true : undefined), { intervalMs: 20 });
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  commands.length = 0;
  renewals = 0;
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const jobQueries = commands.filter((c) => c.endsWith(' jobs') || c.endsWith(' job_slots'));
  stop.abort();
  await Promise.all(workers);
  // About 24 renewed long-polls in 3 s; before, each ran its own lease query (a query or more each).
  expect(renewals).toBeGreaterThanOrEqual(12);
  expect(jobQueries.length).toBeLessThan(renewals / 2);
});

it('idle workers waiting on a type nothing holds back cost no reads of the run-time type settings', async () => {
  services.types!.start();
  const stop = new AbortController();
  const workers = Array.from({ length: 8 }, async (_, i) => {
    while (!stop.signal.aborted) {
      await fetch(`${server.baseUrl}/jobs/lease?limit=4&wait=1&type=noop`, {
        headers: { Authorization: `Bearer ${tokenFor('worker')}`, 'X-Worker-Id': `idle-settings-worker-${i}` },
        signal: stop.signal,
      }).then((res) => res.json(), () => undefined);
    }
  });
  try {
    await waitFor(() => (services.jobs.waitingLeaseCalls === 8 ? true : undefined), { intervalMs: 20 });
    // Past the first lease calls (one read for all of them, as their settings were older than the interval).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    commands.length = 0;
    // Three refresh intervals (TYPE_SETTINGS_REFRESH_MS defaults to 1 s): a timer would have read three times.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(services.jobs.waitsOnSettings).toBe(false);
    expect(commands.filter((c) => c.endsWith(' job_types'))).toEqual([]);
  } finally {
    stop.abort();
    await Promise.all(workers);
    await services.types!.stop();
  }
});

it("idle workers' sightings (GET /admin/workers) are refreshed in one write per interval, however many workers", async () => {
  const stop = new AbortController();
  let renewals = 0;
  const workers = Array.from({ length: 8 }, async (_, i) => {
    while (!stop.signal.aborted) {
      await fetch(`${server.baseUrl}/jobs/lease?limit=4&wait=1`, {
        headers: { Authorization: `Bearer ${tokenFor('worker')}`, 'X-Worker-Id': `idle-seen-worker-${i}` },
        signal: stop.signal,
      }).then((res) => res.json(), () => undefined);
      renewals += 1;
    }
  });
  try {
    await waitFor(() => (services.jobs.waitingLeaseCalls === 8 ? true : undefined), { intervalMs: 20 });
    // Past each worker's first sighting, which is written at once.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    commands.length = 0;
    renewals = 0;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const writes = commands.filter((c) => c === 'update workers');
    // About 24 renewals, each worker due for a refresh at every one of them (1 s apart, interval 0.5 s):
    // one write each before; now one per interval (about 6 in 3 s).
    expect(renewals).toBeGreaterThanOrEqual(12);
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.length).toBeLessThanOrEqual(3_000 / WORKER_SEEN_INTERVAL_MS + 1);
    expect(writes.length).toBeLessThan(renewals / 2);
  } finally {
    stop.abort();
    await Promise.all(workers);
  }
});
