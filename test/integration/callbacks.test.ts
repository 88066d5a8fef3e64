import { createHmac } from 'node:crypto';

import { createApp } from '../../src/app';
import { DEFAULT_CALLBACK_RETRY_DELAYS_MS } from '../../src/callbacks/callback-dispatcher';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams, type CallbackSettings } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { startReceiver, type ReceivedCallback } from '../helpers/callback-receiver';
import { useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { HttpWorker, listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * Callbacks against local receivers over real sockets: signed POSTs on every way a job can finish,
 * retried with backoff and delivered once, surviving an API restart, delivered once per attempt by two
 * API instances, refused for disallowed hosts, URLs and addresses, never following redirects, and
 * never holding requests or workers up while a receiver does not answer.
 */
const db = useTestDatabase();
const SECRET = 'callback-secret-for-tests-0123456789';
const SERVICE = tokenFor('service', 'cb-service');
const FAST: Partial<CallbackSettings> = { retryDelaysMs: [300, 300, 300], pollIntervalMs: 100, maxPollIntervalMs: 200 };

type Receiver = Awaited<ReturnType<typeof startReceiver>>;
interface Instance {
  services: ApiServices;
  baseUrl: string;
  close(): Promise<void>;
}
const open: Instance[] = [];
const receivers: Receiver[] = [];

async function startInstance(allowedHosts: string, settings: Partial<CallbackSettings> = FAST, extra: Partial<ApiWiringParams> = {}, dispatch = true): Promise<Instance> {
  const params: ApiWiringParams = {
    connection: db.connection,
    logger: silentLogger,
    jwtSecret: TEST_JWT_SECRET,
    readyTimeoutMs: 1_000,
    reclaimIntervalMs: 0,
    callbacks: { allowedHosts, secret: SECRET, ...settings },
    ...extra,
  };
  const services = wireServices(params);
  const server = await listen(createApp(wireApi(params, services)));
  if (dispatch) services.callbacks?.start();
  const instance: Instance = {
    services,
    baseUrl: server.baseUrl,
    close: async () => {
      await services.callbacks?.stop();
      services.jobs.close();
      await server.close();
    },
  };
  open.push(instance);
  return instance;
}

async function receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
  const r = await startReceiver(...args);
  receivers.push(r);
  return r;
}

afterEach(async () => {
  for (const instance of open.splice(0)) await instance.close();
  for (const r of receivers.splice(0)) await r.close();
  await db.connection.collection('jobs').deleteMany({});
});

async function call(instance: Instance, method: string, path: string, body?: unknown, token = SERVICE): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${instance.baseUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function enqueue(instance: Instance, body: Record<string, unknown>): Promise<string> {
  const res = await call(instance, 'POST', '/jobs', { type: 'noop', payload: {}, ...body });
  if (res.status !== 201) throw new Error(`enqueue answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.jobId as string;
}

async function jobOf(instance: Instance, jobId: string): Promise<Record<string, unknown>> {
  return (await call(instance, 'GET', `/jobs/${jobId}`)).body;
}

async function callbackOf(instance: Instance, jobId: string): Promise<Record<string, unknown> | null> {
  return (await jobOf(instance, jobId)).callback as Record<string, unknown> | null;
}

function worker(instance: Instance, id = 'cb-worker'): HttpWorker {
  return new HttpWorker(instance.baseUrl, tokenFor('worker'), id);
}

async function runToSuccess(instance: Instance, jobId: string, result: unknown = { ok: true }): Promise<number> {
  const w = worker(instance);
  const [lease] = await w.lease({ limit: 1 });
  expect(lease?.jobId).toBe(jobId);
  expect((await w.report(jobId, 'succeed', { leaseId: lease!.leaseId, result })).status).toBe(200);
  return Date.now();
}

/** Checks X-Jobs-Signature as a receiver would: HMAC-SHA256 of "<t>.<raw body>" with the shared secret. */
function signatureValid(got: ReceivedCallback, secret = SECRET): boolean {
  const header = String(got.headers['x-jobs-signature'] ?? '');
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${got.body}`).digest('hex');
  return expected === match[2] && Math.abs(Date.now() / 1000 - Number(match[1])) < 300;
}

describe('a delivered callback', () => {
  it('is a signed POST of the outcome, sent within seconds of the finish, and the job shows it delivered', async () => {
    const hook = await receiver();
    const api = await startInstance(hook.host);
    const jobId = await enqueue(api, { callbackUrl: hook.url, tags: ['cb'] });
    expect(await jobOf(api, jobId)).toMatchObject({ callbackUrl: hook.url, callback: null });
    const finishedAt = await runToSuccess(api, jobId, { rows: 3 });
    await waitFor(() => (hook.received.length === 1 ? true : undefined), { what: 'the callback' });
    const [got] = hook.received;
    expect(got!.at - finishedAt).toBeLessThan(5_000);
    expect(got!.path).toBe('/hooks/jobs');
    expect(got!.headers['content-type']).toBe('application/json');
    expect(got!.headers['x-jobs-delivery']).toMatch(/^dlv_[0-9a-f]{24}$/);
    expect(signatureValid(got!)).toBe(true);
    expect(signatureValid(got!, 'another-secret-0123456789')).toBe(false);
    const body = JSON.parse(got!.body) as Record<string, unknown>;
    expect(body).toEqual({ jobId, type: 'noop', status: 'succeeded', attempt: 1, result: { rows: 3 }, lastError: null, completedAt: expect.any(String) });
    await waitFor(async () => ((await callbackOf(api, jobId))?.status === 'delivered' ? true : undefined), { what: 'the delivered state' });
    expect(await callbackOf(api, jobId)).toEqual({ url: hook.url, status: 'delivered', attempts: 1, deliveredAt: expect.any(String), deliveryId: got!.headers['x-jobs-delivery'] });
    const metrics = await (await fetch(`${api.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/jobs_callback_deliveries_total\{outcome="delivered"\} 1/);
  });

  it('a 500 then a 200 is retried with backoff under the same delivery id and a fresh t, and delivered once', async () => {
    const hook = await receiver((_req, i) => ({ status: i === 0 ? 500 : 200 }));
    const api = await startInstance(hook.host);
    const jobId = await enqueue(api, { callbackUrl: hook.url });
    await runToSuccess(api, jobId);
    await waitFor(async () => ((await callbackOf(api, jobId))?.status === 'delivered' ? true : undefined), { what: 'the delivered state' });
    expect(hook.received).toHaveLength(2);
    const [first, second] = hook.received;
    expect(second!.headers['x-jobs-delivery']).toBe(first!.headers['x-jobs-delivery']);
    expect(second!.body).toBe(first!.body);
    expect(signatureValid(first!) && signatureValid(second!)).toBe(true);
    // The retry waited out its backoff (300 ms here, ×0.8–1 jitter).
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(230);
    expect(await callbackOf(api, jobId)).toMatchObject({ status: 'delivered', attempts: 2 });
    const metrics = await (await fetch(`${api.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/jobs_callback_deliveries_total\{outcome="retry"\} 1/);
    expect(metrics).toMatch(/jobs_callback_deliveries_total\{outcome="delivered"\} 1/);
  });

  it('gives up as failed after the last attempt, showing the last error', async () => {
    const hook = await receiver(() => ({ status: 503 }));
    const api = await startInstance(hook.host, { ...FAST, retryDelaysMs: [100, 100] });
    const jobId = await enqueue(api, { callbackUrl: hook.url });
    await runToSuccess(api, jobId);
    await waitFor(async () => ((await callbackOf(api, jobId))?.status === 'failed' ? true : undefined), { what: 'the failed state' });
    expect(hook.received).toHaveLength(3);
    expect(await callbackOf(api, jobId)).toMatchObject({ status: 'failed', attempts: 3, lastError: 'answered 503' });
  });

  it('by default, retries first within 10 s and makes at least 5 attempts over at least a minute', () => {
    expect(DEFAULT_CALLBACK_RETRY_DELAYS_MS[0]).toBeLessThanOrEqual(10_000);
    expect(DEFAULT_CALLBACK_RETRY_DELAYS_MS.length + 1).toBeGreaterThanOrEqual(5);
    // The 5th attempt comes after the first four delays (each at least 0.8 of its nominal value).
    expect(DEFAULT_CALLBACK_RETRY_DELAYS_MS.slice(0, 4).reduce((a, b) => a + b, 0) * 0.8).toBeGreaterThanOrEqual(60_000);
  });
});

describe('robustness', () => {
  it('an API restart between attempts loses nothing: another instance delivers the pending attempt under the same id', async () => {
    const hook = await receiver((_req, i) => ({ status: i === 0 ? 500 : 200 }));
    const first = await startInstance(hook.host, { ...FAST, retryDelaysMs: [1_000, 1_000] });
    const jobId = await enqueue(first, { callbackUrl: hook.url });
    await runToSuccess(first, jobId);
    await waitFor(async () => ((await callbackOf(first, jobId))?.lastError === 'answered 500' ? true : undefined), { what: 'the failed first attempt' });
    // The instance goes away with the retry pending; the one that starts next finds it in the database.
    await first.close();
    open.splice(open.indexOf(first), 1);
    const second = await startInstance(hook.host);
    await waitFor(async () => ((await callbackOf(second, jobId))?.status === 'delivered' ? true : undefined), { what: 'the delivery by the new instance' });
    expect(hook.received.map((r) => r.headers['x-jobs-delivery'])).toEqual([hook.received[0]!.headers['x-jobs-delivery'], hook.received[0]!.headers['x-jobs-delivery']]);
    expect(await callbackOf(second, jobId)).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('a job finished where no dispatcher runs is delivered by one that starts later (the finished job itself records the debt)', async () => {
    const hook = await receiver();
    const idle = await startInstance(hook.host, FAST, {}, false);
    const jobId = await enqueue(idle, { callbackUrl: hook.url });
    await runToSuccess(idle, jobId);
    expect(await callbackOf(idle, jobId)).toEqual({ url: hook.url, status: 'pending', attempts: 0, nextAttemptAt: expect.any(String) });
    await startInstance(hook.host);
    await waitFor(() => (hook.received.length === 1 ? true : undefined), { what: 'the late delivery' });
  });

  it('two API instances deliver every attempt once', async () => {
    const hook = await receiver();
    const a = await startInstance(hook.host);
    const b = await startInstance(hook.host);
    const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => enqueue(i % 2 === 0 ? a : b, { callbackUrl: hook.url })));
    // Finish them all through both instances at once, so both dispatchers race for the deliveries.
    const [wa, wb] = [worker(a, 'race-a'), worker(b, 'race-b')];
    const [la, lb] = [await wa.lease({ limit: 15 }), await wb.lease({ limit: 15 })];
    await Promise.all([...la.map((l) => wa.report(l.jobId, 'succeed', { leaseId: l.leaseId })), ...lb.map((l) => wb.report(l.jobId, 'succeed', { leaseId: l.leaseId }))]);
    await waitFor(() => (hook.received.length >= 30 ? true : undefined), { what: 'all 30 callbacks' });
    await waitFor(async () => ((await db.connection.collection('jobs').countDocuments({ 'callback.status': 'delivered' })) === 30 ? true : undefined), { what: 'all recorded' });
    const jobIds = hook.received.map((r) => (JSON.parse(r.body) as { jobId: string }).jobId);
    expect(jobIds.sort()).toEqual([...ids].sort());
    expect(new Set(hook.received.map((r) => r.headers['x-jobs-delivery'])).size).toBe(30);
  });

  it('a receiver that never answers holds neither requests nor workers, and other deliveries go on', async () => {
    const hook = await receiver((req) => (req.path.startsWith('/slow') ? 'never' : { status: 200 }));
    const api = await startInstance(hook.host, { ...FAST, timeoutMs: 1_500 });
    const slow = await enqueue(api, { callbackUrl: `http://${hook.host}/slow` });
    const fast = await enqueue(api, { callbackUrl: `http://${hook.host}/fast` });
    const w = worker(api);
    const leases = await w.lease({ limit: 2 });
    const began = Date.now();
    for (const lease of leases) expect((await w.report(lease.jobId, 'succeed', { leaseId: lease.leaseId })).status).toBe(200);
    // The reports were answered at once, though the slow receiver holds its attempt.
    expect(Date.now() - began).toBeLessThan(1_000);
    await waitFor(() => (hook.received.some((r) => r.path === '/fast') && hook.received.some((r) => r.path === '/slow') ? true : undefined), { what: 'both attempts' });
    const asked = Date.now();
    expect((await jobOf(api, slow)).status).toBe('succeeded');
    expect(Date.now() - asked).toBeLessThan(500);
    await waitFor(async () => ((await callbackOf(api, fast))?.status === 'delivered' ? true : undefined), { what: 'the fast delivery' });
    // The slow attempt is cut at its bound and retried.
    await waitFor(async () => ((await callbackOf(api, slow))?.lastError === 'no answer within 1500 ms' ? true : undefined), { what: 'the timed-out attempt', timeoutMs: 5_000 });
  });
});

describe('refused targets', () => {
  it('a disallowed host, a file: URL, credentials, a bad URL, or callbacks off: 422 at enqueue (also per batch item)', async () => {
    const hook = await receiver();
    const api = await startInstance(hook.host);
    for (const callbackUrl of [`http://127.0.0.2:${hook.port}/x`, `http://127.0.0.1:${hook.port + 1}/x`, 'http://example.com/x', 'file:///etc/passwd', 'ftp://127.0.0.1/x', `http://u:p@${hook.host}/x`, 'not a url', 'gopher://x']) {
      const res = await call(api, 'POST', '/jobs', { type: 'noop', payload: {}, callbackUrl });
      expect({ callbackUrl, status: res.status, code: (res.body.error as { code: string }).code }).toEqual({ callbackUrl, status: 422, code: 'validation_error' });
    }
    const batch = await call(api, 'POST', '/jobs/batch', { jobs: [{ type: 'noop', payload: {}, callbackUrl: hook.url }, { type: 'noop', payload: {}, callbackUrl: 'file:///etc/passwd' }] });
    expect(batch.body).toMatchObject({ created: 1, rejected: 1 });
    const off = await startInstance('');
    const refused = await call(off, 'POST', '/jobs', { type: 'noop', payload: {}, callbackUrl: hook.url });
    expect(refused).toMatchObject({ status: 422, body: { error: { code: 'validation_error', details: [{ field: 'callbackUrl', message: expect.stringContaining('callbacks are off') }] } } });
  });

  it('a redirect is never followed, not even to an allowed host; the attempt fails', async () => {
    const elsewhere = await receiver();
    const hook = await receiver(() => ({ status: 302, headers: { Location: elsewhere.url } }));
    const api = await startInstance(`${hook.host},${elsewhere.host}`, { ...FAST, retryDelaysMs: [100] });
    const jobId = await enqueue(api, { callbackUrl: hook.url });
    await runToSuccess(api, jobId);
    await waitFor(async () => ((await callbackOf(api, jobId))?.status === 'failed' ? true : undefined), { what: 'the failed delivery' });
    expect(hook.received).toHaveLength(2);
    expect(elsewhere.received).toHaveLength(0);
    expect(await callbackOf(api, jobId)).toMatchObject({ lastError: 'answered 302 (redirects are not followed)' });
  });

  it('an allowed host name that resolves to a loopback or private address is refused after resolving: nothing is sent', async () => {
    const hook = await receiver();
    const resolved: string[] = [];
    for (const address of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '::1', '::ffff:192.168.0.1']) {
      const api = await startInstance(`hooks.example.test:${hook.port}`, {
        ...FAST,
        retryDelaysMs: [],
        resolve: async (hostname) => {
          resolved.push(hostname);
          return [{ address, family: address.includes(':') ? 6 : 4 }];
        },
      });
      const jobId = await enqueue(api, { callbackUrl: `http://hooks.example.test:${hook.port}/x` });
      await runToSuccess(api, jobId);
      await waitFor(async () => ((await callbackOf(api, jobId))?.status === 'failed' ? true : undefined), { what: `the refusal of ${address}` });
      expect(await callbackOf(api, jobId)).toMatchObject({ lastError: `hooks.example.test resolves to ${address}, which is not a public address` });
      await api.close();
      open.splice(open.indexOf(api), 1);
      await db.connection.collection('jobs').deleteMany({});
    }
    expect(resolved.every((h) => h === 'hooks.example.test')).toBe(true);
    expect(hook.received).toHaveLength(0);
  });

  it('localhost listed explicitly reaches a receiver on loopback', async () => {
    const hook = await receiver();
    const api = await startInstance(`localhost:${hook.port}`);
    const jobId = await enqueue(api, { callbackUrl: `http://localhost:${hook.port}/hooks/jobs` });
    await runToSuccess(api, jobId);
    await waitFor(() => (hook.received.length === 1 ? true : undefined), { what: 'the callback over localhost' });
  });
});

describe('every way a job finishes creates the delivery', () => {
  it('succeeded, failed, dlq by a report and by a reclaim, cancelled queued, waiting, by a cascade, at a fail, at a reclaim, and at enqueue', async () => {
    const hook = await receiver();
    const api = await startInstance(hook.host);
    const w = worker(api);
    const cb = { callbackUrl: hook.url };
    const expected = new Map<string, string>();

    const succeeded = await enqueue(api, cb);
    await runToSuccess(api, succeeded);
    expected.set(succeeded, 'succeeded');

    const failed = await enqueue(api, cb);
    let [lease] = await w.lease({ limit: 1 });
    await w.report(failed, 'fail', { leaseId: lease!.leaseId, error: { message: 'bad input', retryable: false } });
    expected.set(failed, 'failed');

    const deadByReport = await enqueue(api, { ...cb, maxAttempts: 1 });
    [lease] = await w.lease({ limit: 1 });
    await w.report(deadByReport, 'fail', { leaseId: lease!.leaseId, error: { message: 'boom' } });
    expected.set(deadByReport, 'dlq');

    const cancelledQueued = await enqueue(api, cb);
    expect((await call(api, 'POST', `/jobs/${cancelledQueued}/cancel`)).body.status).toBe('cancelled');
    expected.set(cancelledQueued, 'cancelled');

    // A parent due later keeps its child waiting; cancelling the waiting child ends it.
    const laterParent = await enqueue(api, { scheduleAt: new Date(Date.now() + 3_600_000).toISOString() });
    const waitingChild = await enqueue(api, { ...cb, dependsOn: [laterParent] });
    expect((await call(api, 'POST', `/jobs/${waitingChild}/cancel`)).body.status).toBe('cancelled');
    expected.set(waitingChild, 'cancelled');

    // A parent that fails cancels its waiting child (and grandchild) in a cascade.
    const doomedParent = await enqueue(api, {});
    const cascadedChild = await enqueue(api, { ...cb, dependsOn: [doomedParent] });
    const cascadedGrandchild = await enqueue(api, { ...cb, dependsOn: [cascadedChild] });
    [lease] = await w.lease({ limit: 1 });
    expect(lease!.jobId).toBe(doomedParent);
    await w.report(doomedParent, 'fail', { leaseId: lease!.leaseId, error: { message: 'parent broke', retryable: false } });
    expected.set(cascadedChild, 'cancelled');
    expected.set(cascadedGrandchild, 'cancelled');

    // Enqueued depending on a parent that already failed: cancelled at once.
    const bornCancelled = await enqueue(api, { ...cb, dependsOn: [doomedParent] });
    expected.set(bornCancelled, 'cancelled');

    // A cancel acknowledged while leased, honoured by the worker's fail.
    const cancelledAtFail = await enqueue(api, cb);
    [lease] = await w.lease({ limit: 1 });
    expect((await call(api, 'POST', `/jobs/${cancelledAtFail}/cancel`)).body.status).toBe('leased');
    await w.report(cancelledAtFail, 'fail', { leaseId: lease!.leaseId, error: { code: 'cancelled', message: 'stopped', retryable: false } });
    expected.set(cancelledAtFail, 'cancelled');

    // A cancel acknowledged while leased, honoured by the reclaim of the expired lease; and a dead letter by reclaim.
    const cancelledAtReclaim = await enqueue(api, cb);
    const deadByReclaim = await enqueue(api, { ...cb, maxAttempts: 1 });
    const leases = await w.lease({ limit: 2 });
    expect(leases.map((l) => l.jobId).sort()).toEqual([cancelledAtReclaim, deadByReclaim].sort());
    expect((await call(api, 'POST', `/jobs/${cancelledAtReclaim}/cancel`)).body.status).toBe('leased');
    await api.services.jobs.reclaimExpiredLeases(new Date(Date.now() + 60_000));
    expected.set(cancelledAtReclaim, 'cancelled');
    expected.set(deadByReclaim, 'dlq');

    await waitFor(() => (hook.received.length >= expected.size ? true : undefined), { what: `${expected.size} callbacks`, timeoutMs: 15_000 });
    const got = new Map(hook.received.map((r) => [(JSON.parse(r.body) as { jobId: string }).jobId, (JSON.parse(r.body) as { status: string }).status]));
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected));
    expect(hook.received).toHaveLength(expected.size);
    expect(hook.received.every((r) => signatureValid(r))).toBe(true);
  }, 30_000);

  it('a requeued job is notified again when it finishes again, under a new delivery', async () => {
    const hook = await receiver();
    const api = await startInstance(hook.host);
    const jobId = await enqueue(api, { callbackUrl: hook.url });
    expect((await call(api, 'POST', `/jobs/${jobId}/cancel`)).body.status).toBe('cancelled');
    await waitFor(async () => ((await callbackOf(api, jobId))?.status === 'delivered' ? true : undefined), { what: 'the first delivery' });
    expect((await call(api, 'POST', `/admin/jobs/${jobId}/requeue`, undefined, tokenFor('admin', 'ops'))).status).toBe(200);
    expect(await callbackOf(api, jobId)).toBeNull();
    await runToSuccess(api, jobId);
    await waitFor(() => (hook.received.length === 2 ? true : undefined), { what: 'the second delivery' });
    expect(hook.received.map((r) => (JSON.parse(r.body) as { status: string }).status)).toEqual(['cancelled', 'succeeded']);
    expect(hook.received[0]!.headers['x-jobs-delivery']).not.toBe(hook.received[1]!.headers['x-jobs-delivery']);
  });
});
