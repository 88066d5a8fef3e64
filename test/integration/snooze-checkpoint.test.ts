import type { Express } from 'express';
import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, leaseJobs, payoutPayload, report } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

/** Snooze (the attempt does not count) and checkpoints (saved with heartbeats, handed to later leases). */
const db = useTestDatabase();
let clock: TestClock;
let app: Express;

beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
  await db.connection.collection('job_slots').deleteMany({});
  clock = new TestClock();
  app = buildTestApp(db, { clock, reclaimIntervalMs: 0 });
});

const job = (jobId: string) => request(app).get(`/jobs/${jobId}`).set(bearer('admin'));

describe('POST /jobs/:jobId/snooze', () => {
  it('puts the job back to queued for `seconds`: attempt as before the lease, history outcome snoozed, not leased early', async () => {
    const jobId = await enqueueJob(app, { type: 'noop', payload: {}, maxAttempts: 1 });
    const [leased] = await leaseJobs(app, { type: 'noop' });
    expect(leased!.attempt).toBe(1);
    const snoozed = await report(app, jobId, 'snooze', { leaseId: leased!.leaseId, seconds: 30 });
    expect(snoozed.status).toBe(200);
    expect(snoozed.body).toEqual({ jobId, status: 'queued', attempt: 0, nextRunAt: new Date(clock.now().getTime() + 30_000).toISOString() });
    const stored = await job(jobId);
    expect(stored.body).toMatchObject({ status: 'queued', attempt: 0, leaseId: null, workerId: 'worker-a' });
    expect(stored.body.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'snoozed', error: null, finishedAt: clock.now().toISOString() })]);

    clock.advance(29_999);
    expect(await leaseJobs(app, { type: 'noop' })).toEqual([]);
    clock.advance(1);
    const [again] = await leaseJobs(app, { type: 'noop' });
    // maxAttempts 1: the snoozed run did not count, so this is attempt 1 again, and a failure now dead-letters.
    expect(again).toMatchObject({ jobId, attempt: 1 });
    const failed = await report(app, jobId, 'fail', { leaseId: again!.leaseId, error: { message: 'no' } });
    expect(failed.body.status).toBe('dlq');
  });

  it('snoozing again and again never spends attempts', async () => {
    const jobId = await enqueueJob(app, { type: 'noop', payload: {}, maxAttempts: 2 });
    for (let i = 0; i < 5; i += 1) {
      const [leased] = await leaseJobs(app, { type: 'noop' });
      expect(leased).toMatchObject({ jobId, attempt: 1 });
      expect((await report(app, jobId, 'snooze', { leaseId: leased!.leaseId, seconds: 1 })).body.attempt).toBe(0);
      clock.advance(1_000);
    }
    expect((await job(jobId)).body.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(Array<string>(5).fill('snoozed'));
  });

  it('a cancel requested while it ran wins: the job ends cancelled', async () => {
    const jobId = await enqueueJob(app, { type: 'noop', payload: {} });
    const [leased] = await leaseJobs(app, { type: 'noop' });
    expect((await request(app).post(`/jobs/${jobId}/cancel`).set(bearer('service'))).body.status).toBe('leased');
    const snoozed = await report(app, jobId, 'snooze', { leaseId: leased!.leaseId, seconds: 60 });
    expect(snoozed.body).toMatchObject({ jobId, status: 'cancelled' });
    expect((await job(jobId)).body).toMatchObject({ status: 'cancelled', attempts: [expect.objectContaining({ outcome: 'cancelled' })] });
    clock.advance(61_000);
    expect(await leaseJobs(app, { type: 'noop' })).toEqual([]);
  });

  it('frees the concurrency slot, answers 409 on a lease it does not hold and 422 on bad seconds', async () => {
    const jobId = await enqueueJob(app, { type: 'payout.execute', payload: payoutPayload() });
    const [leased] = await leaseJobs(app, { type: 'payout.execute' });
    expect(await db.connection.collection('job_slots').countDocuments({ leaseId: leased!.leaseId })).toBe(1);
    for (const seconds of [0, 86_401, 1.5, '5']) expect((await report(app, jobId, 'snooze', { leaseId: leased!.leaseId, seconds })).status).toBe(422);
    expect((await report(app, jobId, 'snooze', { leaseId: 'lease_other', seconds: 5 })).body.error.code).toBe('lease_conflict');
    expect((await report(app, jobId, 'snooze', { leaseId: leased!.leaseId, seconds: 5 }, 'worker-b')).body.error.code).toBe('lease_conflict');
    expect((await report(app, jobId, 'snooze', { leaseId: leased!.leaseId, seconds: 5 })).status).toBe(200);
    expect(await db.connection.collection('job_slots').countDocuments({ leaseId: leased!.leaseId })).toBe(0);
    expect((await report(app, jobId, 'snooze', { leaseId: leased!.leaseId, seconds: 5 })).body.error.code).toBe('lease_conflict');
  });
});

describe('checkpoints', () => {
  it('a heartbeat stores the checkpoint on the job; every later lease gets it (null before any)', async () => {
    const jobId = await enqueueJob(app, { type: 'noop', payload: {} });
    const [first] = await leaseJobs(app, { type: 'noop' });
    expect(first!.checkpoint).toBeNull();
    expect((await report(app, jobId, 'heartbeat', { leaseId: first!.leaseId, checkpoint: { page: 3, cursor: 'abc' } })).status).toBe(200);
    expect((await job(jobId)).body.checkpoint).toEqual({ page: 3, cursor: 'abc' });
    // A heartbeat without one keeps it; a later one replaces it.
    await report(app, jobId, 'heartbeat', { leaseId: first!.leaseId, progress: 10 });
    await report(app, jobId, 'heartbeat', { leaseId: first!.leaseId, checkpoint: { page: 4 } });
    await report(app, jobId, 'fail', { leaseId: first!.leaseId, error: { message: 'crash' } });
    clock.advance(60_000);
    const [second] = await leaseJobs(app, { type: 'noop' });
    expect(second).toMatchObject({ jobId, attempt: 2, checkpoint: { page: 4 } });
    // Also after a snooze, and across a requeue.
    await report(app, jobId, 'snooze', { leaseId: second!.leaseId, seconds: 1 });
    clock.advance(1_000);
    const [third] = await leaseJobs(app, { type: 'noop' });
    expect(third!.checkpoint).toEqual({ page: 4 });
  });

  it('refuses a checkpoint over 65,536 bytes of JSON with 413 (and changes nothing); exactly 65,536 is taken', async () => {
    const jobId = await enqueueJob(app, { type: 'noop', payload: {} });
    const [leased] = await leaseJobs(app, { type: 'noop' });
    const fits = 'x'.repeat(65_536 - 2);
    expect((await report(app, jobId, 'heartbeat', { leaseId: leased!.leaseId, checkpoint: fits })).status).toBe(200);
    const tooBig = await report(app, jobId, 'heartbeat', { leaseId: leased!.leaseId, checkpoint: `${fits}y` });
    expect({ status: tooBig.status, code: tooBig.body.error.code }).toEqual({ status: 413, code: 'payload_too_large' });
    expect((await job(jobId)).body.checkpoint).toBe(fits);
  });
});
