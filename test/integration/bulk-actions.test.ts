import { createApp } from '../../src/app';
import { RESULT_FILE_BUCKET, ResultFileRepository } from '../../src/storage/result-file-repository';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { waitFor } from '../helpers/poll';
import { HttpWorker, listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * POST /admin/jobs/bulk over real sockets: dry runs count, real runs change exactly the matching jobs
 * (each through its single action's conditional update), unfinished jobs are never deleted, tenants
 * stay apart, a time budget bounds a call, and a race with workers leasing the same jobs loses nothing.
 */
const db = useTestDatabase();
let services: ApiServices;
let server: Awaited<ReturnType<typeof listen>>;
const ADMIN = tokenFor('admin', 'ops');

function wiring(overrides: Partial<ApiWiringParams> = {}): ApiWiringParams {
  return { connection: db.connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, reclaimIntervalMs: 0, bulkBatchSize: 7, ...overrides };
}

beforeAll(async () => {
  const p = wiring();
  services = wireServices(p);
  server = await listen(createApp(wireApi(p, services)));
});
afterAll(async () => {
  services.jobs.close();
  await server.close();
});
beforeEach(async () => {
  for (const name of ['jobs', `${RESULT_FILE_BUCKET}.files`, `${RESULT_FILE_BUCKET}.chunks`]) await db.connection.collection(name).deleteMany({});
});

type Seeded = ReturnType<typeof jobDocument>;
const T0 = Date.parse('2030-01-01T00:00:00Z');
async function seed(docs: Seeded[]): Promise<void> {
  await db.connection.collection('jobs').insertMany(docs as unknown as Record<string, unknown>[]);
}
function many(count: number, params: Parameters<typeof jobDocument>[0]): Seeded[] {
  return Array.from({ length: count }, (_, i) => jobDocument({ ...params, createdAt: new Date(params.createdAt.getTime() + i) }));
}

async function bulk(body: unknown, token = ADMIN, baseUrl = server.baseUrl): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}/admin/jobs/bulk`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function statuses(): Promise<Record<string, string>> {
  const docs = await db.connection.collection('jobs').find({}, { projection: { status: 1 } }).toArray();
  return Object.fromEntries(docs.map((d) => [String(d._id), String(d.status)]));
}

describe('dry runs and real runs', () => {
  it('a dry run counts the matching jobs the action applies to and changes nothing', async () => {
    await seed([
      ...many(5, { status: 'dlq', createdAt: new Date(T0), type: 'payout.execute' }),
      ...many(3, { status: 'failed', createdAt: new Date(T0), type: 'payout.execute' }),
      ...many(4, { status: 'queued', createdAt: new Date(T0), type: 'payout.execute' }),
      ...many(2, { status: 'dlq', createdAt: new Date(T0), type: 'thumbnail.create' }),
    ]);
    const before = await statuses();
    expect(await bulk({ action: 'requeue', filter: { type: 'payout.execute' }, dryRun: true })).toEqual({
      status: 200,
      body: { action: 'requeue', dryRun: true, matched: 8, affected: 0, complete: true },
    });
    expect((await bulk({ action: 'requeue', filter: { status: ['dlq', 'queued'] }, dryRun: true })).body).toMatchObject({ matched: 7 });
    expect((await bulk({ action: 'cancel', filter: { type: 'payout.execute' }, dryRun: true })).body).toMatchObject({ matched: 4 });
    expect((await bulk({ action: 'delete', filter: { status: 'queued' }, dryRun: true })).body).toMatchObject({ matched: 0 });
    expect(await statuses()).toEqual(before);
  });

  it('a real requeue changes exactly the matching jobs, as the single requeue does (attempt reset, history kept)', async () => {
    const target = many(12, { status: 'dlq', createdAt: new Date(T0 + 10_000), type: 'payout.execute', tags: ['import:7'], createdBy: 'billing' });
    const otherTag = many(3, { status: 'dlq', createdAt: new Date(T0 + 10_000), type: 'payout.execute', tags: ['import:8'], createdBy: 'billing' });
    const otherCreator = many(2, { status: 'dlq', createdAt: new Date(T0 + 10_000), type: 'payout.execute', tags: ['import:7'], createdBy: 'media' });
    const tooOld = many(2, { status: 'dlq', createdAt: new Date(T0), type: 'payout.execute', tags: ['import:7'], createdBy: 'billing' });
    const succeeded = many(2, { status: 'succeeded', createdAt: new Date(T0 + 10_000), type: 'payout.execute', tags: ['import:7'], createdBy: 'billing' });
    await seed([...target, ...otherTag, ...otherCreator, ...tooOld, ...succeeded]);
    const before = await statuses();
    const filter = { type: 'payout.execute', tag: 'import:7', createdBy: 'billing', createdFrom: new Date(T0 + 5_000).toISOString(), createdTo: new Date(T0 + 60_000).toISOString() };
    expect((await bulk({ action: 'requeue', filter })).body).toEqual({ action: 'requeue', dryRun: false, matched: 12, affected: 12, complete: true });
    const after = await statuses();
    const changed = Object.keys(after).filter((id) => after[id] !== before[id]).sort();
    expect(changed).toEqual(target.map((d) => d._id).sort());
    expect(changed.every((id) => after[id] === 'queued')).toBe(true);
    const requeued = await db.connection.collection('jobs').findOne({ _id: target[0]!._id as never });
    expect(requeued).toMatchObject({ status: 'queued', attempt: 0, completedAt: null });
    expect((requeued!.attempts as unknown[]).length).toBe(1);
    // Again: nothing matches any more.
    expect((await bulk({ action: 'requeue', filter })).body).toMatchObject({ matched: 0, affected: 0 });
  });

  it('a requeue leaves a job whose dedupe key another unfinished job holds (as the single requeue does) and requeues the rest', async () => {
    const service = tokenFor('service', 'billing');
    const call = async (method: string, path: string, body?: unknown, token = service): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`${server.baseUrl}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const later = '2031-01-01T00:00:00.000Z';
    const enqueue = async (extra: Record<string, unknown>): Promise<string> => {
      const res = await call('POST', '/jobs', { type: 'noop', payload: {}, scheduleAt: later, tags: ['dedupe-bulk'], ...extra });
      expect(res.status).toBe(201);
      return res.body.jobId as string;
    };
    const dedupe = { key: 'sync-42', mode: 'active' };
    const first = await enqueue({ dedupe });
    expect((await call('POST', `/jobs/${first}/cancel`)).body).toMatchObject({ status: 'cancelled' });
    // The key is free again once its job has finished: a second job takes it.
    const holder = await enqueue({ dedupe });
    const others = [await enqueue({}), await enqueue({})];
    for (const id of others) expect((await call('POST', `/jobs/${id}/cancel`)).body).toMatchObject({ status: 'cancelled' });
    expect((await call('POST', `/admin/jobs/${first}/requeue`, undefined, ADMIN)).status).toBe(409);

    const filter = { status: 'cancelled', tag: 'dedupe-bulk' };
    expect((await bulk({ action: 'requeue', filter })).body).toEqual({ action: 'requeue', dryRun: false, matched: 3, affected: 2, complete: true });
    const after = await statuses();
    expect({ first: after[first], holder: after[holder], others: others.map((id) => after[id]) }).toEqual({ first: 'cancelled', holder: 'queued', others: ['queued', 'queued'] });
    // A repeat meets the same refusal and still answers 200, changing nothing.
    expect((await bulk({ action: 'requeue', filter })).body).toEqual({ action: 'requeue', dryRun: false, matched: 1, affected: 0, complete: true });
  });

  it('a real cancel cancels waiting and queued jobs and requests the cancel of leased ones; one past its point of no return is left', async () => {
    const queued = many(9, { status: 'queued', createdAt: new Date(T0), type: 'noop' });
    const waiting = many(2, { status: 'waiting', createdAt: new Date(T0), type: 'noop' });
    const leased = many(3, { status: 'leased', createdAt: new Date(T0), type: 'noop' });
    const irreversible = { ...jobDocument({ status: 'leased', createdAt: new Date(T0), type: 'noop' }), irreversibleAt: new Date(T0) };
    const done = many(2, { status: 'succeeded', createdAt: new Date(T0), type: 'noop' });
    await seed([...queued, ...waiting, ...leased, irreversible, ...done]);
    expect((await bulk({ action: 'cancel', filter: { type: 'noop' } })).body).toEqual({ action: 'cancel', dryRun: false, matched: 15, affected: 14, complete: true });
    const docs = await db.connection.collection('jobs').find({}).toArray();
    const byId = new Map(docs.map((d) => [String(d._id), d]));
    for (const d of [...queued, ...waiting]) expect(byId.get(d._id)).toMatchObject({ status: 'cancelled' });
    for (const d of leased) expect(byId.get(d._id)).toMatchObject({ status: 'leased', cancelRequested: true });
    expect(byId.get(irreversible._id)).toMatchObject({ status: 'leased', cancelRequested: false });
    for (const d of done) expect(byId.get(d._id)).toMatchObject({ status: 'succeeded' });
    // A repeat: the flagged ones are already flagged, the irreversible one still refused.
    expect((await bulk({ action: 'cancel', filter: { type: 'noop' } })).body).toMatchObject({ matched: 4, affected: 0 });
  });

  it('a delete removes finished jobs only (with their result files), never unfinished ones, whatever the filter says', async () => {
    const finished = [
      ...many(4, { status: 'succeeded', createdAt: new Date(T0), type: 'noop' }),
      ...many(3, { status: 'failed', createdAt: new Date(T0), type: 'noop' }),
      ...many(2, { status: 'cancelled', createdAt: new Date(T0), type: 'noop' }),
      ...many(2, { status: 'dlq', createdAt: new Date(T0), type: 'noop' }),
    ];
    const unfinished = [
      ...many(3, { status: 'queued', createdAt: new Date(T0), type: 'noop' }),
      ...many(2, { status: 'leased', createdAt: new Date(T0), type: 'noop' }),
      ...many(1, { status: 'waiting', createdAt: new Date(T0), type: 'noop' }),
    ];
    await seed([...finished, ...unfinished]);
    const files = new ResultFileRepository(db.connection);
    await files.uploadChunks({ chunks: [Buffer.from('report')], filename: 'r.csv', metadata: { jobId: finished[0]!._id } });
    await files.uploadChunks({ chunks: [Buffer.from('partial')], filename: 'p.csv', metadata: { jobId: unfinished[4]!._id } });
    expect((await bulk({ action: 'delete', filter: { status: ['succeeded', 'queued', 'leased', 'waiting', 'failed', 'cancelled', 'dlq'] } })).body).toEqual({
      action: 'delete',
      dryRun: false,
      matched: 11,
      affected: 11,
      complete: true,
    });
    expect(Object.keys(await statuses()).sort()).toEqual(unfinished.map((d) => d._id).sort());
    expect(await files.fileIdsOfJob(finished[0]!._id)).toEqual([]);
    expect(await files.fileIdsOfJob(unfinished[4]!._id)).toHaveLength(1);
  });

  it('keeps to the admin’s tenant', async () => {
    const acme = many(3, { status: 'dlq', createdAt: new Date(T0), type: 'noop', tenant: 'acme' });
    const globex = many(2, { status: 'dlq', createdAt: new Date(T0), type: 'noop', tenant: 'globex' });
    await seed([...acme, ...globex]);
    const acmeAdmin = tokenFor('admin', 'acme-ops', { tenant: 'acme' });
    expect((await bulk({ action: 'requeue', filter: { status: 'dlq' } }, acmeAdmin)).body).toMatchObject({ matched: 3, affected: 3 });
    const after = await statuses();
    expect(globex.map((d) => after[d._id])).toEqual(['dlq', 'dlq']);
    expect((await bulk({ action: 'delete', filter: { status: 'dlq' } }, acmeAdmin)).body).toMatchObject({ matched: 0 });
  });

  it('stops at its time budget with complete: false; repeating the call goes on with what still matches', async () => {
    const p = wiring({ bulkTimeBudgetMs: 0, bulkBatchSize: 5 });
    const budgeted = wireServices(p);
    const budgetedServer = await listen(createApp(wireApi(p, budgeted)));
    try {
      await seed(many(12, { status: 'failed', createdAt: new Date(T0), type: 'noop' }));
      const first = await bulk({ action: 'requeue', filter: { status: 'failed' } }, ADMIN, budgetedServer.baseUrl);
      expect(first.body).toEqual({ action: 'requeue', dryRun: false, matched: 12, affected: 5, complete: false });
      const second = await bulk({ action: 'requeue', filter: { status: 'failed' } }, ADMIN, budgetedServer.baseUrl);
      expect(second.body).toMatchObject({ matched: 7, affected: 5, complete: false });
      const third = await bulk({ action: 'requeue', filter: { status: 'failed' } }, ADMIN, budgetedServer.baseUrl);
      expect(third.body).toMatchObject({ matched: 2, affected: 2, complete: true });
      expect(Object.values(await statuses()).every((s) => s === 'queued')).toBe(true);
    } finally {
      budgeted.jobs.close();
      await budgetedServer.close();
    }
  });

  it('refuses a filter naming neither status nor type, an unknown action or status, and non-admins', async () => {
    for (const body of [{ action: 'requeue', filter: {} }, { action: 'requeue', filter: { tag: 'x' } }, { action: 'purge', filter: { status: 'dlq' } }, { action: 'delete', filter: { status: 'gone' } }, { action: 'delete', filter: { status: [] } }, { action: 'delete' }]) {
      const res = await bulk(body);
      expect({ body, status: res.status, code: (res.body.error as { code: string }).code }).toEqual({ body, status: 422, code: 'validation_error' });
    }
    expect((await bulk({ action: 'requeue', filter: {} })).body).toMatchObject({ error: { details: [{ field: 'body.filter.status', message: 'filter must name status or type' }] } });
    expect((await bulk({ action: 'delete', filter: { status: 'dlq' } }, tokenFor('service', 's'))).status).toBe(403);
  });
});

