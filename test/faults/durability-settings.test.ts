import { randomBytes } from 'node:crypto';

import type { Express } from 'express';
import type { Connection } from 'mongoose';
import mongoose from 'mongoose';
import request from 'supertest';

import { createApp } from '../../src/app';
import { createPayouts } from '../../src/payouts/create-payouts';
import { connectDatabase, operationBoundMs } from '../../src/storage/connection';
import { ensureIndexes } from '../../src/storage/indexes';
import { jobModel } from '../../src/storage/job-model';
import { wireApi } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { testDatabaseUri } from '../helpers/database';
import { bearer, TEST_JWT_SECRET } from '../helpers/tokens';

/**
 * DB_WRITE_CONCERN and DB_READ_PREFERENCE must reach the operations that change a job's state and
 * the reads that decide a lease, not just sit in the config. This watches the commands on the wire
 * (the driver's command monitoring) while a whole job lifecycle runs through the HTTP API.
 */

interface SeenCommand {
  name: string;
  collection: string;
  writeConcern: unknown;
  readPreference: unknown;
  maxTimeMS: unknown;
}

const WRITE_COMMANDS = new Set(['insert', 'update', 'delete', 'findAndModify']);
// Collections whose writes change job state or money: jobs, concurrency slots, escrows and transfers.
const STATE_COLLECTIONS = new Set(['jobs', 'job_slots', 'escrows', 'sandbox_payout_transfers']);

const dbName = `durability_${randomBytes(4).toString('hex')}`;
let connection: Connection;
const seen: SeenCommand[] = [];
const clock = new TestClock();
let app: Express;

beforeAll(async () => {
  connection = await connectDatabase({
    uri: testDatabaseUri(),
    dbName,
    timeoutMs: 5_000,
    writeConcern: 'majority',
    readPreference: 'primary',
    monitorCommands: true,
  });
  await ensureIndexes(connection);
  connection.getClient().on('commandStarted', (event) => {
    const command = event.command as Record<string, unknown>;
    seen.push({
      name: event.commandName,
      collection: String(command[event.commandName]),
      writeConcern: command.writeConcern,
      readPreference: command.$readPreference,
      maxTimeMS: command.maxTimeMS,
    });
  });
  app = createApp(wireApi({ connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0 }));
});

afterAll(async () => {
  await connection.dropDatabase().catch(() => undefined);
  await connection.close();
});

const worker = () => ({ ...bearer('worker', 'durability-worker'), 'X-Worker-Id': 'durability-worker-1' });

async function lease(): Promise<{ jobId: string; leaseId: string; type: string }[]> {
  const res = await request(app).get('/jobs/lease?limit=10').set(worker());
  expect(res.status).toBe(200);
  return res.body.jobs as { jobId: string; leaseId: string; type: string }[];
}

