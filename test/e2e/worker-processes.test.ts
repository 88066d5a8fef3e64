import sharp from 'sharp';

import type { ImageContentType } from '../../src/model/asset';
import { JobsClient } from '../../src/client/jobs-client';
import type { JobWire } from '../../src/client/types';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { makeImage } from '../fixtures/images';
import { waitFor } from '../helpers/poll';
import { startApiProcess, startWorkerProcess, type ServiceProcess } from '../helpers/processes';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

// Real processes: `npm run api` and `npm run worker` entry points on the suite's database server.
// Process start-up and a busy machine (the whole suite runs in parallel) need more than the default.
jest.setTimeout(120_000);
const db = useTestDatabase();
const processes: ServiceProcess[] = [];
let baseUrl = '';
let env: Record<string, string>;

beforeAll(async () => {
  env = {
    MONGODB_URI: testDatabaseUri(),
    MONGODB_DB_NAME: db.dbName,
    JWT_SECRET: TEST_JWT_SECRET,
    RECLAIM_INTERVAL_MS: '200',
    // Short leases and retries so a killed worker's jobs come back within seconds (per environment,
    // never by editing the registry).
    // maxAttempts is raised so that a machine too busy to heartbeat in time cannot exhaust a job.
    JOB_POLICY_OVERRIDES: JSON.stringify({ 'payout.execute': { timeoutSeconds: 3, maxAttempts: 30, backoffBaseSeconds: 0.1, backoffCapSeconds: 0.5 } }),
  };
  const started = await startApiProcess(env);
  processes.push(started.api);
  baseUrl = started.baseUrl;
});

// Each test starts its own workers; they stop after it so the next test's jobs go to its own.
const workers: ServiceProcess[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((p) => p.stop()));
});

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
});

function worker(workerId: string, extra: Record<string, string> = {}): ServiceProcess {
  const p = startWorkerProcess({
    ...env,
    JOBS_API_URL: baseUrl,
    WORKER_TOKEN: tokenFor('worker', 'e2e-workers'),
    WORKER_ID: workerId,
    WORKER_CONCURRENCY: '3',
    ...extra,
  });
  workers.push(p);
  return p;
}

const adminClient = () => new JobsClient({ baseUrl, token: tokenFor('admin', 'e2e-admin') });

async function api<T>(path: string, init: { method?: string; body?: BodyInit; contentType?: string; role?: 'admin' | 'service' } = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: { Authorization: `Bearer ${tokenFor(init.role ?? 'admin', 'e2e-admin')}`, ...(init.contentType ? { 'Content-Type': init.contentType } : {}) },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return { status: res.status, body: (res.headers.get('content-type')?.includes('json') ? await res.json() : Buffer.from(await res.arrayBuffer())) as T };
}

async function waitForJobs(jobIds: string[], done: (job: JobWire) => boolean, timeoutMs: number): Promise<JobWire[]> {
  const client = adminClient();
  let last: JobWire[] = [];
  try {
    return await waitFor(
      async () => {
        last = await Promise.all(jobIds.map((id) => client.getJob(id)));
        return last.every(done) ? last : undefined;
      },
      { timeoutMs, intervalMs: 250, what: `${jobIds.length} jobs to finish` },
    );
  } catch (err) {
    // Say where the jobs were stuck, so a slow or stuck run can be told apart.
    const byStatus = last.reduce<Record<string, number>>((acc, j) => ({ ...acc, [j.status]: (acc[j.status] ?? 0) + 1 }), {});
    throw new Error(`${(err as Error).message}; statuses: ${JSON.stringify(byStatus)}; next runs: ${last.filter((j) => !done(j)).map((j) => `${j.status}@${j.nextRunAt} lease→${String(j.leaseExpiresAt)}`).slice(0, 5).join(', ')}`);
  }
}

