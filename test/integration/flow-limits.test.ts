import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { adminToken, call, leaseOver, serviceToken, startApiInstance, workerToken, type ApiInstance } from '../helpers/instances';
import { waitFor } from '../helpers/poll';

/**
 * Per-key concurrency (keyConcurrencyLimit + concurrencyKey) and rate limits, enforced in the
 * database across TWO API instances (two connections, one database), raced by real concurrent
 * lease calls over sockets.
 */
const db = useTestDatabase();
let a: ApiInstance;
let b: ApiInstance;
const clock = new TestClock();

afterEach(async () => {
  await a?.close();
  await b?.close();
});
beforeEach(async () => {
  for (const name of ['jobs', 'job_key_slots', 'job_rate_windows', 'job_types', 'job_slots']) await db.connection.collection(name).deleteMany({});
});

async function instances(overrides: Parameters<typeof startApiInstance>[1] = {}): Promise<void> {
  a = await startApiInstance(db, { reclaimIntervalMs: 0, ...overrides });
  b = await startApiInstance(db, { reclaimIntervalMs: 0, ...overrides });
}

async function setType(type: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await call(a.baseUrl, { method: 'PATCH', path: `/admin/types/${type}`, token: adminToken, body });
  if (res.status !== 200) throw new Error(`PATCH answered ${res.status}: ${JSON.stringify(res.body)}`);
  // Both instances apply it now (the other would within its refresh interval).
  await b.services.types!.refresh();
  return res.body;
}