describe('racing workers', () => {
  it('a bulk cancel while workers lease and finish the same jobs loses nothing: each job ends cancelled unleased, or leased and asked to stop', async () => {
    const SERVICE = tokenFor('service', 'bulk-race');
    const res = await fetch(`${server.baseUrl}/jobs/batch`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${SERVICE}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ jobs: Array.from({ length: 300 }, () => ({ type: 'noop', payload: {}, tags: ['race'] })) }),
    });
    expect(res.status).toBe(200);
    const stop = new AbortController();
    const leasedBy = new Map<string, string>();
    const workers = Array.from({ length: 4 }, async (_, i) => {
      const w = new HttpWorker(server.baseUrl, tokenFor('worker'), `bulk-worker-${i}`);
      while (!stop.signal.aborted) {
        const jobs = await w.lease({ limit: 5 });
        for (const job of jobs) leasedBy.set(job.jobId, w.workerId);
        await Promise.all(jobs.map((job) => w.report(job.jobId, 'succeed', { leaseId: job.leaseId })));
        if (jobs.length === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    });
    // Let the workers get going, then cancel everything tagged while they still lease.
    await waitFor(() => (leasedBy.size >= 20 ? true : undefined), { intervalMs: 1, what: 'the workers to lease' });
    const cancel = await bulk({ action: 'cancel', filter: { type: 'noop', tag: 'race' } });
    stop.abort();
    await Promise.all(workers);
    expect(cancel.status).toBe(200);

    const docs = await db.connection.collection('jobs').find({ tags: 'race' }).toArray();
    expect(docs).toHaveLength(300);
    const cancelled = docs.filter((d) => d.status === 'cancelled');
    const succeeded = docs.filter((d) => d.status === 'succeeded');
    // Nothing is left queued or half-way: every job was either cancelled or run to its end.
    expect(cancelled.length + succeeded.length).toBe(300);
    // A cancelled job was never leased after the cancel (here: never leased at all).
    expect(cancelled.every((d) => !leasedBy.has(String(d._id)) && (d.attempts as unknown[]).length === 0)).toBe(true);
    // Every succeeded job was leased by a worker; the ones leased when the cancel reached them were asked to stop.
    expect(succeeded.every((d) => leasedBy.has(String(d._id)))).toBe(true);
    const flagged = succeeded.filter((d) => d.cancelRequested === true).length;
    expect(cancel.body.affected).toBe(cancelled.length + flagged);
    expect(cancelled.length).toBeGreaterThan(0);
    process.stdout.write(`bulk cancel race: ${cancelled.length} cancelled, ${succeeded.length} run by workers (${flagged} of them asked to stop)\n`);
  }, 60_000);
});
