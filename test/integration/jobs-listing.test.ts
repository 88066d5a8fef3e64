import type { Express } from 'express';
import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { tokenFor } from '../helpers/tokens';

/**
 * GET /jobs (the caller's own jobs), tags on enqueue, and the admin queue's tag and idempotency-key
 * filters, over the real app and database.
 */
const db = useTestDatabase();
let app: Express;

beforeAll(() => {
  app = buildTestApp(db);
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

type Caller = { role: 'service' | 'user' | 'admin' | 'worker'; sub: string; tenant?: string };
const auth = (caller: Caller): { Authorization: string } => ({
  Authorization: `Bearer ${tokenFor(caller.role, caller.sub, caller.tenant === undefined ? undefined : { tenant: caller.tenant })}`,
});

async function enqueue(caller: Caller, body: Record<string, unknown> = {}): Promise<string> {
  const res = await request(app).post('/jobs').set(auth(caller)).send({ type: 'noop', payload: {}, ...body });
  if (res.status !== 201) throw new Error(`enqueue answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.jobId as string;
}

async function listIds(caller: Caller, query = ''): Promise<string[]> {
  const res = await request(app).get(`/jobs${query}`).set(auth(caller));
  expect(res.status).toBe(200);
  return (res.body.data as { jobId: string }[]).map((j) => j.jobId);
}

const ALICE: Caller = { role: 'service', sub: 'alice' };
const BOB: Caller = { role: 'service', sub: 'bob' };
const ADMIN: Caller = { role: 'admin', sub: 'ops' };

describe('GET /jobs lists the caller’s own jobs', () => {
  it('a service sees the jobs it created, newest first; another service, and a user token with the same sub, see none of them', async () => {
    const first = await enqueue(ALICE);
    const second = await enqueue(ALICE);
    const bobs = await enqueue(BOB);
    expect(await listIds(ALICE)).toEqual([second, first]);
    expect(await listIds(BOB)).toEqual([bobs]);
    // Ownership is sub, role and tenant: a user token borrowing alice's sub is another principal.
    expect(await listIds({ role: 'user', sub: 'alice' })).toEqual([]);
    expect(await listIds(ADMIN)).toEqual([bobs, second, first]);
  });

  it('keeps tenants apart: a tenant token sees its tenant’s own jobs only, a tenant admin its tenant’s, a token without a tenant none of them', async () => {
    const acmeAlice = { ...ALICE, tenant: 'acme' };
    const inAcme = await enqueue(acmeAlice);
    const inGlobex = await enqueue({ ...ALICE, tenant: 'globex' });
    const noTenant = await enqueue(ALICE);
    expect(await listIds(acmeAlice)).toEqual([inAcme]);
    expect(await listIds({ ...ALICE, tenant: 'globex' })).toEqual([inGlobex]);
    expect(await listIds(ALICE)).toEqual([noTenant]);
    expect(await listIds({ ...ADMIN, tenant: 'acme' })).toEqual([inAcme]);
    expect(await listIds(ADMIN)).toEqual([noTenant, inGlobex, inAcme]);
  });

  it('filters by status and type, and answers with the admin queue’s meta', async () => {
    const queued = await enqueue(ALICE);
    const cancelled = await enqueue(ALICE);
    expect((await request(app).post(`/jobs/${cancelled}/cancel`).set(auth(ALICE))).status).toBe(200);
    expect(await listIds(ALICE, '?status=cancelled')).toEqual([cancelled]);
    expect(await listIds(ALICE, '?status=queued,cancelled&type=noop')).toEqual([cancelled, queued]);
    expect(await listIds(ALICE, '?type=payout.execute')).toEqual([]);
    const res = await request(app).get('/jobs?status=queued').set(auth(ALICE));
    expect(res.body.meta).toEqual({ page: 1, per_page: 20, total: 1, total_pages: 1 });
    expect(res.body.data[0]).toMatchObject({ jobId: queued, status: 'queued', tags: [], createdBy: 'alice', createdByRole: 'service' });
  });

  it('refuses a worker token (403) and no token (401), and bad filters with 422', async () => {
    expect((await request(app).get('/jobs').set(auth({ role: 'worker', sub: 'w' }))).body.error.code).toBe('permission_denied');
    expect((await request(app).get('/jobs')).status).toBe(401);
    for (const query of ['?status=bogus', '?per_page=0', '?per_page=101', '?page=0', '?page=x', '?tag=has%20space', `?tag=${'t'.repeat(65)}`]) {
      const res = await request(app).get(`/jobs${query}`).set(auth(ALICE));
      expect({ query, status: res.status, code: res.body.error?.code }).toEqual({ query, status: 422, code: 'validation_error' });
    }
  });
});

describe('tags', () => {
  it('are stored on the job (a repeated one once) and shown in its document', async () => {
    const jobId = await enqueue(ALICE, { tags: ['import:batch-7', 'customer:42', 'import:batch-7'] });
    const job = await request(app).get(`/jobs/${jobId}`).set(auth(ALICE));
    expect(job.body.tags).toEqual(['import:batch-7', 'customer:42']);
  });

  it('GET /jobs?tag= matches the jobs carrying all the tags listed', async () => {
    const both = await enqueue(ALICE, { tags: ['import:7', 'customer:42'] });
    const importOnly = await enqueue(ALICE, { tags: ['import:7'] });
    await enqueue(ALICE, { tags: ['customer:42'] });
    await enqueue(ALICE);
    await enqueue(BOB, { tags: ['import:7'] });
    expect(await listIds(ALICE, '?tag=import:7')).toEqual([importOnly, both]);
    expect(await listIds(ALICE, '?tag=import:7,customer:42')).toEqual([both]);
    expect(await listIds(ALICE, '?tag=customer:42,import:7&status=queued')).toEqual([both]);
    expect(await listIds(ALICE, '?tag=import:8')).toEqual([]);
  });

  it('are taken by batch items too, each checked on its own', async () => {
    const res = await request(app)
      .post('/jobs/batch')
      .set(auth(ALICE))
      .send({ jobs: [{ type: 'noop', payload: {}, tags: ['batch:1'] }, { type: 'noop', payload: {}, tags: ['not ok'] }, { type: 'noop', payload: {}, tags: ['batch:1', 'b'] }] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 2, rejected: 1 });
    expect(res.body.results[1].error).toMatchObject({ code: 'validation_error', details: [{ field: 'body.jobs.1.tags.0' }] });
    // One batch shares one createdAt: the order among its jobs is by id.
    expect((await listIds(ALICE, '?tag=batch:1')).sort()).toEqual([res.body.results[0].jobId, res.body.results[2].jobId].sort());
  });

  it('refuses more than 20 tags, an empty tag, a tag of 65 characters or one outside [A-Za-z0-9_.:-] (422)', async () => {
    for (const tags of [Array.from({ length: 21 }, (_, i) => `t${i}`), [''], ['x'.repeat(65)], ['a b'], ['ü'], ['a/b'], 'import', [7]]) {
      const res = await request(app).post('/jobs').set(auth(ALICE)).send({ type: 'noop', payload: {}, tags });
      expect({ tags, status: res.status, code: res.body.error?.code }).toEqual({ tags, status: 422, code: 'validation_error' });
    }
    const twenty = Array.from({ length: 20 }, (_, i) => `t.${i}_${'x'.repeat(58)}`);
    expect((await request(app).post('/jobs').set(auth(ALICE)).send({ type: 'noop', payload: {}, tags: twenty })).status).toBe(201);
  });

  it('the admin queue filters by tag and by idempotency key too', async () => {
    const tagged = await enqueue(ALICE, { tags: ['import:7'] });
    const keyed = await enqueue(BOB, { idempotencyKey: 'order-1' });
    const alsoKeyed = await enqueue(ALICE, { idempotencyKey: 'order-1' });
    const admin = async (query: string): Promise<string[]> => {
      const res = await request(app).get(`/admin/jobs/queue${query}`).set(auth(ADMIN));
      expect(res.status).toBe(200);
      return (res.body.data as { jobId: string }[]).map((j) => j.jobId);
    };
    expect(await admin('?tag=import:7')).toEqual([tagged]);
    expect(await admin('?idempotencyKey=order-1')).toEqual([alsoKeyed, keyed]);
    expect(await admin('?tag=import:7&idempotencyKey=order-1')).toEqual([]);
  });
});

describe('pagination', () => {
  it('pages newest first without overlap or gaps; a page past the end is empty with the right meta', async () => {
    const ids: string[] = [];
    // One at a time, so creation order is the listing order (ties are broken by id, newest id first).
    for (let i = 0; i < 7; i += 1) ids.push(await enqueue(ALICE, { tags: ['pages'] }));
    const newestFirst = [...ids].reverse();
    const page = async (n: number, perPage: number): Promise<{ meta: unknown; ids: string[] }> => {
      const res = await request(app).get(`/jobs?tag=pages&page=${n}&per_page=${perPage}`).set(auth(ALICE));
      expect(res.status).toBe(200);
      return { meta: res.body.meta, ids: (res.body.data as { jobId: string }[]).map((j) => j.jobId) };
    };
    const pages = [await page(1, 3), await page(2, 3), await page(3, 3)];
    expect(pages.flatMap((p) => p.ids)).toEqual(newestFirst);
    expect(pages.map((p) => p.meta)).toEqual([1, 2, 3].map((n) => ({ page: n, per_page: 3, total: 7, total_pages: 3 })));
    expect(await page(4, 3)).toEqual({ meta: { page: 4, per_page: 3, total: 7, total_pages: 3 }, ids: [] });
    // API.md: page ≥ 1, no upper bound; any page past the end is empty (up to where page × per_page stays exact).
    expect(await page(99_999_999_999, 100)).toEqual({ meta: { page: 99_999_999_999, per_page: 100, total: 7, total_pages: 1 }, ids: [] });
    const admin = await request(app).get('/admin/jobs/queue?page=90071992547409&per_page=100').set(auth(ADMIN));
    expect(admin.status).toBe(200);
    expect(admin.body.data).toEqual([]);
    expect(await page(1, 100)).toEqual({ meta: { page: 1, per_page: 100, total: 7, total_pages: 1 }, ids: newestFirst });
    expect(await page(7, 1)).toEqual({ meta: { page: 7, per_page: 1, total: 7, total_pages: 7 }, ids: [ids[0]] });
    expect(await page(1, 1)).toEqual({ meta: { page: 1, per_page: 1, total: 7, total_pages: 7 }, ids: [ids[6]] });
  });

  it('an empty listing has total 0 and total_pages 0', async () => {
    const res = await request(app).get('/jobs').set(auth(ALICE));
    expect(res.body).toEqual({ meta: { page: 1, per_page: 20, total: 0, total_pages: 0 }, data: [] });
  });
});
