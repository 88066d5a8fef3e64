import type { Express } from 'express';

import { ConflictApiError, JobsApiError, JobsClient, NotFoundApiError, PermissionDeniedApiError, ValidationApiError } from '../../src/client';
import { CLIENT_OPERATIONS } from '../../src/client/operations';
import { ROUTE_LIST, ROUTES, type OperationId } from '../../src/contract/routes';
import { makeImage } from '../fixtures/images';
import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { listen } from '../helpers/server';
import { tokenFor } from '../helpers/tokens';

/**
 * The client (src/client, published as @jobs/client) against the real API over a socket: its table
 * of operations is the route table's, and each of its methods calls its route and gets the answer
 * the contract's schema describes. test/e2e/client-package.test.ts does the same from the packed
 * package.
 */

const db = useTestDatabase();
let app: Express;
let server: Awaited<ReturnType<typeof listen>>;
/** `METHOD /path` of every request the clients of this file sent. */
const sent: { method: string; path: string }[] = [];

const recordingFetch: typeof fetch = (input, init) => {
  sent.push({ method: init?.method ?? 'GET', path: new URL(String(input)).pathname });
  return fetch(input, init);
};

function clientFor(role: 'admin' | 'service' | 'worker', sub: string): JobsClient {
  return new JobsClient({ baseUrl: server.baseUrl, token: tokenFor(role, sub), workerId: `${sub}-worker`, fetch: recordingFetch, retry: { attempts: 1 } });
}

/** The route a request went to, as the app matches it (table order: /jobs/lease before /jobs/:jobId). */
function operationOf(request: { method: string; path: string }): OperationId | undefined {
  return ROUTE_LIST.find(
    ({ route }) => route.method.toUpperCase() === request.method && new RegExp(`^${route.path.replace(/:[A-Za-z]+/g, '[^/]+')}$`).test(request.path),
  )?.operationId;
}

beforeAll(async () => {
  app = buildTestApp(db, { reclaimIntervalMs: 0 });
  server = await listen(app);
});

afterAll(async () => {
  await server.close();
});

describe("the client's table of operations", () => {
  it('names every route of the contract with its method and path, and a client method for each', () => {
    expect(Object.keys(CLIENT_OPERATIONS).sort()).toEqual(Object.keys(ROUTES).sort());
    for (const [operationId, operation] of Object.entries(CLIENT_OPERATIONS)) {
      if (operation === null) {
        // Pages a browser opens, not calls a service makes.
        expect(['docs', 'dashboard', 'dashboardContract']).toContain(operationId);
        continue;
      }
      const route = ROUTES[operationId as OperationId];
      expect({ operationId, method: operation.method, path: operation.path }).toEqual({ operationId, method: route.method.toUpperCase(), path: route.path });
      expect(typeof JobsClient.prototype[operation.clientMethod]).toBe('function');
    }
  });
});

