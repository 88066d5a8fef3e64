import type { Connection } from 'mongoose';

import { createApp } from '../../src/app';
import { connectDatabase } from '../../src/storage/connection';
import { wireApi, wireServices } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * Concurrent enqueues share one insertMany (group commit): counted on the wire, each request still
 * gets its own answer, and none is acknowledged before its write.
 */
const db = useTestDatabase();
let connection: Connection;
let server: Awaited<ReturnType<typeof listen>>;
const writes = { insert: 0, documents: 0, largest: 0 };

beforeAll(async () => {
  connection = await connectDatabase({ uri: testDatabaseUri(), dbName: db.dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary', monitorCommands: true });
  connection.getClient().on('commandStarted', (event) => {
    if (event.commandName === 'insert' && event.command.insert === 'jobs') {
      const documents = (event.command.documents as unknown[]).length;
      writes.insert += 1;
      writes.documents += documents;
      writes.largest = Math.max(writes.largest, documents);
    }
  });
  const params = { connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000 };
  server = await listen(createApp(wireApi(params, wireServices(params))));
});
afterAll(async () => {
  await server.close();
  await connection.close();
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
  writes.insert = 0;
  writes.documents = 0;
  writes.largest = 0;
});

function enqueue(body: Record<string, unknown>, sub = 'svc-group'): Promise<{ status: number; body: { jobId?: string } }> {
  return fetch(`${server.baseUrl}/jobs`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${tokenFor('service', sub)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  }).then(async (res) => ({ status: res.status, body: (await res.json()) as { jobId?: string } }));
}

describe('group-committed enqueues', () => {
  it('a lone enqueue is one insert, written before it is answered', async () => {
    const res = await enqueue({ type: 'noop', payload: {} });
    expect(res.status).toBe(201);
    expect(writes).toEqual({ insert: 1, documents: 1, largest: 1 });
    expect(await db.connection.collection('jobs').countDocuments({ _id: res.body.jobId as never })).toBe(1);
  });

  it('200 concurrent enqueues share far fewer inserts, and each gets its own job', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => enqueue({ type: 'noop', payload: { sleepMs: i } })));
    expect(answers.every((a) => a.status === 201)).toBe(true);
    const ids = answers.map((a) => a.body.jobId);
    expect(new Set(ids).size).toBe(200);
    expect(writes.documents).toBe(200);
    // Grouped: inserts carry several jobs (how many depends on how fast requests arrive).
    expect(writes.insert).toBeLessThan(200);
    expect(writes.largest).toBeGreaterThan(1);
    const stored = await db.connection.collection('jobs').find({ _id: { $in: ids as never[] } }).toArray();
    expect(stored.map((d) => d.payload.sleepMs as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('a repeated idempotency key inside one group still gives one job, returned to every caller of that key', async () => {
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => enqueue({ type: 'noop', payload: {}, idempotencyKey: `order-${i % 3}` })),
    );
    const created = answers.filter((a) => a.status === 201);
    expect(created).toHaveLength(3);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(57);
    for (let k = 0; k < 3; k += 1) {
      const forKey = answers.filter((_, i) => i % 3 === k).map((a) => a.body.jobId);
      expect(new Set(forKey).size).toBe(1);
    }
    expect(await db.connection.collection('jobs').countDocuments({})).toBe(3);
  });
});
