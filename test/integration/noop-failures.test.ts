import request from 'supertest';

import { JobsClient } from '../../src/client/jobs-client';
import type { JobWire } from '../../src/client/types';
import { JOB_TYPES } from '../../src/jobs/job-types';
import { JobRegistry } from '../../src/jobs/registry';
import type { JobHandler } from '../../src/worker/handler';
import { createNoopHandler } from '../../src/worker/handlers/noop';
import { WorkerRunner } from '../../src/worker/runner';
import { buildTestApp, silentLogger } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { listen } from '../helpers/server';
import { bearer, tokenFor } from '../helpers/tokens';

// A real worker runner against the API over HTTP; backoff shortened per environment, as an operator would.
const db = useTestDatabase();
let app: ReturnType<typeof buildTestApp>;
let server: Awaited<ReturnType<typeof listen>>;
let runner: WorkerRunner;
const admin = bearer('admin');

beforeAll(async () => {
  const registry = new JobRegistry(JOB_TYPES, { noop: { backoffBaseSeconds: 0.05, backoffCapSeconds: 0.1 } });
  app = buildTestApp(db, { registry, reclaimIntervalMs: 0 });
  server = await listen(app);
  runner = new WorkerRunner({
    api: new JobsClient({ baseUrl: server.baseUrl, token: tokenFor('worker', 'noop-failures'), workerId: 'noop-failure-worker' }),
    handlers: new Map<string, JobHandler>([['noop', createNoopHandler() as JobHandler]]),
    logger: silentLogger,
    concurrency: 4,
    shutdownGraceMs: 1_000,
    pollMinMs: 20,
    pollMaxMs: 50,
  });
  runner.start();
});

afterAll(async () => {
  await runner.stop();
  await server.close();
});

async function finished(jobId: string, status: JobWire['status']): Promise<JobWire> {
  return waitFor(
    async () => {
      const res = await request(app).get(`/jobs/${jobId}`).set(admin);
      return res.body.status === status ? (res.body as JobWire) : undefined;
    },
    { timeoutMs: 15_000, what: `${jobId} to be ${status}` },
  );
}

async function enqueue(payload: Record<string, unknown>): Promise<string> {
  const res = await request(app).post('/jobs').set(bearer('service')).send({ type: 'noop', payload });
  expect(res.status).toBe(201);
  return res.body.jobId as string;
}

describe('noop with fail on demand', () => {
  it('fail: "retryable" fails every attempt with backoff, ends in the dead letter, and fails again after a requeue', async () => {
    const jobId = await enqueue({ fail: 'retryable' });
    const dead = await finished(jobId, 'dlq');
    expect(dead.attempts.map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed']);
    expect(dead.lastError).toMatchObject({ code: 'handler_error', message: 'noop failed as asked (fail: "retryable", attempt 3)' });

    const requeued = await request(app).post(`/admin/jobs/${jobId}/requeue`).set(admin);
    expect(requeued.body).toEqual({ jobId, status: 'queued' });
    const again = await finished(jobId, 'dlq');
    // A fresh attempt budget; the history keeps the first three.
    expect(again.attempts).toHaveLength(6);
  });

  it('fail: "permanent" fails once, with no retry', async () => {
    const jobId = await enqueue({ fail: 'permanent', sleepMs: 10 });
    const failed = await finished(jobId, 'failed');
    expect(failed.attempts.map((a) => a.outcome)).toEqual(['failed']);
    expect(failed.lastError).toMatchObject({ code: 'failed_on_demand', message: 'noop failed as asked (fail: "permanent")' });
  });

  it('refuses any other fail value (422 payload_invalid naming the field)', async () => {
    const res = await request(app).post('/jobs').set(bearer('service')).send({ type: 'noop', payload: { fail: 'sometimes' } });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('payload_invalid');
    expect(JSON.stringify(res.body.error.details)).toContain('fail');
  });
});
