import type { Connection } from 'mongoose';

import { startJavaServer } from '../../src/embedded-db/java-server';
import type { EmbeddedDatabase } from '../../src/embedded-db/types';
import { connectDatabase } from '../../src/storage/connection';
import { ensureIndexes } from '../../src/storage/indexes';
import { JobRepository } from '../../src/storage/job-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { newJob } from '../helpers/storage';

/**
 * The contract of JobRepository's change feed (openWorkFeed) and its probe. Change streams need an
 * oplog, which the suite's database does not keep, so the feed's reports are checked on a test
 * server of this file's own, started with one; the suite's database shows the feed without it.
 */
const suiteDb = useTestDatabase();
let server: EmbeddedDatabase;
let connection: Connection;
let jobs: JobRepository;
const clock = new TestClock();

beforeAll(async () => {
  server = await startJavaServer({ port: 0, oplog: true });
  connection = await connectDatabase({ uri: server.uri, dbName: 'work_feed', timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary' });
  await ensureIndexes(connection);
  jobs = new JobRepository(connection);
});
afterAll(async () => {
  await connection?.close();
  await server?.stop();
});

type Work = { jobId: string; type: string | null; tenant: string | null };

function openFeed(repository: JobRepository): { work: Work[]; states: boolean[]; close(): Promise<void> } {
  const work: Work[] = [];
  const states: boolean[] = [];
  const feed = repository.openWorkFeed({ onWork: (w) => work.push(w), onState: (live) => states.push(live), maxAwaitMs: 200 });
  return { work, states, close: () => feed.close() };
}

it('says change streams do not wait on the test server (standalone), so `auto` leaves the feed off', async () => {
  expect(await jobs.supportsAwaitedChangeStreams()).toBe(false);
  expect(await new JobRepository(suiteDb.connection).supportsAwaitedChangeStreams()).toBe(false);
});

it('reports queued jobs inserted by any writer, with their type and tenant; not jobs inserted waiting', async () => {
  const feed = openFeed(jobs);
  try {
    await waitFor(() => (feed.states.includes(true) ? true : undefined), { what: 'the feed to be live' });
    const now = clock.now();
    // Another connection writes, as another API instance would.
    const other = await connectDatabase({ uri: server.uri, dbName: 'work_feed', timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary' });
    try {
      const writer = new JobRepository(other);
      const { job: first } = await writer.insert(newJob({ now, type: 'type.a', tenant: 'acme' }));
      await writer.insert(newJob({ now, status: 'waiting', dependsOn: ['job_p'], pendingParents: ['job_p'] }));
      const batch = await writer.insertMany([newJob({ now, status: 'waiting', dependsOn: ['job_p'], pendingParents: ['job_p'] }), newJob({ now, type: 'type.b' })]);
      const last = batch[1]!.job;

      // The feed delivers in write order: once the last insert is reported, every earlier one was seen.
      await waitFor(() => (feed.work.some((w) => w.jobId === last.jobId) ? true : undefined), { what: 'the last insert to be reported' });
      expect(feed.work).toEqual([
        { jobId: first.jobId, type: 'type.a', tenant: 'acme' },
        { jobId: last.jobId, type: 'type.b', tenant: null },
      ]);
      // Updates back to queued (a retry, a released child) are reported too on MongoDB. The test
      // server cannot show it: it emits no change event for findAndModify, which those writes use,
      // and sends the update document as an update event's documentKey.
    } finally {
      await other.close();
    }
  } finally {
    await feed.close();
  }
  expect(feed.states.at(-1)).toBe(false);
});

it('on a database without change streams, never reports itself live, and closes', async () => {
  const feed = openFeed(new JobRepository(suiteDb.connection));
  // The first attempt fails at once; by the first reopen it has said so.
  await waitFor(() => (feed.states.includes(false) ? true : undefined), { what: 'the feed to report its state' });
  await feed.close();
  expect(feed.states).not.toContain(true);
  expect(feed.work).toEqual([]);
});
