import pino from 'pino';

import { ConflictApiError, NetworkError, RateLimitedApiError, UnavailableApiError, apiErrorFor } from '../../src/client/errors';
import type { HeartbeatResponse, LeaseResponse } from '../../src/client/types';
import { WorkerRunner, type JobFinishedEvent, type WorkerApi } from '../../src/worker/runner';
import { waitFor } from '../helpers/poll';

/**
 * How a worker rides out an API that is down (a restart, a database failover) or says "slow down":
 * reports are retried for up to a lease length instead of being dropped, and a lease call answered
 * 429 waits the API's Retry-After.
 */

const logger = pino({ level: 'silent' });

/** An API whose reports fail `failures` times (with `error`) before they land. */
class FlakyApi implements WorkerApi {
  served = false;
  reportCalls = 0;
  leaseCalls = 0;
  leaseError: Error | undefined;

  constructor(
    private readonly failures: number,
    private readonly error: () => Error,
    private readonly leaseMs = 2_000,
  ) {}

  async lease(): Promise<LeaseResponse> {
    this.leaseCalls += 1;
    if (this.leaseError) throw this.leaseError;
    const now = Date.now();
    if (this.served) return { leasedAt: new Date(now).toISOString(), jobs: [] };
    this.served = true;
    return {
      leasedAt: new Date(now).toISOString(),
      jobs: [{ jobId: 'job_1', type: 'test.job', payload: {}, attempt: 1, leaseId: 'lease_1', leaseExpiresAt: new Date(now + this.leaseMs).toISOString() }],
    };
  }

  async heartbeat(jobId: string): Promise<HeartbeatResponse> {
    return { jobId, leaseExpiresAt: new Date(Date.now() + this.leaseMs).toISOString(), cancelRequested: false };
  }

  async succeed(): Promise<unknown> {
    this.reportCalls += 1;
    if (this.reportCalls <= this.failures) throw this.error();
    return {};
  }

  async fail(): Promise<unknown> {
    return this.succeed();
  }
}

function start(api: FlakyApi, options: { now?: () => number; onSleep?: (ms: number) => void } = {}) {
  const finished: JobFinishedEvent[] = [];
  const runner = new WorkerRunner({
    api,
    handlers: new Map([['test.job', async () => 'done']]),
    logger,
    concurrency: 1,
    shutdownGraceMs: 1_000,
    pollMinMs: 5,
    pollMaxMs: 20,
    random: () => 1,
    ...(options.now ? { now: options.now } : {}),
    sleep: async (ms) => {
      options.onSleep?.(ms);
      await new Promise((resolve) => setImmediate(resolve));
    },
    onJobFinished: (event) => finished.push(event),
  });
  runner.start();
  return { runner, finished };
}

describe('a worker while the API is away', () => {
  it.each([
    ['unreachable (a restart)', () => new NetworkError('connect ECONNREFUSED')],
    ['answering 503 (its database is failing over)', () => new UnavailableApiError(503, 'unavailable', 'retry later')],
  ])('keeps reporting a finished job while the API is %s, and the report lands', async (_name, error) => {
    const api = new FlakyApi(5, error, 20_000);
    const sleeps: number[] = [];
    const { runner, finished } = start(api, { onSleep: (ms) => sleeps.push(ms) });
    const [event] = await waitFor(() => (finished.length > 0 ? finished : undefined));
    await runner.stop();
    expect(event!.outcome).toBe('succeeded');
    expect(api.reportCalls).toBe(6);
    // The waits between report tries grow (250 ms doubling, at most 2 s).
    expect(sleeps.filter((ms) => ms >= 250)).toEqual(expect.arrayContaining([250, 500, 1_000, 2_000]));
  });

  it('gives up after about one lease length, leaving the job to the lease expiry', async () => {
    let now = 0;
    const api = new FlakyApi(Number.POSITIVE_INFINITY, () => new NetworkError('connect ECONNREFUSED'), 2_000);
    // The clock moves by exactly the runner's waits.
    const { runner, finished } = start(api, {
      now: () => now,
      onSleep: (ms) => {
        now += ms;
      },
    });
    const [event] = await waitFor(() => (finished.length > 0 ? finished : undefined));
    await runner.stop();
    expect(event!.outcome).toBe('abandoned');
    // 250 + 500 + 1000 fit in the 2 s lease; the next wait would not.
    expect(api.reportCalls).toBe(4);
  });

  it('does not retry a refused report: a 409 means the lease is gone', async () => {
    const api = new FlakyApi(1, () => new ConflictApiError(409, 'lease_conflict', 'gone'));
    const { runner, finished } = start(api);
    const [event] = await waitFor(() => (finished.length > 0 ? finished : undefined));
    await runner.stop();
    expect([event!.outcome, api.reportCalls]).toEqual(['abandoned', 1]);
  });

  it('waits the Retry-After of a 429 before leasing again', async () => {
    const api = new FlakyApi(0, () => new Error('unused'));
    api.served = true;
    api.leaseError = apiErrorFor(429, { error: { code: 'rate_limited', message: 'slow down' } }, '7');
    expect(api.leaseError).toBeInstanceOf(RateLimitedApiError);
    const sleeps: number[] = [];
    const { runner } = start(api, { onSleep: (ms) => sleeps.push(ms) });
    await waitFor(() => (sleeps.length >= 2 ? true : undefined));
    await runner.stop();
    expect(sleeps.slice(0, 2)).toEqual([7_000, 7_000]);
  });
});
