import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

import { mintToken } from '../../src/auth/tokens';
import type { BenchContext } from '../lib/context';
import { summarizeCpuProfile, type ProfileSummary } from '../lib/cpu-profile';
import { databaseServerPid, startCpuAccounting } from '../lib/cpu-time';
import { openDatabase } from '../lib/database';
import { JsonHttpClient, runClosedLoop, sumMetric } from '../lib/http-load';
import { readJobTimings, summarizeTimings, type TimingSummary } from '../lib/job-timings';
import { pollUntil, round, sleep } from '../lib/numbers';
import { ROOT, stopAll, type BenchProcess } from '../lib/service-process';
import { startApiProcess, startWorkerFleet } from '../lib/services';
import { requestsPerJob, startCountingProxy } from '../lib/wire-proxy';

export interface EndToEndResult extends TimingSummary {
  /** Every job of the throughput phase succeeded before the deadline. */
  complete: boolean;
  /** Start delay measured with the latency probe (idle workers, one job at a time); see TimingSummary. */
  p50StartDelayMs: number;
  p99StartDelayMs: number;
  maxStartDelayMs: number;
  probeJobs: number;
  /** Every probe job's start delay, sorted (ms). */
  probeStartDelaysMs: number[];
  /** The longest stall of the API's event loop in each phase (its /metrics, polled every second). */
  apiEventLoopMaxMs: { throughput: number; probe: number };
  /** The API's garbage collection in each phase: total pause time and pauses over 10 ms. */
  apiGc: { throughput: { ms: number; pausesOver10ms: number }; probe: { ms: number; pausesOver10ms: number } };
  /** Start delay of the throughput phase's jobs, which queue behind a backlog of thousands. */
  backlogStartDelayMs: TimingSummary['startDelayMs'];
  /** GET /jobs/lease calls the API answered during the run (empty ones included), per job. */
  leaseCallsPerJob: number;
  /** Mean time the API took to answer a succeed call (its own histogram; lease calls include long-poll waits). */
  meanSucceedMs: number;
  apiPeakRssMb: number;
  /** The API's resident set when the load began, and its heap and external memory (its /metrics) when it ended. */
  apiRssAtStartMb: number;
  apiHeapUsedMbAtEnd: number;
  apiExternalMbAtEnd: number;
  /** The largest V8 heap (committed) seen in the API's /metrics, polled every second during the run. */
  apiPeakHeapTotalMb: number;
  /** CPU ms per job of the throughput phase, by process: API, the worker processes, database, the bench's HTTP clients. */
  cpuMsPerJob: Record<string, number | null>;
  /** The API's CPU profile over the throughput phase (--profile). */
  profile?: ProfileSummary;
  /** API processes (workers and producers split across them). */
  apiInstances: number;
  /** Requests the database got per job of the throughput phase, by command (counted on the wire; monitoring apart). */
  dbRequestsPerJob: { total: number; byCommand: Record<string, number> } | null;
}

/**
 * The API's main-thread profile. tsx's loader hooks run on a worker thread of their own, which
 * --cpu-prof profiles too: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile, main thread id 0.
 */
function mainThreadProfile(dir: string, pid: number): string | null {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(pid) && f.split('.')[4] === '0');
  return file ? path.join(dir, file) : null;
}

interface LeaseCallStats {
  leaseCalls: number;
  succeedCalls: number;
  succeedSeconds: number;
}

/** The API's garbage collection so far (prom-client's nodejs_gc_duration_seconds, default buckets). */
function gcStats(metrics: string): { seconds: number; pausesOver10ms: number } {
  const name = 'nodejs_gc_duration_seconds';
  return {
    seconds: sumMetric(metrics, `${name}_sum`),
    pausesOver10ms: sumMetric(metrics, `${name}_count`) - sumMetric(metrics, `${name}_bucket`, { le: '0.01' }),
  };
}

function gcBetween(before: string, after: string): { ms: number; pausesOver10ms: number } {
  const a = gcStats(before);
  const b = gcStats(after);
  return { ms: round((b.seconds - a.seconds) * 1000), pausesOver10ms: b.pausesOver10ms - a.pausesOver10ms };
}

function leaseCallStats(metrics: string): LeaseCallStats {
  const histogram = (suffix: string, route: string): number => sumMetric(metrics, `http_request_duration_seconds_${suffix}`, { method: route === '/jobs/lease' ? 'GET' : 'POST', route });
  return {
    leaseCalls: histogram('count', '/jobs/lease'),
    succeedCalls: histogram('count', '/jobs/:jobId/succeed'),
    succeedSeconds: histogram('sum', '/jobs/:jobId/succeed'),
  };
}

