/**
 * Benchmark of GET /admin/jobs/stats over 100,000 jobs (not a test: it prints, it asserts nothing).
 *
 *   npx tsx bench/stats.ts                      # embedded database (mongo-java-server here)
 *   MONGODB_URI=mongodb://... npx tsx bench/stats.ts
 *   BENCH_JOBS=20000 BENCH_RUNS=7 npx tsx bench/stats.ts
 *
 * Absolute times on mongo-java-server say little about MongoDB (it ignores non-unique indexes and
 * scans in Java), so the run also times the same aggregation through the raw driver, and the naive
 * alternative (one countDocuments per status), on the same server: the ratios are what carry over.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';

import pino from 'pino';

import { createApp } from '../src/app';
import { mintToken } from '../src/auth/tokens';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../src/embedded-db';
import { JOB_STATUSES, type JobStatus } from '../src/model/job';
import { connectDatabase } from '../src/storage/connection';
import { ensureIndexes } from '../src/storage/indexes';
import { wireApi } from '../src/wiring';
import { jobDocument } from '../test/helpers/job-documents';

const JOBS = Number(process.env.BENCH_JOBS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const BATCH = 5_000;
const SECRET = randomBytes(32).toString('hex');

// A queue that has been running for a week: mostly finished jobs, some waiting or failing.
const MIX: [JobStatus, number][] = [
  ['succeeded', 0.7],
  ['queued', 0.1],
  ['cancelled', 0.07],
  ['leased', 0.05],
  ['failed', 0.05],
  ['dlq', 0.03],
];

function statusFor(i: number): JobStatus {
  let x = (i * 0.6180339887) % 1;
  for (const [status, share] of MIX) {
    if (x < share) return status;
    x -= share;
  }
  return 'succeeded';
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function time(runs: number, fn: () => Promise<unknown>): Promise<{ median: number; all: number[] }> {
  await fn(); // warm-up
  const all: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const started = process.hrtime.bigint();
    await fn();
    all.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return { median: median(all), all };
}

const ms = (n: number): string => `${n.toFixed(1)} ms`;

async function main(): Promise<void> {
  let embedded: EmbeddedDatabase | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    embedded = await startEmbeddedDatabase({ port: 0 });
    uri = embedded.uri;
  }
  const kind = embedded?.kind ?? 'MONGODB_URI';
  const dbName = `bench_stats_${randomBytes(4).toString('hex')}`;
  const connection = await connectDatabase({ uri, dbName, timeoutMs: 10_000, writeConcern: 1, readPreference: 'primary' });
  let server: Server | undefined;
  try {
    await ensureIndexes(connection);
    const jobs = connection.collection('jobs');

    const now = Date.now();
    const insertStarted = Date.now();
    for (let offset = 0; offset < JOBS; offset += BATCH) {
      const docs = Array.from({ length: Math.min(BATCH, JOBS - offset) }, (_, k) => {
        const i = offset + k;
        return jobDocument({
          status: statusFor(i),
          type: i % 4 === 0 ? 'payout.execute' : 'thumbnail.create',
          createdAt: new Date(now - ((i * 7_919) % (7 * 24 * 3_600_000))),
          createdBy: `service-${i % 10}`,
        });
      });
      await jobs.insertMany(docs as unknown as Record<string, unknown>[], { ordered: false });
    }
    const insertSeconds = (Date.now() - insertStarted) / 1000;

    const app = createApp(wireApi({ connection, logger: pino({ level: 'silent' }), jwtSecret: SECRET, readyTimeoutMs: 2_000 }));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const token = mintToken({ secret: SECRET, sub: 'bench', role: 'admin' });
    let lastStats: unknown;
    const viaHttp = await time(RUNS, async () => {
      const res = await fetch(`http://127.0.0.1:${port}/admin/jobs/stats`, { headers: { Authorization: `Bearer ${token}` } });
      if (res.status !== 200) throw new Error(`stats answered ${res.status}: ${await res.text()}`);
      lastStats = await res.json();
    });
    const rawAggregation = await time(RUNS, () =>
      jobs
        .aggregate([
          {
            $group: {
              _id: { type: '$type', status: '$status', partial: '$partial', scheduled: { $and: [{ $eq: ['$status', 'queued'] }, { $gt: ['$nextRunAt', new Date()] }] } },
              count: { $sum: 1 },
              earliestNextRunAt: { $min: '$nextRunAt' },
            },
          },
        ])
        .toArray(),
    );
    const perStatusCounts = await time(RUNS, () => Promise.all(JOB_STATUSES.map((status) => jobs.countDocuments({ status }))));

    const stats = lastStats as { totalJobs: number; statusCounts: Record<string, number> };
    // A fast wrong answer is no result: the counts must add up to what was inserted.
    if (stats.totalJobs !== JOBS) throw new Error(`stats counted ${stats.totalJobs} jobs, ${JOBS} were inserted`);
    const lines = [
      `database: ${kind}`,
      `jobs: ${stats.totalJobs} (inserted in ${insertSeconds.toFixed(1)} s, batches of ${BATCH})`,
      `status counts: ${JSON.stringify(stats.statusCounts)}`,
      `GET /admin/jobs/stats            median ${ms(viaHttp.median)} over ${RUNS} runs [${viaHttp.all.map((n) => n.toFixed(0)).join(', ')}]`,
      `raw driver, same $group           median ${ms(rawAggregation.median)}  (HTTP/raw ${(viaHttp.median / rawAggregation.median).toFixed(2)}x)`,
      `raw driver, countDocuments x${JOB_STATUSES.length}   median ${ms(perStatusCounts.median)}  (one query per status, for comparison)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await connection.dropDatabase().catch(() => undefined);
    await connection.close();
    await embedded?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
