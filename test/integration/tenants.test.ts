import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { tokenFor } from '../helpers/tokens';

const db = useTestDatabase();
let app: ReturnType<typeof buildTestApp>;
beforeAll(() => {
  app = buildTestApp(db, { reclaimIntervalMs: 0 });
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

type Role = 'admin' | 'service' | 'worker' | 'user';
const auth = (role: Role, tenant?: string, sub = `${role}-x`) => ({
  Authorization: `Bearer ${tokenFor(role, sub, tenant === undefined ? undefined : { tenant })}`,
});
const asWorker = (tenant?: string) => ({ ...auth('worker', tenant), 'X-Worker-Id': `worker-${tenant ?? 'none'}` });

async function enqueueAs(tenant: string | undefined, sub = 'service-x'): Promise<string> {
  const res = await request(app).post('/jobs').set(auth('service', tenant, sub)).send({ type: 'noop', payload: {} });
  expect(res.status).toBe(201);
  return res.body.jobId as string;
}

describe('tenants', () => {
  it('stamps every job a tenant token creates with its tenant', async () => {
    const jobId = await enqueueAs('acme');
    const res = await request(app).get(`/jobs/${jobId}`).set(auth('admin'));
    expect(res.body.tenant).toBe('acme');
    const batch = await request(app).post('/jobs/batch').set(auth('service', 'acme')).send({ jobs: [{ type: 'noop', payload: {} }] });
    expect((await request(app).get(`/jobs/${batch.body.results[0].jobId}`).set(auth('admin'))).body.tenant).toBe('acme');
  });

  it('rejects a malformed tenant claim with 401', async () => {
    const res = await request(app).get('/auth/whoami').set(auth('admin', 'no spaces allowed'));
    expect(res.status).toBe(401);
  });

  // Who tries what on a job of tenant "acme", and what they get.
  // Every row has all five cells: jest.each would take a missing last cell for a `done` callback.
  const readMatrix: [string, Role, string | undefined, number, string | undefined][] = [
    ['the owner in the same tenant', 'service', 'acme', 200, undefined],
    ['an admin of the same tenant', 'admin', 'acme', 200, undefined],
    ['an admin without a tenant', 'admin', undefined, 200, undefined],
    ['an admin of another tenant', 'admin', 'globex', 404, 'job_not_found'],
    ['the same sub in another tenant', 'service', 'globex', 403, 'access_denied'],
  ];
  it.each(readMatrix)('read by %s (%s, tenant %s) → %s', async (_who, role, tenant, status, code) => {
    const jobId = await enqueueAs('acme', 'service-x');
    const res = await request(app).get(`/jobs/${jobId}`).set(auth(role, tenant, role === 'service' ? 'service-x' : undefined));
    expect(res.status).toBe(status);
    if (code) expect(res.body.error.code).toBe(code);
  });

  it.each(readMatrix)('cancel by %s (%s, tenant %s) → %s', async (_who, role, tenant, status, _code) => {
    const jobId = await enqueueAs('acme', 'service-x');
    const res = await request(app).post(`/jobs/${jobId}/cancel`).set(auth(role, tenant, role === 'service' ? 'service-x' : undefined));
    expect(res.status).toBe(status);
    const after = await request(app).get(`/jobs/${jobId}`).set(auth('admin'));
    expect(after.body.status).toBe(status === 200 ? 'cancelled' : 'queued');
  });

  it('a tenant worker leases only its tenant’s jobs; a worker without a tenant leases any', async () => {
    const acme = await enqueueAs('acme');
    const globex = await enqueueAs('globex');
    const none = await enqueueAs(undefined);
    const globexLease = await request(app).get('/jobs/lease?limit=10').set(asWorker('globex'));
    expect(globexLease.body.jobs.map((j: { jobId: string }) => j.jobId)).toEqual([globex]);
    const initech = await request(app).get('/jobs/lease?limit=10').set(asWorker('initech'));
    expect(initech.body.jobs).toEqual([]);
    const any = await request(app).get('/jobs/lease?limit=10').set(asWorker(undefined));
    expect(new Set(any.body.jobs.map((j: { jobId: string }) => j.jobId))).toEqual(new Set([acme, none]));
  });

  it('a worker of another tenant cannot report on a lease, even with its lease id', async () => {
    const jobId = await enqueueAs('acme');
    const lease = await request(app).get('/jobs/lease').set(asWorker('acme'));
    const leaseId = lease.body.jobs[0].leaseId as string;
    for (const action of ['heartbeat', 'succeed', 'fail'] as const) {
      const body = action === 'fail' ? { leaseId, error: { message: 'x' } } : { leaseId };
      // Same worker id header, other tenant: the job is invisible to it.
      const res = await request(app).post(`/jobs/${jobId}/${action}`).set({ ...auth('worker', 'globex'), 'X-Worker-Id': 'worker-acme' }).send(body);
      expect(res.status).toBe(404);
    }
    const ok = await request(app).post(`/jobs/${jobId}/succeed`).set(asWorker('acme')).send({ leaseId });
    expect(ok.status).toBe(200);
  });

  it('an admin of a tenant lists, counts and requeues only its tenant’s jobs', async () => {
    await enqueueAs('acme');
    await enqueueAs('acme');
    const globex = await enqueueAs('globex');
    await enqueueAs(undefined);
    const list = await request(app).get('/admin/jobs/queue').set(auth('admin', 'acme'));
    expect(list.body.meta.total).toBe(2);
    const stats = await request(app).get('/admin/jobs/stats').set(auth('admin', 'acme'));
    expect(stats.body.totalJobs).toBe(2);
    expect((await request(app).get('/admin/jobs/stats').set(auth('admin'))).body.totalJobs).toBe(4);
    await request(app).post(`/jobs/${globex}/cancel`).set(auth('admin', 'globex'));
    expect((await request(app).post(`/admin/jobs/${globex}/requeue`).set(auth('admin', 'acme'))).status).toBe(404);
    expect((await request(app).post(`/admin/jobs/${globex}/requeue`).set(auth('admin', 'globex'))).status).toBe(200);
  });

  it('keeps idempotency keys apart per tenant', async () => {
    const body = { type: 'noop', payload: {}, idempotencyKey: 'same-key' };
    const a = await request(app).post('/jobs').set(auth('service', 'acme')).send(body);
    const b = await request(app).post('/jobs').set(auth('service', 'globex')).send(body);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.jobId).not.toBe(a.body.jobId);
  });
});