describe('every client method against the real API', () => {
  it('jobs, workers, admin, schedules, escrows, assets and probes: each call reaches its route and answers per its schema', async () => {
    const service = clientFor('service', 'client-service');
    const worker = clientFor('worker', 'client-worker');
    const admin = clientFor('admin', 'client-admin');

    // Jobs: typed enqueue, idempotent repeat, batch, read, cancel.
    const first = await service.enqueue({ type: 'noop', payload: { sleepMs: 1 }, idempotencyKey: 'client-test-1', priority: 70 });
    expect(first).toMatchObject({ type: 'noop', status: 'queued', created: true, attempt: 0 });
    expect(await service.enqueue({ type: 'noop', payload: { sleepMs: 1 }, idempotencyKey: 'client-test-1' })).toMatchObject({ jobId: first.jobId, created: false });
    const batch = await service.enqueueBatch({ jobs: [{ type: 'noop', payload: {} }, { type: 'noop', payload: { fail: 'permanent' } }] });
    expect(batch).toMatchObject({ created: 2, existing: 0, rejected: 0 });
    const later = await service.enqueue({ type: 'noop', payload: {}, scheduleAt: '2999-01-01T00:00:00Z' });
    expect(ROUTES.getJob.responses[200].json.parse(await service.getJob(later.jobId))).toMatchObject({ jobId: later.jobId, status: 'queued' });
    expect(await service.cancel(later.jobId)).toEqual({ jobId: later.jobId, status: 'cancelled' });

    // Workers: lease typed by type, heartbeat, succeed and fail.
    const leased = await worker.lease({ types: ['noop'], limit: 10 });
    expect(ROUTES.leaseJobs.responses[200].json.parse(leased).jobs).toHaveLength(3);
    const [a, b, c] = leased.jobs;
    expect(await worker.heartbeat(a!.jobId, { leaseId: a!.leaseId, progress: 50 })).toMatchObject({ jobId: a!.jobId, cancelRequested: false });
    // A result file: streamed up by the leaseholder, downloaded by the owner.
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('a,b\n');
      yield new TextEncoder().encode('1,2\n');
    }
    const file = await worker.uploadFile(a!.jobId, { leaseId: a!.leaseId, name: 'out.csv', contentType: 'text/csv', body: chunks() });
    expect(ROUTES.uploadResultFile.responses[201].json.parse(file)).toMatchObject({ name: 'out.csv', size: 8 });
    expect(await worker.succeed(a!.jobId, { leaseId: a!.leaseId, result: { ok: true }, durationMs: 3 })).toEqual({ jobId: a!.jobId, status: 'succeeded' });
    const download = await service.downloadFile(a!.jobId, file.fileId);
    expect({ contentType: download.contentType, size: download.size, text: await new Response(download.body).text() }).toEqual({ contentType: 'text/csv', size: 8, text: 'a,b\n1,2\n' });
    expect((await service.waitForResult(a!.jobId, { timeoutMs: 1_000 })).status).toBe('succeeded');
    expect(await worker.succeed(b!.jobId, { leaseId: b!.leaseId })).toEqual({ jobId: b!.jobId, status: 'succeeded' });
    expect(await worker.fail(c!.jobId, { leaseId: c!.leaseId, error: { message: 'no', code: 'boom', retryable: false } })).toMatchObject({ jobId: c!.jobId, status: 'failed' });
    // A repeated report on a closed lease is a typed 409.
    await expect(worker.succeed(a!.jobId, { leaseId: a!.leaseId })).rejects.toBeInstanceOf(ConflictApiError);

    // The caller's own jobs; bulk actions and the workers view.
    const own = ROUTES.listJobs.responses[200].json.parse(await service.listOwnJobs({ status: 'succeeded', type: ['noop'], per_page: 10 }));
    expect(own.meta.total).toBe(2);
    expect(await admin.bulkJobs({ action: 'requeue', filter: { status: 'failed', type: 'noop' }, dryRun: true })).toEqual({ action: 'requeue', dryRun: true, matched: 1, affected: 0, complete: true });
    expect(ROUTES.listWorkers.responses[200].json.parse(await admin.listWorkers()).data.map((w) => w.workerId)).toEqual(['client-worker-worker']);

    // Admin: listing with filters, stats, throughput, requeue.
    const page = await admin.listJobs({ status: ['succeeded'], type: 'noop', createdFrom: new Date(Date.now() - 60_000), per_page: 1, page: 1 });
    expect(ROUTES.listQueue.responses[200].json.parse(page)).toMatchObject({ meta: { page: 1, per_page: 1, total: 2, total_pages: 2 } });
    const stats = ROUTES.queueStats.responses[200].json.parse(await admin.stats());
    expect(stats.statusCounts).toMatchObject({ succeeded: 2, failed: 1, cancelled: 1 });
    const chart = ROUTES.throughput.responses[200].json.parse(await admin.throughput({ minutes: 5 }));
    expect(chart.buckets).toHaveLength(5);
    expect(await admin.requeue(c!.jobId)).toEqual({ jobId: c!.jobId, status: 'queued' });

    // Flow control: a snooze and a batch report on leases; the job types, changed and reset.
    const [again] = (await worker.lease({ types: ['noop'] })).jobs;
    expect(again!.jobId).toBe(c!.jobId);
    expect(await worker.snooze(again!.jobId, { leaseId: again!.leaseId, seconds: 60 })).toMatchObject({ jobId: c!.jobId, status: 'queued', attempt: 0 });
    const reported = await service.enqueue({ type: 'noop', payload: {} });
    const [toReport] = (await worker.lease({ types: ['noop'] })).jobs;
    expect(toReport!.jobId).toBe(reported.jobId);
    expect(await worker.reportBatch({ reports: [{ jobId: toReport!.jobId, leaseId: toReport!.leaseId, outcome: 'succeeded', durationMs: 2 }] })).toEqual({
      results: [{ jobId: reported.jobId, status: 'succeeded' }],
    });
    expect(ROUTES.listJobTypes.responses[200].json.parse(await admin.listTypes()).data.map((t) => t.type)).toEqual(['thumbnail.create', 'payout.execute', 'noop']);
    expect(await admin.updateType('noop', { rateLimit: { jobs: 100, perSeconds: 1 } })).toMatchObject({ type: 'noop', policy: { rateLimit: { jobs: 100, perSeconds: 1 } } });
    expect((await admin.updateType('noop', { rateLimit: null })).overrides).toEqual({});

    // Schedules: create, list, read, pause, delete.
    const created = await admin.createSchedule({ name: 'client-nightly', type: 'noop', payload: { sleepMs: 5 }, cron: '0 3 * * *', timeZone: 'Europe/Berlin' });
    expect(ROUTES.createSchedule.responses[201].json.parse(created)).toMatchObject({ name: 'client-nightly', paused: false });
    expect((await admin.listSchedules()).data.map((s) => s.name)).toEqual(['client-nightly']);
    expect((await admin.getSchedule('client-nightly')).cron).toBe('0 3 * * *');
    expect(await admin.updateSchedule('client-nightly', { paused: true })).toMatchObject({ paused: true, nextRunAt: null });
    expect(await admin.updateSchedule('client-nightly', { type: 'payout.execute', payload: { batchId: 'b', escrowId: 'e' } })).toMatchObject({ type: 'payout.execute' });
    await admin.deleteSchedule('client-nightly');
    await expect(admin.getSchedule('client-nightly')).rejects.toBeInstanceOf(NotFoundApiError);

    // Escrows: create, list, read.
    const escrow = await admin.createEscrow({ batchId: 'client-batch', amount: 1250, currency: 'EUR', payee: 'acct_client' });
    expect(ROUTES.createEscrow.responses[201].json.parse(escrow)).toMatchObject({ status: 'held', amount: 1250 });
    expect((await admin.listEscrows({ per_page: 5 })).data.map((e) => e.escrowId)).toEqual([escrow.escrowId]);
    expect(await admin.getEscrow(escrow.escrowId)).toEqual(escrow);

    // Assets: upload from bytes, a new version from a Blob and another asset from a stream; read both.
    const png = await makeImage({ contentType: 'image/png', width: 40, height: 30 });
    const jpeg = await makeImage({ contentType: 'image/jpeg', width: 20, height: 20 });
    const receipt = await service.uploadAsset({ body: new Uint8Array(png), contentType: 'image/png', filename: 'client.png' });
    expect(receipt).toMatchObject({ versionNumber: 1, contentType: 'image/png', size: png.length });
    expect(await service.uploadAssetVersion(receipt.assetId, { body: new Blob([new Uint8Array(jpeg)]), contentType: 'image/jpeg' })).toMatchObject({
      assetId: receipt.assetId,
      versionNumber: 2,
      size: jpeg.length,
    });
    const streamed = await service.uploadAsset({ body: new Blob([new Uint8Array(png)]).stream(), contentType: 'image/png' });
    expect(streamed.size).toBe(png.length);
    expect(ROUTES.getAsset.responses[200].json.parse(await worker.getAsset(receipt.assetId))).toMatchObject({ filename: 'client.png', versionNumber: 2 });
    const content = await worker.getAssetContent(receipt.assetId);
    expect({ contentType: content.contentType, versionNumber: content.versionNumber }).toEqual({ contentType: 'image/jpeg', versionNumber: 2 });
    expect(Buffer.from(content.bytes).equals(jpeg)).toBe(true);

    // Probes, identity, metrics and the document.
    expect(await service.health()).toEqual({ status: 'ok' });
    expect(await service.ready()).toEqual({ status: 'ready' });
    expect(await service.whoami()).toEqual({ sub: 'client-service', role: 'service' });
    expect(await service.metrics()).toContain('jobs_enqueued_total');
    expect((await service.openApiDocument()).openapi).toBe('3.1.0');

    // Every route the client has a method for was called through that method.
    const called = new Set(sent.map(operationOf));
    const expected = Object.entries(CLIENT_OPERATIONS).flatMap(([operationId, operation]) => (operation ? [operationId] : []));
    expect(expected.filter((operationId) => !called.has(operationId as OperationId))).toEqual([]);
  });

  it('refusals come back as the typed error of their status, with the code, message and details of the answer', async () => {
    const service = clientFor('service', 'client-refused');
    const worker = clientFor('worker', 'client-refused');
    const invalid = await service.enqueue({ type: 'noop', payload: { sleepMs: -1 } }).catch((err: unknown) => err);
    expect(invalid).toBeInstanceOf(ValidationApiError);
    expect(invalid).toMatchObject({ status: 422, code: 'payload_invalid', details: [{ field: 'payload.sleepMs', message: expect.any(String) }] });
    const denied = await worker.enqueue({ type: 'noop', payload: {} }).catch((err: unknown) => err);
    expect(denied).toBeInstanceOf(PermissionDeniedApiError);
    expect(denied).toBeInstanceOf(JobsApiError);
    expect(denied).toMatchObject({ status: 403, code: 'permission_denied' });
    await expect(clientFor('admin', 'client-refused').getJob(`job_${'0'.repeat(24)}`)).rejects.toMatchObject({ status: 404, code: 'job_not_found' });
  });
});