/**
 * The API and `workers` worker processes (npm run api / npm run worker) on a database of its own.
 * 1. Throughput: `jobs` noop jobs enqueued over HTTP by `clients` concurrent clients while the workers
 *    run; jobs/s from the first enqueue to the last completedAt.
 * 2. Latency probe: `probeJobs` jobs enqueued one at a time, `probeIntervalMs` apart, to idle
 *    workers (long-polling when the API supports it): the start delay a new job sees.
 */
export async function runEndToEnd(ctx: BenchContext, options: { apiInstances?: number } = {}): Promise<EndToEndResult> {
  const { sizes } = ctx;
  const apiInstances = options.apiInstances ?? 1;
  const counting = await startCountingProxy(ctx.mongoUri);
  const settings = { mongoUri: counting.uri, dbName: ctx.dbName(apiInstances === 1 ? 'e2e' : `e2e${apiInstances}`), jwtSecret: ctx.jwtSecret };
  const profileDir = ctx.profileDir;
  if (profileDir) {
    mkdirSync(profileDir, { recursive: true });
    for (const file of readdirSync(profileDir)) if (file.endsWith('.cpuprofile')) rmSync(path.join(profileDir, file));
  }
  const apiSpawnedAt = Date.now();
  const apis: { api: BenchProcess; baseUrl: string }[] = [];
  for (let i = 0; i < apiInstances; i += 1) {
    apis.push(await startApiProcess(settings, profileDir && i === 0 ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir] } : {}));
  }
  const { api } = apis[0]!;
  const workers: BenchProcess[] = [];
  const token = mintToken({ secret: ctx.jwtSecret, sub: 'bench-service', role: 'service' });
  const clients = apis.map(({ baseUrl }) => new JsonHttpClient(baseUrl, token, Math.ceil(sizes.clients / apiInstances) + 2));
  let peakRssMb = 0;
  const sampleMemory = (): void => {
    for (const { api: instance } of apis) {
      const memory = instance.memory();
      if (memory) peakRssMb = Math.max(peakRssMb, memory.rssMb, memory.hwmMb);
    }
  };
  const sampler = setInterval(sampleMemory, 100);
  try {
    // Workers split across the API instances, as producers are.
    for (const [i, { baseUrl }] of apis.entries()) {
      const share = Math.floor(sizes.workers / apiInstances) + (i < sizes.workers % apiInstances ? 1 : 0);
      workers.push(...(await startWorkerFleet({ settings, fleet: { ...sizes, workers: share }, apiUrl: baseUrl, firstIndex: workers.length })));
    }
    // Let every worker reach its poll loop before the clock starts.
    await sleep(ctx.quick ? 500 : 1_000);
    let peakHeapTotalMb = 0;
    // prom-client resets its event-loop delay histogram at every scrape, so the max over the polls
    // is the worst stall of the API's event loop in the phase.
    let eventLoopMaxMs = 0;
    // The bench's own scrapes cost the API (a scrape of prom-client's default metrics takes ~15 ms of
    // its CPU here), so completion is polled once a second: the throughput comes from the jobs'
    // own completedAt, not from when the poll saw them done.
    // Every instance's metrics, concatenated: sums (jobs succeeded, lease calls) add up across them.
    const metrics = async (): Promise<string> => {
      const texts = await Promise.all(clients.map(async (c) => (await c.request<string>('GET', '/metrics')).body));
      for (const text of texts) {
        peakHeapTotalMb = Math.max(peakHeapTotalMb, sumMetric(text, 'nodejs_heap_size_total_bytes') / 2 ** 20);
        eventLoopMaxMs = Math.max(eventLoopMaxMs, sumMetric(text, 'nodejs_eventloop_lag_max_seconds') * 1000);
      }
      return texts.join('\n');
    };
    const succeeded = async (): Promise<number> => sumMetric(await metrics(), 'jobs_succeeded_total', { type: 'noop' });
    const startMetrics = await metrics();
    const before = leaseCallStats(startMetrics);
    const rssAtStartMb = api.memory()?.rssMb ?? Number.NaN;
    let next = 0;
    const enqueue = async (): Promise<string> => {
      // Producers alternate between the instances.
      const res = await clients[next++ % clients.length]!.request<{ jobId: string }>('POST', '/jobs', { type: 'noop', payload: {} });
      if (res.status !== 201) throw new Error(`POST /jobs answered ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body.jobId;
    };

    // 1. Throughput.
    const dbPid = databaseServerPid();
    const cpu = startCpuAccounting({
      API: apis.map((a) => a.api.pid),
      workers: workers.map((w) => w.pid),
      database: dbPid === null ? [] : [dbPid],
      'bench clients': 'self',
    });
    counting.proxy?.reset();
    const startedAt = Date.now();
    await runClosedLoop({ total: sizes.jobs, concurrency: sizes.clients, call: async () => void (await enqueue()) });
    ctx.log(`  enqueued ${sizes.jobs} jobs in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; waiting for the workers`);
    const deadline = startedAt + sizes.scenarioDeadlineMs;
    const complete = await pollUntil(async () => (await succeeded()) >= sizes.jobs, { everyMs: 1_000, deadline });
    const throughputEndedAt = Date.now();
    const wire = counting.proxy?.snapshot();
    const cpuSplit = cpu.finish(await succeeded());
    const throughputEventLoopMaxMs = eventLoopMaxMs;

    // 2. Latency probe: only on an idle queue, so it measures the lease path, not a backlog; after a
    // pause, so the burst's leftovers (its garbage, the last reports) are not the probe's to pay.
    const probeIds = new Set<string>();
    await sleep(ctx.quick ? 500 : 2_000);
    const probeMetrics = await metrics();
    eventLoopMaxMs = 0;
    if (complete) {
      await Promise.all(
        Array.from({ length: sizes.probeJobs }, async (_, i) => {
          await sleep(i * sizes.probeIntervalMs);
          probeIds.add(await enqueue());
        }),
      );
      await pollUntil(async () => (await succeeded()) >= sizes.jobs + sizes.probeJobs, { everyMs: 1_000, deadline: Date.now() + 30_000 });
    }
    const finalMetrics = await metrics();
    const after = leaseCallStats(finalMetrics);
    sampleMemory();
    clearInterval(sampler);
    await stopAll(workers);
    await stopAll(apis.map((a) => a.api));

    const connection = await openDatabase(ctx.mongoUri, settings.dbName);
    const rows = await readJobTimings(connection).finally(() => connection.close());
    const throughput = summarizeTimings(rows.filter((r) => !probeIds.has(r._id)), startedAt);
    const probe = summarizeTimings(rows.filter((r) => probeIds.has(r._id)), startedAt);
    const leaseCalls = after.leaseCalls - before.leaseCalls;
    const succeedCalls = after.succeedCalls - before.succeedCalls;
    const result: EndToEndResult = {
      ...throughput,
      complete,
      p50StartDelayMs: probe.startDelayMs.p50,
      p99StartDelayMs: probe.startDelayMs.p99,
      maxStartDelayMs: probe.startDelayMs.max,
      probeJobs: probeIds.size,
      probeStartDelaysMs: rows
        .filter((r) => probeIds.has(r._id) && r.attempts.length > 0)
        .map((r) => r.attempts[0]!.leasedAt.getTime() - r.createdAt.getTime())
        .sort((a, b) => a - b),
      apiEventLoopMaxMs: { throughput: round(throughputEventLoopMaxMs), probe: round(eventLoopMaxMs) },
      apiGc: { throughput: gcBetween(startMetrics, probeMetrics), probe: gcBetween(probeMetrics, finalMetrics) },
      backlogStartDelayMs: throughput.startDelayMs,
      leaseCallsPerJob: round(leaseCalls / Math.max(1, rows.length), 2),
      meanSucceedMs: round((1000 * (after.succeedSeconds - before.succeedSeconds)) / Math.max(1, succeedCalls)),
      apiPeakRssMb: round(peakRssMb),
      apiRssAtStartMb: round(rssAtStartMb),
      apiHeapUsedMbAtEnd: round(sumMetric(finalMetrics, 'nodejs_heap_size_used_bytes') / 2 ** 20),
      apiExternalMbAtEnd: round(sumMetric(finalMetrics, 'nodejs_external_memory_bytes') / 2 ** 20),
      apiPeakHeapTotalMb: round(peakHeapTotalMb),
      cpuMsPerJob: cpuSplit.perJobMs,
      apiInstances,
      dbRequestsPerJob: requestsPerJob(wire, sizes.jobs),
    };
    const profileFile = profileDir ? mainThreadProfile(profileDir, api.pid) : null;
    if (profileFile) {
      result.profile = summarizeCpuProfile({ file: profileFile, profileStartedAt: apiSpawnedAt, window: { from: startedAt, to: throughputEndedAt }, root: ROOT });
    }
    return result;
  } finally {
    clearInterval(sampler);
    for (const c of clients) c.close();
    await stopAll([...workers, ...apis.map((a) => a.api)]);
    await counting.proxy?.close();
  }
}
