import { readFileSync } from 'node:fs';
import http from 'node:http';

import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { startApiProcess, type ServiceProcess } from '../helpers/processes';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';
import { streamUpload } from '../helpers/upload-client';

// A real API process (`npm run api`'s entry point), so its memory is the API's alone.
jest.setTimeout(180_000);
const db = useTestDatabase();
let api: ServiceProcess | undefined;
let baseUrl = '';

const MB = 1024 * 1024;
// Twice the default RESULT_FILE_MAX_BYTES (raised below), so that holding the file whole (at least
// FILE_BYTES on top of the baseline) stands well apart from what streaming costs: chunk buffers the
// garbage collector has not freed yet, which depends on the runtime (for 200 MB, about +30 MB on
// Node 20 and +80-100 MB on Node 24, whose V8 lets more external memory pile up between collections).
const FILE_BYTES = 200 * MB;
const WORKER = tokenFor('worker', 'memory-worker');
const OWNER = tokenFor('service', 'memory-owner');

beforeAll(async () => {
  const started = await startApiProcess({
    MONGODB_URI: testDatabaseUri(),
    MONGODB_DB_NAME: db.dbName,
    JWT_SECRET: TEST_JWT_SECRET,
    RESULT_FILE_MAX_BYTES: String(FILE_BYTES + MB),
    // 200 MB through the test database takes longer than the default 30 s on a busy machine.
    HTTP_REQUEST_TIMEOUT_MS: '150000',
  });
  api = started.api;
  baseUrl = started.baseUrl;
});

afterAll(async () => {
  await api?.stop();
});

/** Resident memory of a process, from /proc (Linux), in bytes. */
function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

async function call(method: string, path: string, token: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'X-Worker-Id': 'memory-worker', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

function upload(jobId: string, leaseId: string, totalBytes: number): ReturnType<typeof streamUpload> {
  return streamUpload({
    baseUrl,
    path: `/jobs/${jobId}/files?name=export.bin&leaseId=${leaseId}`,
    headers: { Authorization: `Bearer ${WORKER}`, 'X-Worker-Id': 'memory-worker', 'Content-Type': 'application/octet-stream' },
    head: Buffer.alloc(0),
    totalBytes,
  });
}

/** Reads a download to its end without keeping it; resolves with the byte count. */
function drain(path: string): Promise<number> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    http
      .get({ host: url.hostname, port: url.port, path, agent: false, headers: { Authorization: `Bearer ${OWNER}` } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`download answered ${res.statusCode}`));
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        res.on('end', () => resolve(bytes));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

it(`keeps the API's memory flat while a ${FILE_BYTES / MB} MB result file is uploaded and downloaded`, async () => {
  const pid = api!.pid;
  const { jobId } = await call('POST', '/jobs', OWNER, { type: 'noop', payload: {} });
  const lease = await call('GET', '/jobs/lease?limit=1', WORKER);
  const [job] = lease.jobs as { jobId: string; leaseId: string }[];
  expect(job?.jobId).toBe(jobId);
  // Warm up (code paths, GridFS indexes, connection pool) so the baseline is the steady state.
  expect((await upload(job!.jobId, job!.leaseId, 2 * MB)).status).toBe(201);
  expect(await drain(((await call('GET', `/jobs/${jobId as string}`, OWNER)).files as { url: string }[])[0]!.url)).toBe(2 * MB);
  const baseline = rssOf(pid);

  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, 10);
  let uploadMs = 0;
  let uploadPeak = baseline;
  let downloadMs = 0;
  try {
    const began = Date.now();
    const answer = await upload(job!.jobId, job!.leaseId, FILE_BYTES);
    uploadMs = Date.now() - began;
    uploadPeak = peak;
    expect({ status: answer.status, body: answer.text.slice(0, 200) }).toMatchObject({ status: 201 });
    expect((JSON.parse(answer.text) as { size: number }).size).toBe(FILE_BYTES);
    const files = (await call('GET', `/jobs/${jobId as string}`, OWNER)).files as { url: string; size: number }[];
    expect(files.map((f) => f.size)).toEqual([2 * MB, FILE_BYTES]);
    const downloadBegan = Date.now();
    expect(await drain(files[1]!.url)).toBe(FILE_BYTES);
    downloadMs = Date.now() - downloadBegan;
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, rssOf(pid));
  const growth = peak - baseline;
  process.stdout.write(
    `result file memory: baseline ${(baseline / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB (+${(growth / MB).toFixed(0)} MB; +${((uploadPeak - baseline) / MB).toFixed(0)} MB by the end of the upload) for ${FILE_BYTES / MB} MB up (${uploadMs} ms) and down (${downloadMs} ms)\n`,
  );
  // Holding the file would take FILE_BYTES on top of the baseline (twice: up and down).
  expect(growth).toBeLessThan(FILE_BYTES * 0.75);
});
