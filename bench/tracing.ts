/**
 * `npm run bench:tracing`: what tracing costs. The same job lifecycle (enqueue over HTTP, lease in
 * batches, succeed each) runs against an in-process API with tracing off (no OTEL_* variables: the
 * SDK is never loaded) and on (every request a server span, the client calls client spans, one
 * job.leased span per job, exported over OTLP/HTTP JSON to a local sink), each round in a fresh child
 * process, alternating, on the same database server. Prints jobs/s and CPU ms per job per mode.
 *
 *   npm run bench:tracing                 3 rounds of 1,000 jobs per mode
 *   npm run bench:tracing -- --jobs=500 --rounds=2
 *   MONGODB_URI=mongodb://... npm run bench:tracing
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import pino from 'pino';

import { createApp } from '../src/app';
import { mintToken } from '../src/auth/tokens';
import { JobsClient } from '../src/client/jobs-client';
import { startEmbeddedDatabase } from '../src/embedded-db';
import { connectDatabase } from '../src/storage/connection';
import { ensureIndexes } from '../src/storage/indexes';
import { noTracing, startTracing } from '../src/tracing/tracing';
import { wireApi, wireServices } from '../src/wiring';

interface RoundResult {
  mode: 'off' | 'on';
  jobs: number;
  ms: number;
  cpuMs: number;
  spans: number;
}

const SECRET = randomBytes(32).toString('hex');
const CONCURRENCY = 16;

function arg(name: string, fallback: number): number {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.split('=')[1]) : fallback;
}

/** A sink for OTLP/HTTP: counts the spans it is sent. */
async function startSink(): Promise<{ url: string; spans(): number; close(): Promise<void> }> {
  let count = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans?: { scopeSpans: { spans: unknown[] }[] }[] };
        for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans) count += ss.spans.length;
      } catch {
        // not JSON: not counted
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans: () => count, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** One round in this process: `mode` decides whether the SDK is loaded at all. */
async function child(mode: 'off' | 'on', jobs: number, mongoUri: string): Promise<RoundResult> {
  const sink = await startSink();
  const tracing = mode === 'on' ? await startTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, serviceName: 'bench' }) : noTracing;
  const connection = await connectDatabase({ uri: mongoUri, dbName: `bench_tracing_${randomBytes(3).toString('hex')}`, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary' });
  await ensureIndexes(connection);
  const params = { connection, logger: pino({ level: 'silent' }), jwtSecret: SECRET, readyTimeoutMs: 1_000, tracing };
  const services = wireServices(params);
  const server = http.createServer(createApp(wireApi(params, services)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const producer = new JobsClient({ baseUrl, token: mintToken({ secret: SECRET, sub: 'bench', role: 'service' }), tracing });
  const worker = new JobsClient({ baseUrl, token: mintToken({ secret: SECRET, sub: 'bench-worker', role: 'worker' }), workerId: 'bench-worker-1', tracing });

  const cpu0 = process.cpuUsage();
  const began = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < jobs) {
        next += 1;
        await producer.enqueue({ type: 'noop', payload: {} });
      }
    }),
  );
  let done = 0;
  while (done < jobs) {
    const leased = await worker.lease({ limit: 50 });
    if (leased.jobs.length === 0) continue;
    for (let i = 0; i < leased.jobs.length; i += CONCURRENCY) {
      await Promise.all(leased.jobs.slice(i, i + CONCURRENCY).map((job) => worker.succeed(job.jobId, { leaseId: job.leaseId })));
    }
    done += leased.jobs.length;
  }
  const ms = Date.now() - began;
  const cpu = process.cpuUsage(cpu0);
  await tracing.shutdown();
  services.jobs.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await connection.dropDatabase();
  await connection.close();
  await sink.close();
  return { mode, jobs, ms, cpuMs: (cpu.user + cpu.system) / 1000, spans: sink.spans() };
}

function runChild(mode: 'off' | 'on', jobs: number, mongoUri: string): Promise<RoundResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'tracing.ts'), `--child=${mode}`, `--jobs=${jobs}`], {
      env: { ...process.env, BENCH_MONGODB_URI: mongoUri },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as RoundResult) : reject(new Error(`round ${mode} exited ${code}`))));
  });
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const jobs = arg('jobs', 1_000);
  const childMode = process.argv.find((a) => a.startsWith('--child='))?.split('=')[1] as 'off' | 'on' | undefined;
  if (childMode) {
    process.stdout.write(`${JSON.stringify(await child(childMode, jobs, process.env.BENCH_MONGODB_URI!))}\n`);
    process.exit(0);
  }
  const rounds = arg('rounds', 3);
  const embedded = process.env.MONGODB_URI ? undefined : await startEmbeddedDatabase({ port: 0 });
  const mongoUri = process.env.MONGODB_URI ?? embedded!.uri;
  const results: RoundResult[] = [];
  for (let round = 0; round < rounds; round += 1) {
    for (const mode of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const result = await runChild(mode, jobs, mongoUri);
      process.stderr.write(`round ${round + 1} ${mode}: ${result.jobs} jobs in ${result.ms} ms, ${result.cpuMs.toFixed(0)} ms CPU, ${result.spans} spans exported\n`);
      results.push(result);
    }
  }
  await embedded?.stop();
  const summary = (mode: 'off' | 'on') => {
    const mine = results.filter((r) => r.mode === mode);
    return { jobsPerSecond: median(mine.map((r) => (r.jobs / r.ms) * 1000)), cpuMsPerJob: median(mine.map((r) => r.cpuMs / r.jobs)), spansPerJob: median(mine.map((r) => r.spans / r.jobs)) };
  };
  const off = summary('off');
  const on = summary('on');
  const table = [
    `tracing cost (${rounds} rounds × ${jobs} jobs per mode, API and client in one process, database: ${embedded ? embedded.kind : 'MONGODB_URI'})`,
    `  off: ${off.jobsPerSecond.toFixed(0)} jobs/s, ${off.cpuMsPerJob.toFixed(2)} ms CPU per job`,
    `  on:  ${on.jobsPerSecond.toFixed(0)} jobs/s, ${on.cpuMsPerJob.toFixed(2)} ms CPU per job, ${on.spansPerJob.toFixed(1)} spans per job`,
    `  on/off: throughput ×${(on.jobsPerSecond / off.jobsPerSecond).toFixed(2)}, CPU per job ×${(on.cpuMsPerJob / off.cpuMsPerJob).toFixed(2)}`,
  ];
  process.stdout.write(`${table.join('\n')}\n`);
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
