import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import type { Express } from 'express';

import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { ROOT } from '../helpers/processes';
import { listen } from '../helpers/server';
import { tokenFor } from '../helpers/tokens';

/**
 * @jobs/client as another service gets it: `npm pack` of packages/client (its prepack builds it),
 * the tarball installed into a project outside this repository (its one dependency, zod, from the
 * npm cache or the registry), then scripts of that project calling a running API — as ES module
 * and as CommonJS — and tsc checking that a misspelt job type or a wrong payload does not compile.
 */

const run = promisify(execFile);
jest.setTimeout(120_000);

const db = useTestDatabase();
let app: Express;
let server: Awaited<ReturnType<typeof listen>>;
let project: string;
let packed: { filename: string; files: { path: string }[] };

beforeAll(async () => {
  app = buildTestApp(db, { reclaimIntervalMs: 0 });
  server = await listen(app);
  project = mkdtempSync(path.join(tmpdir(), 'jobs-client-consumer-'));
  const pack = await run('npm', ['pack', '--json', '--pack-destination', project], { cwd: path.join(ROOT, 'packages', 'client'), timeout: 90_000 });
  packed = (JSON.parse(pack.stdout) as (typeof packed)[])[0]!;
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'jobs-client-consumer', private: true, version: '1.0.0' }));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', `./${packed.filename}`], { cwd: project, timeout: 90_000 });
});

afterAll(async () => {
  await server?.close();
  if (project) rmSync(project, { recursive: true, force: true });
});

