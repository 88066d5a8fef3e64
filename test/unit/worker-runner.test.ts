import pino from 'pino';

import { ConflictApiError } from '../../src/client/errors';
import type { HeartbeatResponse, LeasedJobWire, LeaseResponse } from '../../src/client/types';
import { PermanentJobError, RetryableJobError, type JobHandler } from '../../src/worker/handler';
import { PollBackoff } from '../../src/worker/poll-backoff';
import { WorkerRunner, type JobFinishedEvent, type WorkerApi } from '../../src/worker/runner';
import { waitFor } from '../helpers/poll';

const logger = pino({ level: 'silent' });

/** An in-memory stand-in for the jobs API that records every call the runner makes. */
class FakeApi implements WorkerApi {
  queue: LeasedJobWire[] = [];
  leaseCalls: { limit: number }[] = [];
  succeeded: { jobId: string; result: unknown; durationMs?: number }[] = [];
  failed: { jobId: string; error: { message: string; code?: string; retryable?: boolean } }[] = [];
  heartbeats: { jobId: string; progress?: number }[] = [];
  cancelRequested = new Set<string>();
  lostLeases = new Set<string>();
  leaseError: Error | undefined;
  leaseMs = 3_000;

  add(count: number, type = 'test.job', payload: unknown = {}): void {
    for (let i = 0; i < count; i += 1) {
      this.queue.push({ jobId: `job_${this.queue.length + this.succeeded.length + i}_${type}`, type, payload, attempt: 1, leaseId: `lease_${i}`, leaseExpiresAt: '' });
    }
  }

  async lease(params: { limit: number }): Promise<LeaseResponse> {
    this.leaseCalls.push({ limit: params.limit });
    if (this.leaseError) throw this.leaseError;
    const now = Date.now();
    const jobs = this.queue.splice(0, params.limit).map((j) => ({ ...j, leaseExpiresAt: new Date(now + this.leaseMs).toISOString() }));
    return { leasedAt: new Date(now).toISOString(), jobs };
  }

  async heartbeat(jobId: string, body: { leaseId: string; progress?: number }): Promise<HeartbeatResponse> {
    this.heartbeats.push({ jobId, ...(body.progress === undefined ? {} : { progress: body.progress }) });
    if (this.lostLeases.has(jobId)) throw new ConflictApiError(409, 'lease_conflict', 'lost');
    return { jobId, leaseExpiresAt: new Date(Date.now() + this.leaseMs).toISOString(), cancelRequested: this.cancelRequested.has(jobId) };
  }

  async succeed(jobId: string, body: { result?: unknown; durationMs?: number }): Promise<unknown> {
    this.succeeded.push({ jobId, result: body.result, ...(body.durationMs === undefined ? {} : { durationMs: body.durationMs }) });
    return {};
  }

  async fail(jobId: string, body: { error: { message: string; code?: string; retryable?: boolean } }): Promise<unknown> {
    this.failed.push({ jobId, error: body.error });
    return {};
  }
}

function runner(api: FakeApi, handler: JobHandler, overrides: Partial<ConstructorParameters<typeof WorkerRunner>[0]> = {}) {
  const finished: JobFinishedEvent[] = [];
  const r = new WorkerRunner({
    api,
    handlers: new Map([['test.job', handler]]),
    logger,
    concurrency: 4,
    shutdownGraceMs: 1_000,
    pollMinMs: 5,
    pollMaxMs: 40,
    onJobFinished: (e) => finished.push(e),
    ...overrides,
  });
  return { r, finished };
}

const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));

describe('PollBackoff', () => {
  it('doubles from min to max while polls come back empty and resets when work arrives', () => {
    const backoff = new PollBackoff({ minMs: 100, maxMs: 1_000, random: () => 1 });
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });

  it('jitters each wait down to three quarters', () => {
    const backoff = new PollBackoff({ minMs: 100, maxMs: 1_000, random: () => 0 });
    expect(backoff.next()).toBe(75);
  });
});

