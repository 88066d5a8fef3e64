import { JobsClient } from '../../src/client/jobs-client';
import type { JobWire } from '../../src/client/types';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { startApiProcess, startWorkerProcess, type ServiceProcess } from '../helpers/processes';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * Checkpoints across a crash, with real processes: a worker runs a resumable job (noop with
 * `steps`, which saves a checkpoint after each step), is killed with SIGKILL mid-way, its lease is
 * reclaimed, and the next worker's lease carries the checkpoint: the job resumes where it stopped.
 */
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
    // A short lease, so the killed worker's job comes back within seconds (a run may take one lease at most).
    JOB_POLICY_OVERRIDES: JSON.stringify({ noop: { timeoutSeconds: 4, maxAttempts: 5 } }),
  };
  const started = await startApiProcess(env);
  processes.push(started.api);
  baseUrl = started.baseUrl;
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
});

function worker(workerId: string): ServiceProcess {
  const p = startWorkerProcess({ ...env, JOBS_API_URL: baseUrl, WORKER_TOKEN: tokenFor('worker', 'checkpoint-workers'), WORKER_ID: workerId, WORKER_CONCURRENCY: '1', WORKER_LEASE_WAIT_SECONDS: '1' });
  processes.push(p);
  return p;
}

it('a checkpoint survives a worker SIGKILL and reaches the next lease: the job resumes after the last saved step', async () => {
  const admin = new JobsClient({ baseUrl, token: tokenFor('admin', 'checkpoint-admin') });
  const service = new JobsClient({ baseUrl, token: tokenFor('service', 'checkpoint-service') });
  // 10 steps of 300 ms: 3 s in all, within the 4 s a run may take.
  const { jobId } = await service.enqueue({ type: 'noop', payload: { sleepMs: 3_000, steps: 10 } });

  const first = worker('checkpoint-worker-1');
  // Killed once a few steps are saved (read from the job document, as any client would).
  const saved = await waitFor(
    async () => {
      const job = await admin.getJob(jobId);
      const step = (job.checkpoint as { step?: number } | null)?.step ?? 0;
      return job.status === 'leased' && step >= 3 ? step : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'the first worker to save three steps' },
  );
  first.signal('SIGKILL');
  await first.exited;
  const atKill = ((await admin.getJob(jobId)).checkpoint as { step: number }).step;
  expect(atKill).toBeGreaterThanOrEqual(saved);

  worker('checkpoint-worker-2');
  const done = await waitFor(
    async () => {
      const job = await admin.getJob(jobId);
      return job.status === 'succeeded' ? job : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200, what: 'the job to succeed on the second worker' },
  );
  const attempts = (done as JobWire).attempts;
  expect(attempts.map((a) => [a.workerId, a.outcome])).toEqual([
    ['checkpoint-worker-1', 'expired'],
    ['checkpoint-worker-2', 'succeeded'],
  ]);
  // The second run was handed the checkpoint the first saved last, and resumed after it.
  expect(done.result).toEqual({ sleptMs: 3_000, resumedFrom: atKill });
  expect(done.checkpoint).toEqual({ step: 10 });
});