describe('API and worker processes', () => {
  it('two workers turn uploaded images into real thumbnails of the requested widths', async () => {
    const first = worker('thumb-worker-1', { WORKER_TYPES: 'thumbnail.create', WORKER_METRICS_PORT: '0' });
    worker('thumb-worker-2', { WORKER_TYPES: 'thumbnail.create' });
    const uploads: { assetId: string; sizes: number[] | undefined; width: number; height: number }[] = [];
    const formats: ImageContentType[] = ['image/png', 'image/jpeg', 'image/webp'];
    for (const [i, contentType] of [...formats, ...formats].entries()) {
      const width = 400 + i * 50;
      const height = 300;
      const bytes = await makeImage({ contentType, width, height });
      const res = await api<{ assetId: string }>('/assets', { method: 'POST', body: new Uint8Array(bytes), contentType, role: 'service' });
      expect(res.status).toBe(201);
      uploads.push({ assetId: res.body.assetId, sizes: i % 2 === 0 ? undefined : [64, 200], width, height });
    }
    const service = new JobsClient({ baseUrl, token: tokenFor('service', 'e2e-admin') });
    const jobIds = await Promise.all(
      uploads.map(async (u) => (await service.enqueue({ type: 'thumbnail.create', payload: { assetId: u.assetId, versionNumber: 1, ...(u.sizes ? { sizes: u.sizes } : {}) } })).jobId),
    );
    const jobs = await waitForJobs(jobIds, (j) => j.status === 'succeeded', 30_000);
    expect(new Set(jobs.map((j) => j.workerId)).size).toBeGreaterThanOrEqual(1);

    // The worker with WORKER_METRICS_PORT serves its own metrics, counting the jobs it ran.
    const metricsPort = (JSON.parse(await first.waitForLine(/"msg":"metrics server listening"/)) as { port: number }).port;
    const ranByFirst = jobs.filter((j) => j.workerId === 'thumb-worker-1').length;
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const counted = /worker_jobs_processed_total\{[^}]*type="thumbnail.create"[^}]*outcome="succeeded"[^}]*\} (\d+)/.exec(text);
    expect(Number(counted?.[1] ?? 0)).toBe(ranByFirst);

    for (const upload of uploads) {
      const meta = await api<{ processed: boolean; thumbnailAssetIds: string[]; contentType: string }>(`/assets/${upload.assetId}`);
      expect(meta.body.processed).toBe(true);
      const widths = upload.sizes ?? [320];
      expect(meta.body.thumbnailAssetIds).toHaveLength(widths.length);
      for (const [i, thumbId] of meta.body.thumbnailAssetIds.entries()) {
        const content = await api<Buffer>(`/assets/${thumbId}/content`);
        expect(content.status).toBe(200);
        const info = await sharp(content.body).metadata();
        expect(info.width).toBe(widths[i]);
        expect(info.height).toBe(Math.round((upload.height * widths[i]!) / upload.width));
      }
    }
  });

  it('pays every escrow exactly once with provider failures injected and a worker killed mid-batch', async () => {
    const escrowIds: string[] = [];
    for (let i = 0; i < 30; i += 1) {
      const res = await api<{ escrowId: string }>('/escrows', {
        method: 'POST',
        body: JSON.stringify({ batchId: 'batch_e2e', amount: 1_000 + i, currency: 'EUR', payee: `acct_payee_${i}` }),
        contentType: 'application/json',
      });
      expect(res.status).toBe(201);
      escrowIds.push(res.body.escrowId);
    }
    const failing = { SANDBOX_FAILURE_RATE: '0.3', WORKER_TYPES: 'payout.execute' };
    // The doomed worker starts alone, so it is sure to be mid-batch when it is frozen and killed.
    const doomed = worker('payout-worker-doomed', failing);
    const service = new JobsClient({ baseUrl, token: tokenFor('service', 'e2e-admin') });
    const jobIds = await Promise.all(escrowIds.map(async (escrowId) => (await service.enqueue({ type: 'payout.execute', payload: { batchId: 'batch_e2e', escrowId } })).jobId));

    // Kill one worker while it holds leases: freeze it (SIGSTOP), check it holds some, then SIGKILL.
    await doomed.waitForLine(/"msg":"escrow paid"/, 20_000);
    const jobsCollection = db.connection.collection('jobs');
    let stranded = 0;
    const leasedByDoomed = () => jobsCollection.countDocuments({ status: 'leased', workerId: 'payout-worker-doomed' });
    await waitFor(
      async () => {
        doomed.signal('SIGSTOP');
        // Reports already on the wire still land while it is frozen: wait until the count settles.
        let previous = -1;
        stranded = await leasedByDoomed();
        while (stranded !== previous) {
          previous = stranded;
          await new Promise((resolve) => setTimeout(resolve, 150));
          stranded = await leasedByDoomed();
        }
        if (stranded > 0) return true;
        doomed.signal('SIGCONT');
        return undefined;
      },
      // Between tries it runs freely for a while, so it can lease again.
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    doomed.signal('SIGKILL');
    expect((await doomed.exited).signal).toBe('SIGKILL');
    worker('payout-worker-steady', failing);
    worker('payout-worker-late', failing);

    const jobs = await waitForJobs(jobIds, (j) => j.status === 'succeeded', 90_000);
    expect(jobs.every((j) => j.status === 'succeeded')).toBe(true);
    // The killed worker's leases expired and were reclaimed; its late reports never came.
    const expired = jobs.flatMap((j) => j.attempts).filter((a) => a.workerId === 'payout-worker-doomed' && a.outcome === 'expired');
    expect(expired.length).toBe(stranded);

    const transfers = await db.connection.collection('sandbox_payout_transfers').find({}).toArray();
    const perKey = new Map<string, number>();
    for (const t of transfers) perKey.set(String(t.idempotencyKey), (perKey.get(String(t.idempotencyKey)) ?? 0) + 1);
    expect(perKey.size).toBe(30);
    expect([...perKey.values()].every((n) => n === 1)).toBe(true);
    const escrows = await db.connection.collection('escrows').find({ _id: { $in: escrowIds as unknown as never[] } }).toArray();
    expect(escrows).toHaveLength(30);
    for (const escrow of escrows) {
      expect(escrow.status).toBe('paid');
      const transfer = transfers.find((t) => t.idempotencyKey === `escrow:${String(escrow._id)}`);
      expect(escrow.transferId).toBe(transfer?._id);
    }
  });

  it('on SIGTERM a worker finishes its running job, reports it and exits 0', async () => {
    // A job of a few seconds: seven large thumbnails, all below the source width (thumbnails never enlarge).
    const bytes = await makeImage({ contentType: 'image/jpeg', width: 4_000, height: 3_000 });
    const upload = await api<{ assetId: string }>('/assets', { method: 'POST', body: new Uint8Array(bytes), contentType: 'image/jpeg', role: 'service' });
    const service = new JobsClient({ baseUrl, token: tokenFor('service', 'e2e-admin') });
    const sizes = [2_600, 2_800, 3_000, 3_200, 3_400, 3_600, 3_800];
    const { jobId } = await service.enqueue({ type: 'thumbnail.create', payload: { assetId: upload.body.assetId, versionNumber: 1, sizes } });
    const graceful = worker('graceful-worker', { WORKER_TYPES: 'thumbnail.create', WORKER_SHUTDOWN_GRACE_MS: '60000' });
    await waitFor(async () => ((await adminClient().getJob(jobId)).status === 'leased' ? true : undefined), { timeoutMs: 20_000, intervalMs: 20 });
    graceful.signal('SIGTERM');
    expect(await graceful.exited).toEqual({ code: 0, signal: null });
    const job = await adminClient().getJob(jobId);
    expect(job.status).toBe('succeeded');
    expect(job.leaseExpiresAt).toBeNull();
    expect(job.attempts.map((a) => a.outcome)).toEqual(['succeeded']);
    expect(graceful.lines.some((l) => l.includes('"msg":"shutting down"'))).toBe(true);
  });
});
