import { mintToken } from '../../src/auth/tokens';
import type { BenchContext } from '../lib/context';
import { JsonHttpClient, runClosedLoop } from '../lib/http-load';
import { percentile, round } from '../lib/numbers';
import { startApiProcess } from '../lib/services';

export interface EnqueueResult {
  jobsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  clients: number;
  elapsedMs: number;
}

const WARM_UP_REQUESTS = 200;

/** POST /jobs from `clients` concurrent keep-alive clients, no workers: the API and one insert per job. */
export async function runEnqueue(ctx: BenchContext): Promise<EnqueueResult> {
  const { sizes } = ctx;
  const { api, baseUrl } = await startApiProcess({ mongoUri: ctx.mongoUri, dbName: ctx.dbName('enqueue'), jwtSecret: ctx.jwtSecret });
  const client = new JsonHttpClient(baseUrl, mintToken({ secret: ctx.jwtSecret, sub: 'bench-service', role: 'service' }), sizes.clients);
  try {
    const enqueue = async (): Promise<void> => {
      const res = await client.request('POST', '/jobs', { type: 'noop', payload: {} });
      if (res.status !== 201) throw new Error(`POST /jobs answered ${res.status}: ${JSON.stringify(res.body)}`);
    };
    // Warm-up (JIT, connection pools, sockets), not counted.
    await runClosedLoop({ total: WARM_UP_REQUESTS, concurrency: sizes.clients, call: enqueue });
    const started = performance.now();
    const latencies = await runClosedLoop({ total: sizes.enqueueRequests, concurrency: sizes.clients, call: enqueue });
    const elapsedMs = performance.now() - started;
    return {
      jobsPerSec: round(sizes.enqueueRequests / (elapsedMs / 1000)),
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      requests: sizes.enqueueRequests,
      clients: sizes.clients,
      elapsedMs: Math.round(elapsedMs),
    };
  } finally {
    client.close();
    await api.stop();
  }
}
