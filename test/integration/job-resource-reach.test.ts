import pino from 'pino';

import { createAssetService } from '../../src/assets/asset-service';
import { JobsClient } from '../../src/client/jobs-client';
import { createPayouts } from '../../src/payouts/create-payouts';
import { payoutIdempotencyKey } from '../../src/payouts/payout-service';
import { SandboxPaymentProvider } from '../../src/payouts/sandbox-provider';
import { createHandlers } from '../../src/worker/handlers';
import { WorkerRunner } from '../../src/worker/runner';
import { makeImage } from '../fixtures/images';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { call, leaseOver, serviceToken, startApiInstance, type ApiInstance } from '../helpers/instances';
import { waitFor } from '../helpers/poll';
import { tokenFor } from '../helpers/tokens';

/**
 * A job reaches only what its owner may (src/auth/access.ts rule 4): the worker may read every asset
 * and escrow, but a thumbnail.create or payout.execute naming a resource outside its enqueuer's reach
 * (another tenant's, another service's) is accepted like one naming a missing resource and then fails
 * exactly as that one does, with the resource untouched. The real API over a socket, the real worker
 * runtime with the real handlers, the real database.
 */
const db = useTestDatabase();
let api: ApiInstance;
const runners: WorkerRunner[] = [];
const sandbox = (): SandboxPaymentProvider => new SandboxPaymentProvider({ connection: db.connection });

const acmeService = serviceToken('svc-acme', 'acme');
const acmeOtherService = serviceToken('svc-acme-2', 'acme');
const globexService = serviceToken('svc-globex', 'globex');
const acmeAdmin = tokenFor('admin', 'admin-acme', { tenant: 'acme' });
const globexAdmin = tokenFor('admin', 'admin-globex', { tenant: 'globex' });
const MISSING_ASSET = 'asset_000000000000000000000000';
const MISSING_ESCROW = 'escrow_missing';

beforeAll(async () => {
  api = await startApiInstance(db, { reclaimIntervalMs: 0 });
});
afterAll(async () => {
  await api.close();
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop()));
});

/**
 * A worker process's runtime on `baseUrl` with the real handlers; `olderApi` strips `owner` from the
 * lease answers, as an API from before it was sent answers.
 */
function startWorker(params: { baseUrl?: string; olderApi?: boolean } = {}): void {
  const stripOwner: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (!params.olderApi || new URL(String(input)).pathname !== '/jobs/lease') return res;
    const body = (await res.json()) as { jobs: Record<string, unknown>[] };
    for (const job of body.jobs) delete job.owner;
    return new Response(JSON.stringify(body), { status: res.status, headers: { 'Content-Type': 'application/json' } });
  };
  const runner = new WorkerRunner({
    api: new JobsClient({ baseUrl: params.baseUrl ?? api.baseUrl, token: tokenFor('worker', 'reach-worker'), workerId: 'reach-worker-1', fetch: stripOwner }),
    handlers: createHandlers({ assets: createAssetService(db.connection), payouts: createPayouts({ connection: db.connection }).payouts }),
    logger: pino({ level: 'silent' }),
    concurrency: 4,
    shutdownGraceMs: 1_000,
    leaseWaitSeconds: 1,
  });
  runner.start();
  runners.push(runner);
}