describe('durability settings on the wire', () => {
  it('every write that changes job state or money carries the configured write concern (majority, bounded wait)', async () => {
    const service = bearer('service', 'durability-service');
    const escrow = await request(app).post('/escrows').set(bearer('admin')).send({ batchId: 'durable', amount: 10, currency: 'EUR', payee: 'acct_durable' });
    const payout = await request(app).post('/jobs').set(service).send({ type: 'payout.execute', payload: { batchId: 'durable', escrowId: escrow.body.escrowId } });
    const noops = await Promise.all([1, 2, 3].map(() => request(app).post('/jobs').set(service).send({ type: 'noop', payload: {} })));
    expect([payout.status, ...noops.map((r) => r.status)]).toEqual([201, 201, 201, 201]);

    // Lease all four (payout.execute takes a concurrency slot), heartbeat, succeed, fail, let one expire.
    const leased = await lease();
    expect(leased).toHaveLength(4);
    const [first, second, third, fourth] = leased as [(typeof leased)[0], (typeof leased)[0], (typeof leased)[0], (typeof leased)[0]];
    expect((await request(app).post(`/jobs/${first.jobId}/heartbeat`).set(worker()).send({ leaseId: first.leaseId, progress: 50 })).status).toBe(200);
    expect((await request(app).post(`/jobs/${first.jobId}/succeed`).set(worker()).send({ leaseId: first.leaseId })).status).toBe(200);
    expect((await request(app).post(`/jobs/${second.jobId}/fail`).set(worker()).send({ leaseId: second.leaseId, error: { message: 'no', retryable: false } })).status).toBe(200);
    expect((await request(app).post(`/jobs/${third.jobId}/fail`).set(worker()).send({ leaseId: third.leaseId, error: { message: 'later' } })).status).toBe(200);
    clock.advance(3_600_000);
    // The fourth lease expired: this lease call reclaims it (and leases it and the retried one again).
    expect((await lease()).map((j) => j.jobId).sort()).toEqual([third.jobId, fourth.jobId].sort());
    expect((await request(app).post(`/admin/jobs/${second.jobId}/requeue`).set(bearer('admin'))).status).toBe(200);
    const queued = await request(app).post('/jobs').set(service).send({ type: 'noop', payload: {} });
    expect((await request(app).post(`/jobs/${queued.body.jobId}/cancel`).set(service)).status).toBe(200);
    // Money: the payout service on the same connection (transfer ledger insert, escrow held → paid).
    await createPayouts({ connection }).payouts.executePayout({ escrowId: escrow.body.escrowId as string, batchId: 'durable' });

    const writes = seen.filter((c) => WRITE_COMMANDS.has(c.name) && STATE_COLLECTIONS.has(c.collection));
    const kinds = new Set(writes.map((c) => `${c.name} ${c.collection}`));
    // The lifecycle above exercised each kind of state write: claim (update), report and reclaim
    // (findAndModify), enqueue (insert), slots, escrows and the transfer ledger.
    expect([...kinds].sort()).toEqual(
      expect.arrayContaining(['insert jobs', 'update jobs', 'findAndModify jobs', 'insert sandbox_payout_transfers', 'insert escrows', 'findAndModify escrows']),
    );
    expect([...kinds].some((k) => k.endsWith(' job_slots'))).toBe(true);
    // The wait is bounded either by wtimeout or, on the hot path's operations (bounded as a whole
    // with the driver's timeoutMS: operationBoundMs), by the maxTimeMS the driver sends in its place
    // (the read/write concern spec: no wtimeout under timeoutMS; the server applies maxTimeMS to the wait).
    const bound = operationBoundMs(connection);
    const bounded = (c: SeenCommand): boolean =>
      JSON.stringify(c.writeConcern) === JSON.stringify({ w: 'majority', wtimeout: 5_000 }) ||
      (JSON.stringify(c.writeConcern) === JSON.stringify({ w: 'majority' }) && typeof c.maxTimeMS === 'number' && c.maxTimeMS > 0 && c.maxTimeMS <= bound);
    expect(writes.filter((c) => !bounded(c))).toEqual([]);
    // Both kinds are on the wire: enqueue inserts and claims under the bound, the rest with wtimeout.
    expect(writes.some((c) => c.name === 'insert' && c.collection === 'jobs' && typeof c.maxTimeMS === 'number')).toBe(true);
    expect(writes.some((c) => c.maxTimeMS === undefined)).toBe(true);
  });

  it('reads that decide a lease go to the primary', async () => {
    // A standalone server gets no $readPreference on the wire for primary reads; what the driver
    // would send is the client's and the jobs collection's read preference.
    expect(connection.getClient().readPreference.mode).toBe('primary');
    expect(connection.db!.readPreference.mode).toBe('primary');
    expect(connection.db!.collection(jobModel(connection).collection.collectionName).readPreference?.mode).toBe('primary');
    const reads = seen.filter((c) => ['find', 'aggregate', 'count'].includes(c.name) && c.collection === 'jobs');
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.filter((c) => c.readPreference !== undefined && (c.readPreference as { mode?: string }).mode !== 'primary')).toEqual([]);
  });

  it('a numeric DB_WRITE_CONCERN reaches the wire as that many nodes', async () => {
    const other = await connectDatabase({ uri: testDatabaseUri(), dbName, timeoutMs: 2_000, writeConcern: 1, readPreference: 'primary', monitorCommands: true });
    try {
      const concerns: unknown[] = [];
      other.getClient().on('commandStarted', (event) => {
        if (event.commandName === 'insert') concerns.push((event.command as { writeConcern?: unknown }).writeConcern);
      });
      await other.collection('durability_probe').insertOne({ _id: new mongoose.Types.ObjectId() });
      expect(concerns).toEqual([{ w: 1, wtimeout: 2_000 }]);
    } finally {
      await other.close();
    }
  });
});