async function enqueueMany(count: number, body: (i: number) => Record<string, unknown>): Promise<string[]> {
  const res = await call(a.baseUrl, { method: 'POST', path: '/jobs/batch', token: serviceToken(), body: { jobs: Array.from({ length: count }, (_, i) => ({ type: 'noop', payload: {}, ...body(i) })) } });
  if (res.status !== 200 || res.body.created !== count) throw new Error(`batch answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  return (res.body.results as { jobId: string }[]).map((r) => r.jobId);
}

const leasedNow = (filter: Record<string, unknown> = {}) => db.connection.collection('jobs').countDocuments({ status: 'leased', ...filter });

describe('keyConcurrencyLimit', () => {
  it('12 racing lease calls on two instances for one key with keyConcurrencyLimit 1: one holder, and the next only once it reported', async () => {
    await instances();
    await setType('noop', { keyConcurrencyLimit: 1 });
    await enqueueMany(6, () => ({ concurrencyKey: 'customer-1' }));
    for (let round = 0; round < 3; round += 1) {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => leaseOver(i % 2 === 0 ? a.baseUrl : b.baseUrl, { workerId: `key-worker-${i}`, type: 'noop', limit: 3 })));
      const leased = answers.flat();
      expect(leased).toHaveLength(1);
      expect(await leasedNow({ concurrencyKey: 'customer-1' })).toBe(1);
      const [holder] = leased;
      const workerId = `key-worker-${answers.findIndex((jobs) => jobs.length === 1)}`;
      const done = await call(b.baseUrl, { method: 'POST', path: `/jobs/${holder!.jobId}/succeed`, token: workerToken, workerId, body: { leaseId: holder!.leaseId } });
      expect(done.status).toBe(200);
    }
    expect(await db.connection.collection('job_key_slots').countDocuments()).toBe(0);
  });

  it('a busy key never holds back other keys, however large its backlog, and jobs without a key are not limited', async () => {
    await instances();
    await setType('noop', { keyConcurrencyLimit: 2 });
    // The busy key's jobs come first (higher priority) and outnumber a lease call's candidates.
    await enqueueMany(60, () => ({ concurrencyKey: 'hot', priority: 90 }));
    await enqueueMany(3, (i) => ({ concurrencyKey: `cold-${i}`, priority: 10 }));
    await enqueueMany(3, () => ({ priority: 5 }));
    const leased = await leaseOver(a.baseUrl, { workerId: 'keys-1', type: 'noop', limit: 10 });
    const keys = (await db.connection.collection('jobs').find({ _id: { $in: leased.map((j) => j.jobId) as never[] } }).toArray()).map((j) => j.concurrencyKey as string | null);
    expect(keys.filter((k) => k === 'hot')).toHaveLength(2);
    expect(keys.filter((k) => k?.startsWith('cold-')).sort()).toEqual(['cold-0', 'cold-1', 'cold-2']);
    expect(keys.filter((k) => k === null)).toHaveLength(3);
    // The other instance finds the hot key full too, but still everything else is taken.
    expect(await leaseOver(b.baseUrl, { workerId: 'keys-2', type: 'noop', limit: 10 })).toEqual([]);
  });

  it('a key slot frees itself with the reclaim of its lease (the worker vanished), never while the job is still leased', async () => {
    await instances({ clock });
    await setType('noop', { keyConcurrencyLimit: 1 });
    await enqueueMany(2, () => ({ concurrencyKey: 'k' }));
    const [first] = await leaseOver(a.baseUrl, { workerId: 'vanishing', type: 'noop' });
    expect(first).toBeDefined();
    clock.advance(29_000);
    expect(await leaseOver(b.baseUrl, { workerId: 'other', type: 'noop' })).toEqual([]);
    // A heartbeat keeps the lease (and its key slot) past the first expiry.
    expect((await call(a.baseUrl, { method: 'POST', path: `/jobs/${first!.jobId}/heartbeat`, token: workerToken, workerId: 'vanishing', body: { leaseId: first!.leaseId } })).status).toBe(200);
    clock.advance(29_000);
    expect(await leaseOver(b.baseUrl, { workerId: 'other', type: 'noop' })).toEqual([]);
    clock.advance(2_000);
    const next = await leaseOver(b.baseUrl, { workerId: 'other', type: 'noop', limit: 2 });
    expect(next).toHaveLength(1);
    expect(await leasedNow()).toBe(1);
  });

  it('costs a keyed lease call three queries more than a plain one, however many keys its jobs carry', async () => {
    await instances();
    await enqueueMany(20, (i) => ({ concurrencyKey: `key-${i}` }));
    a.commands.length = 0;
    expect(await leaseOver(a.baseUrl, { workerId: 'plain', type: 'noop', limit: 10 })).toHaveLength(10);
    const plain = a.commands.length;
    await setType('noop', { keyConcurrencyLimit: 1 });
    a.commands.length = 0;
    expect(await leaseOver(a.baseUrl, { workerId: 'keyed', type: 'noop', limit: 10 })).toHaveLength(10);
    const keyed = a.commands.length;
    process.stdout.write(`lease of 10 jobs with 10 keys: ${plain} database commands unlimited, ${keyed} with keyConcurrencyLimit\n  plain: ${a.commands.join(', ')}\n`);
    // find key slots + insert them (one bulk write) + the reclaim check the limit forces at most.
    expect(keyed - plain).toBeLessThanOrEqual(3);
  });
});

describe('rateLimit', () => {
  it('5 per 3 s on two instances: never more than 5 leases in any 3 s window (from the leases the database recorded), and the limit is used', async () => {
    await instances();
    await setType('noop', { rateLimit: { jobs: 5, perSeconds: 3 } });
    await enqueueMany(40, () => ({}));
    await enqueueMany(3, () => ({ type: 'thumbnail.create', payload: { assetId: 'asset_0123456789abcdef01234567', versionNumber: 1 } }));
    const stopAt = Date.now() + 7_500;
    let otherTypes = 0;
    const workers = Array.from({ length: 6 }, async (_, i) => {
      while (Date.now() < stopAt) {
        const jobs = await leaseOver(i % 2 === 0 ? a.baseUrl : b.baseUrl, { workerId: `rate-worker-${i}`, limit: 2 });
        otherTypes += jobs.filter((j) => j.type !== 'noop').length;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    await Promise.all(workers);
    // While noop waited for its window, the lease calls still got the other type's jobs.
    expect(otherTypes).toBe(3);
    const leasedAt = (await db.connection.collection('jobs').find({ type: 'noop', attempt: { $gt: 0 } }).toArray()).map((j) => (j.attempts as { leasedAt: Date }[])[0]!.leasedAt.getTime()).sort((x, y) => x - y);
    for (let i = 0; i + 5 < leasedAt.length; i += 1) {
      expect({ i, sixthWithin3s: leasedAt[i + 5]! - leasedAt[i]! < 3_000 }).toEqual({ i, sixthWithin3s: false });
    }
    // 7.5 s allow 3 windows' worth (15); contention may cost a few, never more.
    expect(leasedAt.length).toBeGreaterThanOrEqual(10);
    expect(leasedAt.length).toBeLessThanOrEqual(15);
    expect(await db.connection.collection('jobs').countDocuments({ type: 'noop', status: 'queued' })).toBe(40 - leasedAt.length);
  }, 20_000);

  it('a long-poll does not spin on a full window: it waits without queries and takes the job once the window allows', async () => {
    await instances({ leasePollIntervalMs: 100 });
    await setType('noop', { rateLimit: { jobs: 1, perSeconds: 2 } });
    await enqueueMany(2, () => ({}));
    const started = Date.now();
    expect(await leaseOver(a.baseUrl, { workerId: 'poller', type: 'noop' })).toHaveLength(1);
    a.commands.length = 0;
    const second = await leaseOver(a.baseUrl, { workerId: 'poller', type: 'noop', wait: 5 });
    const waited = Date.now() - started;
    expect(second).toHaveLength(1);
    expect(waited).toBeGreaterThanOrEqual(1_900);
    expect(waited).toBeLessThan(3_500);
    // A poll every 100 ms would be ~20 rounds of queries; waiting for the window is a handful.
    process.stdout.write(`long-poll on a full window: ${a.commands.join(', ')}\n`);
    expect(a.commands.filter((c) => c.endsWith(' jobs')).length).toBeLessThanOrEqual(6);
  });
});

describe('pause and run-time settings', () => {
  it('a pause set on one instance stops leases on the other within 2 s (its own refresh, no help); enqueues go on; leased jobs finish; resume', async () => {
    await instances({ typeSettingsRefreshMs: 1_000 });
    a.services.types!.start();
    b.services.types!.start();
    await enqueueMany(200, () => ({}));
    const [held] = await leaseOver(b.baseUrl, { workerId: 'held-worker', type: 'noop' });
    let pausedAt = Number.POSITIVE_INFINITY;
    const stopAt = Date.now() + 3_500;
    const leasesOnB: number[] = [];
    const worker = (async () => {
      while (Date.now() < stopAt) {
        const jobs = await leaseOver(b.baseUrl, { workerId: 'b-worker', type: 'noop', limit: 1 });
        for (const job of jobs) {
          leasesOnB.push(Date.now());
          await call(b.baseUrl, { method: 'POST', path: `/jobs/${job.jobId}/succeed`, token: workerToken, workerId: 'b-worker', body: { leaseId: job.leaseId } });
        }
      }
    })();
    await waitFor(() => (leasesOnB.length >= 3 ? true : undefined));
    const paused = await call(a.baseUrl, { method: 'PATCH', path: '/admin/types/noop', token: adminToken, body: { paused: true } });
    pausedAt = Date.now();
    expect(paused.body).toMatchObject({ type: 'noop', paused: true, overrides: { paused: true } });
    await worker;
    expect(leasesOnB.filter((t) => t > pausedAt + 2_000)).toEqual([]);
    // Nothing of the type is leased on either instance now; enqueues are accepted.
    expect(await leaseOver(a.baseUrl, { workerId: 'a-worker', type: 'noop' })).toEqual([]);
    expect((await call(b.baseUrl, { method: 'POST', path: '/jobs', token: serviceToken(), body: { type: 'noop', payload: {} } })).status).toBe(201);
    // The job leased before the pause finishes normally.
    expect((await call(b.baseUrl, { method: 'POST', path: `/jobs/${held!.jobId}/succeed`, token: workerToken, workerId: 'held-worker', body: { leaseId: held!.leaseId } })).status).toBe(200);
    const resumed = await call(b.baseUrl, { method: 'PATCH', path: '/admin/types/noop', token: adminToken, body: { paused: null } });
    expect(resumed.body).toMatchObject({ paused: false, overrides: {} });
    await waitFor(async () => ((await leaseOver(a.baseUrl, { workerId: 'a-worker', type: 'noop' })).length === 1 ? true : undefined), { timeoutMs: 2_500, intervalMs: 100 });
  }, 20_000);

  it('a long-poll waiting on a paused type is woken by the resume at once', async () => {
    await instances({ leasePollIntervalMs: 60_000, leasePollMaxIntervalMs: 60_000 });
    await setType('noop', { paused: true });
    await enqueueMany(1, () => ({}));
    const poll = leaseOver(a.baseUrl, { workerId: 'paused-poller', type: 'noop', wait: 10 });
    await waitFor(() => (a.services.jobs.waitingLeaseCalls === 1 ? true : undefined), { intervalMs: 10 });
    const resumedAt = Date.now();
    await call(a.baseUrl, { method: 'PATCH', path: '/admin/types/noop', token: adminToken, body: { paused: false } });
    expect(await poll).toHaveLength(1);
    expect(Date.now() - resumedAt).toBeLessThan(1_000);
  });

  it('a long-poll held back by a pause on one instance is woken by a resume made on the other within 2 s (the waiting instance watches the settings)', async () => {
    // The shared poll would not look for a minute: only the settings watch can wake the waiter.
    await instances({ typeSettingsRefreshMs: 1_000, leasePollIntervalMs: 60_000, leasePollMaxIntervalMs: 60_000 });
    a.services.types!.start();
    b.services.types!.start();
    await setType('noop', { paused: true });
    await enqueueMany(1, () => ({}));
    const poll = leaseOver(b.baseUrl, { workerId: 'paused-poller', type: 'noop', wait: 10 });
    await waitFor(() => (b.services.jobs.waitingLeaseCalls === 1 ? true : undefined), { intervalMs: 10 });
    expect(b.services.jobs.waitsOnSettings).toBe(true);
    const resumedAt = Date.now();
    expect((await call(a.baseUrl, { method: 'PATCH', path: '/admin/types/noop', token: adminToken, body: { paused: null } })).status).toBe(200);
    expect(await poll).toHaveLength(1);
    const tookMs = Date.now() - resumedAt;
    process.stdout.write(`resume seen by the other instance's waiting long-poll after ${tookMs} ms\n`);
    expect(tookMs).toBeLessThan(2_000);
  });

  it('GET /admin/types: effective policy, pause and live counts; run time wins over the environment, which wins over the registry; null removes', async () => {
    const { JobRegistry } = await import('../../src/jobs/registry');
    const { JOB_TYPES } = await import('../../src/jobs/job-types');
    const registry = () => new JobRegistry(JOB_TYPES, { 'payout.execute': { concurrencyLimit: 3, rateLimit: { jobs: 50, perSeconds: 60 } } });
    a = await startApiInstance(db, { registry: registry() });
    b = await startApiInstance(db, { registry: registry() });
    await enqueueMany(2, () => ({}));
    const list = await call(a.baseUrl, { path: '/admin/types', token: adminToken });
    const payout = (list.body.data as Record<string, unknown>[]).find((t) => t.type === 'payout.execute');
    expect(payout).toEqual({
      type: 'payout.execute',
      policy: { maxAttempts: 10, timeoutSeconds: 60, concurrencyLimit: 3, keyConcurrencyLimit: null, rateLimit: { jobs: 50, perSeconds: 60 }, backoffBaseSeconds: 2, backoffCapSeconds: 300 },
      paused: false,
      counts: { waiting: 0, queued: 0, leased: 0, succeeded: 0, failed: 0, cancelled: 0, dlq: 0 },
      overrides: {},
    });
    expect((list.body.data as Record<string, unknown>[]).map((t) => t.type)).toEqual(['thumbnail.create', 'payout.execute', 'noop']);
    expect((list.body.data as { type: string; counts: { queued: number } }[]).find((t) => t.type === 'noop')!.counts.queued).toBe(2);

    const changed = await setType('payout.execute', { concurrencyLimit: 7, keyConcurrencyLimit: 2, rateLimit: { jobs: 10, perSeconds: 1 } });
    expect(changed).toMatchObject({ policy: { concurrencyLimit: 7, keyConcurrencyLimit: 2, rateLimit: { jobs: 10, perSeconds: 1 } }, overrides: { concurrencyLimit: 7, keyConcurrencyLimit: 2, rateLimit: { jobs: 10, perSeconds: 1 } } });
    // The other instance (refreshed) sees the same; the stored settings survive a restart (a new instance reads them).
    const onB = await call(b.baseUrl, { path: '/admin/types', token: adminToken });
    expect((onB.body.data as Record<string, unknown>[]).find((t) => t.type === 'payout.execute')).toMatchObject({ policy: { concurrencyLimit: 7 } });
    const restarted = await startApiInstance(db, { registry: registry() });
    await restarted.services.types!.refresh();
    expect(restarted.services.registry.policyOf('payout.execute')).toMatchObject({ concurrencyLimit: 7, keyConcurrencyLimit: 2 });
    await restarted.close();
    // null: back to the environment's values (and the registry's where it has none).
    const reset = await setType('payout.execute', { concurrencyLimit: null, keyConcurrencyLimit: null, rateLimit: null });
    expect(reset).toMatchObject({ policy: { concurrencyLimit: 3, keyConcurrencyLimit: null, rateLimit: { jobs: 50, perSeconds: 60 } }, overrides: {} });
  });

  it('refuses unknown types (404), bad values (422), tenant admins (403), others (403), and an empty change writes nothing', async () => {
    await instances();
    const patch = (path: string, body: unknown, token = adminToken) => call(a.baseUrl, { method: 'PATCH', path, token, body });
    expect((await patch('/admin/types/no.such.type', { paused: true })).body.error?.code).toBe('job_type_not_found');
    for (const body of [{ paused: 'yes' }, { concurrencyLimit: 0 }, { keyConcurrencyLimit: 1.5 }, { rateLimit: { jobs: 5 } }, { rateLimit: { jobs: 5, perSeconds: 3_601 } }, { maxAttempts: 3 }, []]) {
      const res = await patch('/admin/types/noop', body);
      expect({ body, status: res.status, code: res.body.error?.code }).toEqual({ body, status: 422, code: 'validation_error' });
    }
    const tenantAdmin = await patch('/admin/types/noop', { paused: true }, (await import('../helpers/tokens')).tokenFor('admin', 'acme-admin', { tenant: 'acme' }));
    expect({ status: tenantAdmin.status, code: tenantAdmin.body.error?.code }).toEqual({ status: 403, code: 'permission_denied' });
    expect((await patch('/admin/types/noop', { paused: true }, serviceToken())).status).toBe(403);
    expect((await patch('/admin/types/noop', {})).status).toBe(200);
    expect(await db.connection.collection('job_types').countDocuments()).toBe(0);
    // API.md bounds rateLimit.jobs only from below: a high limit ("5,000 a minute") is taken; past what one window document holds, 422.
    const high = await patch('/admin/types/noop', { rateLimit: { jobs: 5_000, perSeconds: 60 } });
    expect({ status: high.status, rateLimit: (high.body as { policy?: { rateLimit?: unknown } }).policy?.rateLimit }).toEqual({ status: 200, rateLimit: { jobs: 5_000, perSeconds: 60 } });
    expect((await patch('/admin/types/noop', { rateLimit: { jobs: 50_001, perSeconds: 60 } })).status).toBe(422);
    expect((await patch('/admin/types/noop', { rateLimit: null })).status).toBe(200);
    // A tenant admin reads the settings and its own tenant's counts.
    await call(a.baseUrl, { method: 'POST', path: '/jobs', token: serviceToken('svc', 'acme'), body: { type: 'noop', payload: {} } });
    await call(a.baseUrl, { method: 'POST', path: '/jobs', token: serviceToken('svc', 'globex'), body: { type: 'noop', payload: {} } });
    const acme = await call(a.baseUrl, { path: '/admin/types', token: (await import('../helpers/tokens')).tokenFor('admin', 'acme-admin', { tenant: 'acme' }) });
    expect((acme.body.data as { type: string; counts: { queued: number } }[]).find((t) => t.type === 'noop')!.counts.queued).toBe(1);
  });
});