async function uploadAsset(token: string): Promise<string> {
  const res = await fetch(`${api.baseUrl}/assets`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'image/png' },
    body: new Uint8Array(await makeImage({ contentType: 'image/png', width: 40, height: 30 })),
  });
  const body = (await res.json()) as { assetId: string };
  if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${JSON.stringify(body)}`);
  return body.assetId;
}

async function createEscrow(adminToken: string, escrowId: string): Promise<void> {
  const res = await call(api.baseUrl, { method: 'POST', path: '/escrows', token: adminToken, body: { escrowId, batchId: 'batch_reach', amount: 900, currency: 'EUR', payee: 'acct_reach' } });
  if (res.status !== 201) throw new Error(`escrow create answered ${res.status}: ${JSON.stringify(res.body)}`);
}

/** Enqueues and returns the answer with the job id taken out, to compare answers for different resources. */
async function enqueue(token: string, type: string, payload: Record<string, unknown>): Promise<{ jobId: string; answer: { status: number; body: Record<string, unknown> } }> {
  const res = await call(api.baseUrl, { method: 'POST', path: '/jobs', token, body: { type, payload } });
  const { jobId, nextRunAt: _nextRunAt, ...rest } = res.body as { jobId: string; nextRunAt: string };
  return { jobId, answer: { status: res.status, body: rest } };
}

interface Finished {
  status: string;
  attempt: number;
  lastError: { code: string; message: string } | null;
  result: unknown;
}

/** The job once it has finished (the worker ran it), as stored. */
function finished(jobId: string): Promise<Finished> {
  return waitFor(
    async () => {
      const job = await db.connection.collection('jobs').findOne({ _id: jobId as never });
      return job && ['succeeded', 'failed', 'dlq', 'cancelled'].includes(job.status as string) ? { status: job.status as string, attempt: job.attempt as number, lastError: job.lastError as Finished['lastError'], result: job.result } : undefined;
    },
    { what: `job ${jobId} to finish` },
  );
}

/** The finished job with `id` written as `as`, to compare a hidden resource's failure with a missing one's. */
function renamed(job: Finished, id: string, as: string): Finished {
  return JSON.parse(JSON.stringify(job).replaceAll(id, as)) as Finished;
}

async function assetState(assetId: string): Promise<{ processed: unknown; thumbnailAssetIds: unknown; thumbnails: number }> {
  const asset = await db.connection.collection('assets').findOne({ assetId });
  const thumbnails = await db.connection.collection('assets').countDocuments({ 'derivedFrom.assetId': assetId });
  return { processed: asset?.processed, thumbnailAssetIds: asset?.thumbnailAssetIds, thumbnails };
}

const thumbnailOf = (assetId: string): Record<string, unknown> => ({ assetId, versionNumber: 1, sizes: [16] });

describe('thumbnail.create acts only on assets its owner may read', () => {
  it.each([
    ["a service of another tenant naming tenant B's asset", acmeService, globexService],
    ["another service of the same tenant naming a service's asset", acmeOtherService, acmeService],
  ])('%s: accepted as for a missing asset, fails asset_not_found like it, and the asset stays unprocessed', async (_who, enqueuer, uploader) => {
    const victim = await uploadAsset(uploader);
    startWorker();

    const hidden = await enqueue(enqueuer, 'thumbnail.create', thumbnailOf(victim));
    const missing = await enqueue(enqueuer, 'thumbnail.create', thumbnailOf(MISSING_ASSET));
    expect(hidden.answer).toEqual(missing.answer);
    expect(hidden.answer.status).toBe(201);

    const hiddenEnd = await finished(hidden.jobId);
    const missingEnd = await finished(missing.jobId);
    expect(hiddenEnd).toMatchObject({ status: 'failed', lastError: { code: 'asset_not_found' } });
    expect(renamed(hiddenEnd, victim, MISSING_ASSET)).toEqual(missingEnd);
    expect(await assetState(victim)).toEqual({ processed: false, thumbnailAssetIds: [], thumbnails: 0 });
  });

  it("the owner's own asset is still processed", async () => {
    const own = await uploadAsset(acmeService);
    startWorker();
    const { jobId } = await enqueue(acmeService, 'thumbnail.create', thumbnailOf(own));
    expect(await finished(jobId)).toMatchObject({ status: 'succeeded', result: { assetId: own, thumbnailWidths: [16] } });
    expect(await assetState(own)).toMatchObject({ processed: true, thumbnails: 1 });
  });

  it('a worker on an older API (no owner in the lease) keeps processing as before', async () => {
    const other = await uploadAsset(globexService);
    startWorker({ olderApi: true });
    const { jobId } = await enqueue(acmeService, 'thumbnail.create', thumbnailOf(other));
    expect((await finished(jobId)).status).toBe('succeeded');
  });

  it("a tenant admin's schedule thumbnails its tenant's assets, and not another tenant's", async () => {
    const clock = new TestClock(Date.parse('2030-01-01T00:00:00.000Z'));
    const clocked = await startApiInstance(db, { reclaimIntervalMs: 0, clock });
    try {
      const ownTenant = await uploadAsset(acmeService);
      const otherTenant = await uploadAsset(globexService);
      for (const [name, assetId] of [
        ['acme-own', ownTenant],
        ['acme-other', otherTenant],
      ] as const) {
        const res = await call(clocked.baseUrl, { method: 'POST', path: '/admin/schedules', token: acmeAdmin, body: { name, type: 'thumbnail.create', payload: thumbnailOf(assetId), cron: '* * * * *' } });
        expect(res.status).toBe(201);
      }
      clock.advance(60_000);
      expect((await clocked.services.scheduler!.tick()).fired).toHaveLength(2);
      const jobIdOf = async (name: string): Promise<string> => String((await db.connection.collection('jobs').findOne({ createdBy: `schedule:${name}` }))!._id);

      startWorker({ baseUrl: clocked.baseUrl });
      expect(await finished(await jobIdOf('acme-own'))).toMatchObject({ status: 'succeeded', result: { assetId: ownTenant } });
      expect(await finished(await jobIdOf('acme-other'))).toMatchObject({ status: 'failed', lastError: { code: 'asset_not_found' } });
      expect(await assetState(ownTenant)).toMatchObject({ processed: true, thumbnails: 1 });
      expect(await assetState(otherTenant)).toEqual({ processed: false, thumbnailAssetIds: [], thumbnails: 0 });
    } finally {
      await Promise.all(runners.splice(0).map((r) => r.stop()));
      await clocked.close();
    }
  });
});

describe('payout.execute pays only escrows of its owner\'s tenant', () => {
  let escrowSeq = 0;
  const nextEscrowId = (): string => `escrow_reach_${(escrowSeq += 1)}`;

  it.each([
    ["a service of another tenant naming tenant B's escrow", acmeService],
    ["a service without a tenant naming a tenant's escrow", serviceToken('svc-global')],
  ])('%s: accepted as for a missing escrow, fails escrow_not_found like it, the escrow stays held and no transfer is made', async (_who, enqueuer) => {
    const escrowId = nextEscrowId();
    await createEscrow(globexAdmin, escrowId);
    startWorker();

    const hidden = await enqueue(enqueuer, 'payout.execute', { batchId: 'batch_reach', escrowId });
    const missing = await enqueue(enqueuer, 'payout.execute', { batchId: 'batch_reach', escrowId: MISSING_ESCROW });
    expect(hidden.answer).toEqual(missing.answer);
    expect(hidden.answer.status).toBe(201);

    const hiddenEnd = await finished(hidden.jobId);
    const missingEnd = await finished(missing.jobId);
    expect(hiddenEnd).toMatchObject({ status: 'failed', lastError: { code: 'escrow_not_found' } });
    expect(renamed(hiddenEnd, escrowId, MISSING_ESCROW)).toEqual(missingEnd);
    expect(await db.connection.collection('escrows').findOne({ _id: escrowId as never })).toMatchObject({ status: 'held', transferId: null });
    expect(await sandbox().findTransfer(payoutIdempotencyKey(escrowId))).toBeNull();
  });

  it("a service pays its own tenant's escrow (created by its tenant admin)", async () => {
    const escrowId = nextEscrowId();
    await createEscrow(acmeAdmin, escrowId);
    startWorker();
    const { jobId } = await enqueue(acmeService, 'payout.execute', { batchId: 'batch_reach', escrowId });
    const end = await finished(jobId);
    expect(end).toMatchObject({ status: 'succeeded', result: { escrowId, alreadyPaid: false } });
    const transfer = await sandbox().findTransfer(payoutIdempotencyKey(escrowId));
    expect(transfer?.transferId).toBe((end.result as { transferId: string }).transferId);
    expect(await db.connection.collection('escrows').findOne({ _id: escrowId as never })).toMatchObject({ status: 'paid', transferId: transfer?.transferId });
  });
});

describe('the lease answer names whom each job acts for', () => {
  it("its creator (sub, role, tenant), and for a schedule's job the schedule's owner", async () => {
    const clock = new TestClock(Date.parse('2031-01-01T00:00:00.000Z'));
    const clocked = await startApiInstance(db, { reclaimIntervalMs: 0, clock });
    try {
      const created = await Promise.all([
        enqueue(acmeService, 'noop', {}),
        enqueue(serviceToken('svc-global'), 'noop', {}),
        enqueue(tokenFor('admin', 'admin-global'), 'noop', {}),
      ]);
      expect((await call(clocked.baseUrl, { method: 'POST', path: '/admin/schedules', token: acmeAdmin, body: { name: 'acme-noop', type: 'noop', payload: {}, cron: '* * * * *' } })).status).toBe(201);
      clock.advance(60_000);
      await clocked.services.scheduler!.tick();

      const leased = await leaseOver(clocked.baseUrl, { workerId: 'owner-probe-1', limit: 10 });
      const ownerOf = new Map(leased.map((job) => [job.jobId, (job as unknown as { owner: unknown }).owner]));
      expect(created.map(({ jobId }) => ownerOf.get(jobId))).toEqual([
        { sub: 'svc-acme', role: 'service', tenant: 'acme' },
        { sub: 'svc-global', role: 'service', tenant: null },
        { sub: 'admin-global', role: 'admin', tenant: null },
      ]);
      const scheduled = await db.connection.collection('jobs').findOne({ createdBy: 'schedule:acme-noop' });
      // The job itself stays the schedule's (createdBy `schedule:<name>`); it acts for the admin.
      expect(scheduled).toMatchObject({ createdByRole: 'service', tenant: 'acme' });
      expect(ownerOf.get(String(scheduled!._id))).toEqual({ sub: 'admin-acme', role: 'admin', tenant: 'acme' });
    } finally {
      await clocked.close();
    }
  });
});
