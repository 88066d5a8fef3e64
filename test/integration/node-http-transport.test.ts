import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { ConflictApiError, JobsClient, NetworkError, PermissionDeniedApiError, RateLimitedApiError, ValidationApiError } from '../../src/client';
import { nodeHttpTransport } from '../../src/worker/node-http-transport';
import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { listen } from '../helpers/server';
import { tokenFor } from '../helpers/tokens';

/**
 * The worker runtime's transport (node:http instead of fetch for calls with JSON bodies): the same
 * answers and the same typed errors as through fetch, against the real API over a socket.
 */
const db = useTestDatabase();
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  server = await listen(buildTestApp(db, { reclaimIntervalMs: 0 }));
});
afterAll(async () => {
  await server.close();
});

function clientFor(role: 'service' | 'worker', baseUrl = server.baseUrl, timeoutMs?: number): JobsClient {
  return new JobsClient({ baseUrl, token: tokenFor(role, `transport-${role}`), workerId: 'transport-worker', jsonTransport: nodeHttpTransport(), retry: { attempts: 1 }, ...(timeoutMs ? { timeoutMs } : {}) });
}

it('enqueues, leases, heartbeats and reports through it, as through fetch', async () => {
  const service = clientFor('service');
  const worker = clientFor('worker');
  const { jobId } = await service.enqueue({ type: 'noop', payload: {} });
  const lease = await worker.lease({ limit: 5, types: ['noop'] });
  const job = lease.jobs.find((j) => j.jobId === jobId)!;
  expect(job).toBeDefined();
  await worker.heartbeat(jobId, { leaseId: job.leaseId, progress: 50 });
  const batch = await worker.reportBatch({ reports: [{ jobId, leaseId: job.leaseId, outcome: 'succeeded', result: { ok: true } }] });
  expect(batch.results).toEqual([{ jobId, status: 'succeeded' }]);
  expect((await service.getJob(jobId)).status).toBe('succeeded');
});

it('turns error answers into the same typed errors: 403, 409, 422', async () => {
  const service = clientFor('service');
  const worker = clientFor('worker');
  await expect(service.getJob('job_000000000000000000000000')).rejects.toBeInstanceOf(PermissionDeniedApiError);
  await expect(service.enqueue({ type: 'noop', payload: { fail: 'sometimes' } } as never)).rejects.toBeInstanceOf(ValidationApiError);
  const { jobId } = await service.enqueue({ type: 'noop', payload: {} });
  const lease = await worker.lease({ limit: 50, types: ['noop'] });
  const job = lease.jobs.find((j) => j.jobId === jobId)!;
  await worker.succeed(jobId, { leaseId: job.leaseId });
  await expect(worker.succeed(jobId, { leaseId: job.leaseId })).rejects.toBeInstanceOf(ConflictApiError);
});

it('reads Retry-After from a 429, and fails with a NetworkError when nothing answers in time or the server is gone', async () => {
  let hang = false;
  const fake = createServer((req, res) => {
    if (hang) return; // never answers
    res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '7' });
    res.end(JSON.stringify({ error: { code: 'rate_limited', message: 'slow down' } }));
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  try {
    const limited = await clientFor('worker', baseUrl).lease({ limit: 1 }).catch((err: unknown) => err);
    expect(limited).toBeInstanceOf(RateLimitedApiError);
    expect((limited as RateLimitedApiError).retryAfterSeconds).toBe(7);
    hang = true;
    await expect(clientFor('worker', baseUrl, 200).lease({ limit: 1 })).rejects.toBeInstanceOf(NetworkError);
  } finally {
    fake.closeAllConnections();
    await new Promise((resolve) => fake.close(resolve));
  }
  await expect(clientFor('worker', baseUrl).lease({ limit: 1 })).rejects.toBeInstanceOf(NetworkError);
});

it('ends a long-poll when its signal is aborted', async () => {
  const worker = clientFor('worker');
  const stop = new AbortController();
  const started = Date.now();
  const call = worker.lease({ limit: 1, types: ['payout.execute'], waitSeconds: 20, signal: stop.signal });
  setTimeout(() => stop.abort(), 100);
  await expect(call).rejects.toBeInstanceOf(NetworkError);
  expect(Date.now() - started).toBeLessThan(10_000);
});