describe('WorkerRunner', () => {
  it('backs off while the queue is empty instead of spinning', async () => {
    const api = new FakeApi();
    const waits: number[] = [];
    const { r } = runner(api, async () => 'ok', {
      random: () => 1,
      sleep: async (ms) => {
        waits.push(ms);
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
    r.start();
    await waitFor(() => (waits.length >= 6 ? true : undefined));
    await r.stop();
    expect(waits.slice(0, 6)).toEqual([5, 10, 20, 40, 40, 40]);
  });

  it('backs off the same way when leasing fails, and recovers', async () => {
    const api = new FakeApi();
    api.leaseError = new Error('connection refused');
    const waits: number[] = [];
    const { r, finished } = runner(api, async () => 'ok', {
      random: () => 1,
      sleep: async (ms) => {
        waits.push(ms);
        if (waits.length === 3) {
          api.leaseError = undefined;
          api.add(1);
        }
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
    r.start();
    await waitFor(() => (finished.length === 1 ? true : undefined));
    await r.stop();
    expect(waits.slice(0, 3)).toEqual([5, 10, 20]);
    expect(api.succeeded).toHaveLength(1);
  });

  it('leases only up to its free capacity and reports each result', async () => {
    const api = new FakeApi();
    api.add(10);
    let concurrent = 0;
    let maxConcurrent = 0;
    const { r, finished } = runner(api, async (ctx) => {
      concurrent += 1;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await new Promise((resolve) => setTimeout(resolve, 5));
      concurrent -= 1;
      return { doubled: ctx.jobId };
    });
    r.start();
    await waitFor(() => (finished.length === 10 ? true : undefined));
    await r.stop();
    expect(maxConcurrent).toBeLessThanOrEqual(4);
    expect(api.leaseCalls.every((c) => c.limit >= 1 && c.limit <= 4)).toBe(true);
    expect(api.succeeded.map((s) => s.result)).toEqual(api.succeeded.map((s) => ({ doubled: s.jobId })));
    expect(api.succeeded.every((s) => typeof s.durationMs === 'number')).toBe(true);
  });

  it.each<[string, () => Error, { code: string; retryable: boolean }]>([
    ['a PermanentJobError', () => new PermanentJobError('bad input', 'bad_input'), { code: 'bad_input', retryable: false }],
    ['a RetryableJobError', () => new RetryableJobError('busy', 'provider_busy'), { code: 'provider_busy', retryable: true }],
    ['any other error', () => new TypeError('oops'), { code: 'handler_error', retryable: true }],
  ])('reports %s as a failure with its code and retryability', async (_name, makeError, expected) => {
    const api = new FakeApi();
    api.add(1);
    const { r, finished } = runner(api, async () => {
      throw makeError();
    });
    r.start();
    await waitFor(() => (finished.length === 1 ? true : undefined));
    await r.stop();
    expect(api.failed).toEqual([{ jobId: expect.any(String), error: expect.objectContaining(expected) }]);
  });

  it('aborts a job that runs past its lease and reports a retryable timeout', async () => {
    const api = new FakeApi();
    api.leaseMs = 1_000;
    api.add(1);
    let sawAbort = false;
    const { r, finished } = runner(api, async (ctx) => {
      await untilAborted(ctx.signal).catch(() => {
        sawAbort = true;
      });
      return 'too late';
    });
    r.start();
    await waitFor(() => (finished.length === 1 ? true : undefined), { timeoutMs: 5_000 });
    await r.stop();
    expect(sawAbort).toBe(true);
    expect(api.succeeded).toEqual([]);
    expect(api.failed[0]!.error).toMatchObject({ code: 'timeout', retryable: true });
  });

  it('heartbeats with progress and stops a job whose heartbeat says cancelRequested', async () => {
    const api = new FakeApi();
    api.leaseMs = 1_000; // heartbeats every 333 ms
    api.add(1);
    const { r, finished } = runner(api, async (ctx) => {
      ctx.reportProgress(30);
      api.cancelRequested.add(ctx.jobId);
      return untilAborted(ctx.signal);
    });
    r.start();
    await waitFor(() => (finished.length === 1 ? true : undefined), { timeoutMs: 5_000 });
    await r.stop();
    expect(api.heartbeats[0]).toMatchObject({ progress: 30 });
    expect(api.failed[0]!.error).toMatchObject({ code: 'cancelled', retryable: false });
  });

  it('abandons a job without reporting when its heartbeat says the lease is lost', async () => {
    const api = new FakeApi();
    api.leaseMs = 1_000;
    api.add(1);
    const { r, finished } = runner(api, async (ctx) => {
      api.lostLeases.add(ctx.jobId);
      return untilAborted(ctx.signal);
    });
    r.start();
    await waitFor(() => (finished.length === 1 ? true : undefined), { timeoutMs: 5_000 });
    await r.stop();
    expect(finished[0]!.outcome).toBe('abandoned');
    expect(api.succeeded).toEqual([]);
    expect(api.failed).toEqual([]);
  });

  it('on stop, stops leasing and lets running jobs finish within the grace period', async () => {
    const api = new FakeApi();
    api.add(2);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { r } = runner(api, async () => {
      await gate;
      return 'finished';
    });
    r.start();
    await waitFor(() => (r.activeJobs === 2 ? true : undefined));
    const leaseCallsBefore = api.leaseCalls.length;
    const stopped = r.stop();
    api.add(5);
    release();
    await stopped;
    expect(api.succeeded).toHaveLength(2);
    expect(api.leaseCalls.length).toBe(leaseCallsBefore);
    expect(api.queue).toHaveLength(5);
  });

  it('after the grace period, aborts what still runs and fails it as retryable', async () => {
    const api = new FakeApi();
    api.leaseMs = 60_000;
    api.add(1);
    const { r } = runner(api, async (ctx) => untilAborted(ctx.signal), { shutdownGraceMs: 50 });
    r.start();
    await waitFor(() => (r.activeJobs === 1 ? true : undefined));
    await r.stop();
    expect(api.failed[0]!.error).toMatchObject({ code: 'worker_shutdown', retryable: true });
  });

  it('fails a job of a type it has no handler for, permanently', async () => {
    const api = new FakeApi();
    api.add(1, 'other.type');
    const { r, finished } = runner(api, async () => 'ok', { types: ['test.job', 'other.type'] });
    r.start();
    await waitFor(() => (finished.length === 1 ? true : undefined));
    await r.stop();
    expect(api.failed[0]!.error).toMatchObject({ code: 'no_handler', retryable: false });
  });
});

describe('full leases', () => {
  it('with a backlog, waits a little for capacity so lease calls carry fuller batches', async () => {
    const api = new FakeApi();
    api.add(60);
    let n = 0;
    // Jobs finish one by one, a few ms apart.
    const handler: JobHandler = () => new Promise((resolve) => setTimeout(resolve, 2 + ((n += 1) % 5)));
    const { r } = runner(api, handler, { concurrency: 10, leaseBatchTarget: 5, leaseLingerMs: 200 });
    r.start();
    await waitFor(() => (api.succeeded.length === 60 ? true : undefined));
    await r.stop();
    const limits = api.leaseCalls.map((c) => c.limit);
    // After the first full batch of 10, every call asked for at least the target.
    expect(limits[0]).toBe(10);
    expect(limits.slice(1, -1).every((limit) => limit >= 5)).toBe(true);
  });

  it('asks at once for a lone job when the queue is drained (no linger)', async () => {
    const api = new FakeApi();
    const { r } = runner(api, async () => 'ok', { concurrency: 10, leaseBatchTarget: 10, leaseLingerMs: 5_000 });
    r.start();
    await waitFor(() => (api.leaseCalls.length >= 1 ? true : undefined));
    api.add(1);
    const started = Date.now();
    await waitFor(() => (api.succeeded.length === 1 ? true : undefined));
    // Well under the 5 s linger: a drained queue means no backlog, so nothing waits.
    expect(Date.now() - started).toBeLessThan(2_000);
    await r.stop();
  });
});
