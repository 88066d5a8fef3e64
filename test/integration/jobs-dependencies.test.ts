import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, leaseJobs, report, thumbnailPayload } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();
const clock = new TestClock();
let app: ReturnType<typeof buildTestApp>;
beforeAll(() => {
  app = buildTestApp(db, { clock, reclaimIntervalMs: 0 });
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

const noop = (extra: Record<string, unknown> = {}) => ({ type: 'noop', payload: {}, ...extra });
const status = async (jobId: string): Promise<{ status: string; pendingParents: string[]; lastError: { code?: string; message: string } | null }> =>
  (await request(app).get(`/jobs/${jobId}`).set(bearer('admin'))).body;

/** Leases the job directly (an admin report with its lease id) and finishes it. */
async function runToEnd(jobId: string, outcome: 'succeed' | 'fail'): Promise<void> {
  await db.connection.collection('jobs').updateOne({ _id: jobId as never }, { $set: { priority: 100 } });
  const [job] = await leaseJobs(app);
  if (job?.jobId !== jobId) throw new Error(`expected to lease ${jobId}, got ${String(job?.jobId)}`);
  const body = outcome === 'succeed' ? { leaseId: job.leaseId } : { leaseId: job.leaseId, error: { message: 'broken', retryable: false } };
  expect((await report(app, jobId, outcome, body)).status).toBe(200);
}

describe('dependsOn', () => {
  it('keeps a job waiting until every parent succeeded, then queues it', async () => {
    const a = await enqueueJob(app, noop());
    const b = await enqueueJob(app, noop());
    const res = await request(app).post('/jobs').set(bearer('service', 'service-1')).send(noop({ dependsOn: [a, b] }));
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('waiting');
    const child = res.body.jobId as string;
    expect(await status(child)).toMatchObject({ status: 'waiting', pendingParents: [a, b] });

    await runToEnd(a, 'succeed');
    expect(await status(child)).toMatchObject({ status: 'waiting', pendingParents: [b] });
    await runToEnd(b, 'succeed');
    expect(await status(child)).toMatchObject({ status: 'queued', pendingParents: [] });
    expect((await leaseJobs(app)).map((j) => j.jobId)).toEqual([child]);
  });

  it('cancels the waiting children, and theirs, when a parent ends failed', async () => {
    const parent = await enqueueJob(app, noop());
    const child = await enqueueJob(app, noop({ dependsOn: [parent] }));
    const grandchild = await enqueueJob(app, noop({ dependsOn: [child] }));
    await runToEnd(parent, 'fail');
    expect(await status(child)).toMatchObject({ status: 'cancelled', lastError: { code: 'dependency_failed' } });
    expect((await status(child)).lastError!.message).toContain(parent);
    expect(await status(grandchild)).toMatchObject({ status: 'cancelled', lastError: { code: 'dependency_failed' } });
  });

  it('a requeued child whose parent ended badly waits for it again, and runs only once the parent, requeued too, has succeeded', async () => {
    const parent = await enqueueJob(app, noop());
    const child = await enqueueJob(app, noop({ dependsOn: [parent] }));
    await runToEnd(parent, 'fail');
    expect(await status(child)).toMatchObject({ status: 'cancelled', lastError: { code: 'dependency_failed' } });

    const requeue = (jobId: string) => request(app).post(`/admin/jobs/${jobId}/requeue`).set(bearer('admin'));
    const requeuedChild = await requeue(child);
    expect(requeuedChild.status).toBe(200);
    expect(requeuedChild.body).toEqual({ jobId: child, status: 'waiting' });
    expect(await status(child)).toMatchObject({ status: 'waiting', pendingParents: [parent] });
    // Nothing to lease: the parent failed and the child waits.
    expect(await leaseJobs(app)).toEqual([]);

    expect((await requeue(parent)).body).toEqual({ jobId: parent, status: 'queued' });
    await runToEnd(parent, 'succeed');
    expect(await status(child)).toMatchObject({ status: 'queued', pendingParents: [] });
    expect((await leaseJobs(app)).map((j) => j.jobId)).toEqual([child]);
  });

  it('a requeued child whose parents all succeeded is queued; one whose parent was deleted is refused (409)', async () => {
    const parent = await enqueueJob(app, noop());
    await runToEnd(parent, 'succeed');
    const child = await enqueueJob(app, noop({ dependsOn: [parent] }));
    await runToEnd(child, 'fail');
    const again = await request(app).post(`/admin/jobs/${child}/requeue`).set(bearer('admin'));
    expect(again.body).toEqual({ jobId: child, status: 'queued' });
    await runToEnd(child, 'fail');
    await db.connection.collection('jobs').deleteOne({ _id: parent as never });
    const orphan = await request(app).post(`/admin/jobs/${child}/requeue`).set(bearer('admin'));
    expect({ status: orphan.status, code: orphan.body.error?.code }).toEqual({ status: 409, code: 'invalid_state' });
    expect(await status(child)).toMatchObject({ status: 'failed' });
  });

  it('a bulk requeue of a cancelled parent and its dependency-cancelled child queues the parent and keeps the child waiting for it', async () => {
    const parent = await enqueueJob(app, noop({ tags: ['bulkdep'] }));
    const child = await enqueueJob(app, noop({ dependsOn: [parent], tags: ['bulkdep'] }));
    expect((await request(app).post(`/jobs/${parent}/cancel`).set(bearer('admin'))).status).toBe(200);
    expect(await status(child)).toMatchObject({ status: 'cancelled' });
    const bulk = await request(app).post('/admin/jobs/bulk').set(bearer('admin')).send({ action: 'requeue', filter: { type: 'noop', tag: 'bulkdep' } });
    expect(bulk.status).toBe(200);
    expect(await status(parent)).toMatchObject({ status: 'queued' });
    expect(await status(child)).toMatchObject({ status: 'waiting', pendingParents: [parent] });
    expect((await leaseJobs(app)).map((j) => j.jobId)).toEqual([parent]);
  });

  it('cancels children when a queued parent is cancelled', async () => {
    const parent = await enqueueJob(app, noop());
    const child = await enqueueJob(app, noop({ dependsOn: [parent] }));
    expect((await request(app).post(`/jobs/${parent}/cancel`).set(bearer('admin'))).body.status).toBe('cancelled');
    expect((await status(child)).status).toBe('cancelled');
  });

  it('queues at once when every parent already succeeded, and cancels at once when one already failed', async () => {
    const done = await enqueueJob(app, noop());
    await runToEnd(done, 'succeed');
    const ready = await request(app).post('/jobs').set(bearer('service', 'service-1')).send(noop({ dependsOn: [done] }));
    expect(ready.body.status).toBe('queued');
    const broken = await enqueueJob(app, noop());
    await runToEnd(broken, 'fail');
    const doomed = await request(app).post('/jobs').set(bearer('service', 'service-1')).send(noop({ dependsOn: [done, broken] }));
    expect(doomed.status).toBe(201);
    expect(doomed.body.status).toBe('cancelled');
  });

  it.each([
    ['an unknown job', () => ['job_ffffffffffffffffffffffff'], 'dependsOn.0'],
    ['a job of another service', async () => [await enqueueJob(app, noop(), 'other-service')], 'dependsOn.0'],
    ['the same job twice', async () => {
      const id = await enqueueJob(app, noop());
      return [id, id];
    }, 'dependsOn'],
    ['a malformed id', () => ['job_1'], 'body.dependsOn.0'],
  ])('refuses %s with 422', async (_name, parents, field) => {
    const res = await request(app).post('/jobs').set(bearer('service', 'service-1')).send(noop({ dependsOn: await parents() }));
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
  });

  it('never strands a child whose parent finishes while it is being enqueued', async () => {
    const rounds = 20;
    const children: string[] = [];
    for (let i = 0; i < rounds; i += 1) {
      const parent = await enqueueJob(app, noop({ priority: 100 }));
      const [leased] = await leaseJobs(app);
      expect(leased!.jobId).toBe(parent);
      // Race the parent's success against the child's enqueue.
      const [, child] = await Promise.all([
        report(app, parent, 'succeed', { leaseId: leased!.leaseId }),
        request(app).post('/jobs').set(bearer('service', 'service-1')).send(noop({ dependsOn: [parent] })),
      ]);
      children.push(child.body.jobId as string);
    }
    const statuses = await db.connection.collection('jobs').find({ _id: { $in: children as unknown as never[] } }).toArray();
    expect(statuses.map((d) => d.status)).toEqual(Array.from({ length: rounds }, () => 'queued'));
  });

  it('lets the owner cancel a waiting job', async () => {
    const parent = await enqueueJob(app, { type: 'thumbnail.create', payload: thumbnailPayload() });
    const child = await enqueueJob(app, noop({ dependsOn: [parent] }));
    const res = await request(app).post(`/jobs/${child}/cancel`).set(bearer('service', 'service-1'));
    expect(res.body).toEqual({ jobId: child, status: 'cancelled' });
  });
});
