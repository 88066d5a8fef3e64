import { readFileSync } from 'node:fs';

import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { startApiProcess, type ServiceProcess } from '../helpers/processes';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';
import { streamUpload } from '../helpers/upload-client';

// A real API process (`npm run api`'s entry point), so its memory is the API's alone.
jest.setTimeout(120_000);
const db = useTestDatabase();
let api: ServiceProcess | undefined;
let baseUrl = '';

const UPLOADS = 8;
const UPLOAD_BYTES = 20 * 1024 * 1024;
const MB = 1024 * 1024;

beforeAll(async () => {
  const started = await startApiProcess({
    MONGODB_URI: testDatabaseUri(),
    MONGODB_DB_NAME: db.dbName,
    JWT_SECRET: TEST_JWT_SECRET,
    // All of them at once: the point is the memory of concurrent uploads, not the cap.
    ASSET_UPLOAD_CONCURRENCY: String(UPLOADS),
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

function upload(totalBytes: number): ReturnType<typeof streamUpload> {
  return streamUpload({
    baseUrl,
    path: '/assets',
    headers: { Authorization: `Bearer ${tokenFor('service', 'memory-test')}`, 'Content-Type': 'image/png' },
    head: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    totalBytes,
  });
}

it(`keeps the API's memory flat while ${UPLOADS} uploads of ${UPLOAD_BYTES / MB} MB stream at once`, async () => {
  const pid = api!.pid;
  // Warm up (code paths, GridFS indexes, connection pool) so the baseline is the steady state.
  expect((await upload(2 * MB)).status).toBe(201);
  const baseline = rssOf(pid);

  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, 10);
  let answers: Awaited<ReturnType<typeof upload>>[];
  try {
    answers = await Promise.all(Array.from({ length: UPLOADS }, () => upload(UPLOAD_BYTES)));
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, rssOf(pid));

  expect(answers.map((a) => a.status)).toEqual(answers.map(() => 201));
  expect(answers.map((a) => (JSON.parse(a.text) as { size: number }).size)).toEqual(answers.map(() => UPLOAD_BYTES));
  const growth = peak - baseline;
  process.stdout.write(`asset upload memory: baseline ${(baseline / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB (+${(growth / MB).toFixed(0)} MB) for ${UPLOADS} × ${UPLOAD_BYTES / MB} MB\n`);
  // Holding the bodies would take at least their sum (160 MB) on top of the baseline.
  expect(growth).toBeLessThan(120 * MB);
});