async function runScript(file: string, source: string): Promise<Record<string, unknown>> {
  writeFileSync(path.join(project, file), source);
  const env = {
    PATH: process.env.PATH ?? '',
    JOBS_API_URL: server.baseUrl,
    SERVICE_TOKEN: tokenFor('service', 'package-service'),
    WORKER_TOKEN: tokenFor('worker', 'package-worker'),
    ADMIN_TOKEN: tokenFor('admin', 'package-admin'),
  };
  const { stdout } = await run(process.execPath, [file], { cwd: project, env, timeout: 30_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('@jobs/client, packed and installed elsewhere', () => {
  it('ships built JavaScript for both module systems with declarations, and depends on zod only', () => {
    const files = packed.files.map((f) => f.path).sort();
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/cjs/client/index.js', 'dist/cjs/client/index.d.ts', 'dist/esm/client/index.js', 'dist/esm/client/index.d.ts']));
    // No TypeScript sources, no tests, nothing of the service beyond the client and its types.
    expect(files.filter((f) => !/^dist\/(cjs|esm)\/.+\.(js|d\.ts)$|^dist\/(cjs|esm)\/package\.json$|^package\.json$|^README\.md$/.test(f))).toEqual([]);
    const runtime = files.filter((f) => f.endsWith('.js'));
    expect(runtime.every((f) => /^dist\/(cjs|esm)\/(client\/|error-catalog\.js$)/.test(f))).toBe(true);
    const installed = JSON.parse(readFileSync(path.join(project, 'node_modules', '@jobs', 'client', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const service = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(installed.dependencies).toEqual({ zod: service.dependencies.zod });
  });

  it('works from an ES module: a service enqueues (one job, a batch), reads it and gets typed errors', async () => {
    const out = await runScript(
      'service.mjs',
      `import { JobsClient, JobsApiError, NotFoundApiError, ValidationApiError } from '@jobs/client';
const service = new JobsClient({ baseUrl: process.env.JOBS_API_URL, token: process.env.SERVICE_TOKEN });
const admin = new JobsClient({ baseUrl: process.env.JOBS_API_URL, token: process.env.ADMIN_TOKEN });
const job = await service.enqueue({ type: 'noop', payload: { sleepMs: 1 }, idempotencyKey: 'from-esm' });
const batch = await service.enqueueBatch({ jobs: [{ type: 'noop', payload: {} }, { type: 'noop', payload: { fail: 'permanent' } }] });
const read = await service.getJob(job.jobId);
const missing = await admin.getJob('job_${'0'.repeat(24)}').catch((err) => err);
const invalid = await service.enqueue({ type: 'noop', payload: { sleepMs: 'soon' } }).catch((err) => err);
const stats = await admin.stats();
console.log(JSON.stringify({
  job, batchCreated: batch.created, read: { jobId: read.jobId, status: read.status },
  missing: { notFound: missing instanceof NotFoundApiError, apiError: missing instanceof JobsApiError, code: missing.code },
  invalid: { validation: invalid instanceof ValidationApiError, code: invalid.code, field: invalid.details?.[0]?.field },
  queued: stats.statusCounts.queued,
}));
`,
    );
    expect(out).toMatchObject({
      job: { type: 'noop', status: 'queued', created: true },
      batchCreated: 2,
      read: { status: 'queued' },
      missing: { notFound: true, apiError: true, code: 'job_not_found' },
      invalid: { validation: true, code: 'payload_invalid', field: 'payload.sleepMs' },
      queued: 3,
    });
    expect(await db.connection.collection('jobs').countDocuments({ createdBy: 'package-service' })).toBe(3);
  });

  it('works from CommonJS: a worker leases the jobs, heartbeats and reports them', async () => {
    const out = await runScript(
      'worker.cjs',
      `const { JobsClient, ConflictApiError } = require('@jobs/client');
const worker = new JobsClient({ baseUrl: process.env.JOBS_API_URL, token: process.env.WORKER_TOKEN, workerId: 'package-worker-1' });
(async () => {
  const { jobs } = await worker.lease({ types: ['noop'], limit: 10 });
  const outcomes = [];
  for (const job of jobs) {
    await worker.heartbeat(job.jobId, { leaseId: job.leaseId, progress: 50 });
    const report = job.payload.fail
      ? await worker.fail(job.jobId, { leaseId: job.leaseId, error: { message: 'asked to', retryable: job.payload.fail !== 'permanent' } })
      : await worker.succeed(job.jobId, { leaseId: job.leaseId, result: { by: 'cjs' } });
    outcomes.push(report.status);
  }
  const again = await worker.succeed(jobs[0].jobId, { leaseId: jobs[0].leaseId }).catch((err) => err);
  console.log(JSON.stringify({ outcomes: outcomes.sort(), staleReportRefused: again instanceof ConflictApiError }));
})().catch((err) => { console.error(err); process.exit(1); });
`,
    );
    expect(out).toEqual({ outcomes: ['failed', 'succeeded', 'succeeded'], staleReportRefused: true });
    expect(await db.connection.collection('jobs').countDocuments({ status: 'succeeded', 'result.by': 'cjs' })).toBe(2);
  });

  it('types every call: a misspelt job type, a wrong or missing payload field do not compile, from ESM and CommonJS', async () => {
    const checks = `import { JobsClient, type EnqueueRequest, type JobType, type PayloadOf } from '@jobs/client';

const client = new JobsClient({ baseUrl: 'http://127.0.0.1:1', token: 't', workerId: 'typed-worker' });

export async function typed(): Promise<void> {
  const job = await client.enqueue({ type: 'noop', payload: { sleepMs: 1, fail: 'retryable' }, priority: 90 });
  const type: 'noop' = job.type;
  // @ts-expect-error a misspelt job type
  await client.enqueue({ type: 'nop', payload: {} });
  // @ts-expect-error a payload field of the wrong type
  await client.enqueue({ type: 'noop', payload: { sleepMs: 'soon' } });
  // @ts-expect-error a required payload field missing
  await client.enqueue({ type: 'payout.execute', payload: { batchId: 'b1' } });
  // @ts-expect-error a payload field the type does not have
  await client.enqueue({ type: 'thumbnail.create', payload: { assetId: 'a', versionNumber: 1, width: 5 } });
  const jobs: EnqueueRequest[] = [{ type: 'noop', payload: {} }, { type: 'payout.execute', payload: { batchId: 'b1', escrowId: 'e1' } }];
  await client.enqueueBatch({ jobs });
  // @ts-expect-error a batch item with another type's payload
  await client.enqueueBatch({ jobs: [{ type: 'thumbnail.create', payload: { sleepMs: 1 } }] });
  const leased = await client.lease({ types: ['payout.execute'], limit: 5 });
  const escrowIds: string[] = leased.jobs.map((j) => j.payload.escrowId);
  // @ts-expect-error a schedule's payload is its type's too
  await client.createSchedule({ name: 'n', type: 'payout.execute', payload: {}, cron: '0 3 * * *' });
  const payload: PayloadOf<'thumbnail.create'> = { assetId: 'a', versionNumber: 1, sizes: [64] };
  const name: JobType = 'thumbnail.create';
  void [type, escrowIds, payload, name];
}
`;
    writeFileSync(path.join(project, 'typed.mts'), checks);
    writeFileSync(path.join(project, 'typed.cts'), checks);
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        // skipLibCheck off: the package's declarations (and zod's) compile in a strict consumer too.
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2023', 'dom'], types: [], noEmit: true, skipLibCheck: false },
        files: ['typed.mts', 'typed.cts'],
      }),
    );
    const tsc = require.resolve('typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', project], { cwd: project, timeout: 60_000 }).then(
      () => ({ code: 0, output: '' }),
      (err: { code: number; stdout: string }) => ({ code: err.code, output: err.stdout }),
    );
    // An unused @ts-expect-error (a call that compiled) is itself an error, so 0 means every bad call was refused.
    expect(result).toEqual({ code: 0, output: '' });
  });
});
