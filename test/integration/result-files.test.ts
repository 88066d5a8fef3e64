import { createHash, randomBytes } from 'node:crypto';

import pino from 'pino';

import { createApp } from '../../src/app';
import { JobsClient } from '../../src/client/jobs-client';
import { DEFAULT_RETENTION, RetentionCleaner } from '../../src/jobs/retention';
import { RESULT_FILE_BUCKET, ResultFileRepository } from '../../src/storage/result-file-repository';
import { RetentionRepository } from '../../src/storage/retention-repository';
import { WorkerRunner } from '../../src/worker/runner';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { HttpWorker, listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';
import { sendHeadOnly, streamUpload } from '../helpers/upload-client';

/**
 * Result files over real sockets: upload by the current leaseholder only (streamed into GridFS),
 * listed on the job, downloaded by the owner only, refused early when too big, never kept when the
 * lease is lost mid-upload, uploaded by handlers through ctx.uploadFile, and deleted with the job by
 * retention. (Memory under a 100 MB file: test/e2e/result-file-memory.test.ts.)
 */
const db = useTestDatabase();
const clock = new TestClock(Date.now());
const MAX_BYTES = 2 * 1024 * 1024;
let services: ApiServices;
let server: Awaited<ReturnType<typeof listen>>;
let files: ResultFileRepository;

const OWNER = tokenFor('service', 'file-owner');
const WORKER_TOKEN = tokenFor('worker', 'file-worker');

beforeAll(async () => {
  const params: ApiWiringParams = {
    connection: db.connection,
    logger: silentLogger,
    jwtSecret: TEST_JWT_SECRET,
    readyTimeoutMs: 1_000,
    clock,
    reclaimIntervalMs: 0,
    resultFileMaxBytes: MAX_BYTES,
  };
  services = wireServices(params);
  server = await listen(createApp(wireApi(params, services)));
  files = new ResultFileRepository(db.connection);
});
afterAll(async () => {
  services.jobs.close();
  await server.close();
});
beforeEach(async () => {
  for (const name of ['jobs', `${RESULT_FILE_BUCKET}.files`, `${RESULT_FILE_BUCKET}.chunks`]) await db.connection.collection(name).deleteMany({});
});

async function enqueue(body: Record<string, unknown> = { type: 'noop', payload: {} }): Promise<string> {
  const res = await fetch(`${server.baseUrl}/jobs`, { method: 'POST', headers: { Authorization: `Bearer ${OWNER}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 201) throw new Error(`enqueue answered ${res.status}`);
  return ((await res.json()) as { jobId: string }).jobId;
}

async function leased(workerId = 'file-worker-1'): Promise<{ jobId: string; leaseId: string; worker: HttpWorker }> {
  const jobId = await enqueue();
  const worker = new HttpWorker(server.baseUrl, WORKER_TOKEN, workerId);
  const [lease] = await worker.lease({ limit: 1 });
  expect(lease?.jobId).toBe(jobId);
  return { jobId, leaseId: lease!.leaseId, worker };
}

async function upload(params: { jobId: string; leaseId?: string; name?: string; body: Buffer; contentType?: string; workerId?: string; token?: string }): Promise<{ status: number; body: Record<string, unknown> }> {
  const query = new URLSearchParams({ ...(params.name === undefined ? {} : { name: params.name }), ...(params.leaseId === undefined ? {} : { leaseId: params.leaseId }) });
  const res = await fetch(`${server.baseUrl}/jobs/${params.jobId}/files?${query.toString()}`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${params.token ?? WORKER_TOKEN}`,
      'X-Worker-Id': params.workerId ?? 'file-worker-1',
      ...(params.contentType === undefined ? {} : { 'Content-Type': params.contentType }),
    },
    body: new Uint8Array(params.body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function download(path: string, token = OWNER): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(`${server.baseUrl}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

async function jobOf(jobId: string): Promise<{ files: { fileId: string; name: string; contentType: string; size: number; url: string }[]; status: string }> {
  const res = await fetch(`${server.baseUrl}/jobs/${jobId}`, { headers: { Authorization: `Bearer ${OWNER}` } });
  return (await res.json()) as { files: { fileId: string; name: string; contentType: string; size: number; url: string }[]; status: string };
}

describe('upload by the leaseholder', () => {
  it('stores the bytes, lists the file on the job with its URL, and the owner downloads them with their type, as an attachment', async () => {
    const { jobId, leaseId, worker } = await leased();
    const bytes = randomBytes(700 * 1024);
    const receipt = await upload({ jobId, leaseId, name: 'report 2024 – ü.csv', body: bytes, contentType: 'text/csv; charset=utf-8' });
    expect(receipt).toEqual({ status: 201, body: { fileId: expect.stringMatching(/^[0-9a-f]{24}$/), name: 'report 2024 – ü.csv', contentType: 'text/csv; charset=utf-8', size: bytes.length } });
    const fileId = receipt.body.fileId as string;
    // Without a Content-Type: application/octet-stream.
    const second = await upload({ jobId, leaseId, name: 'raw.bin', body: Buffer.from('abc') });
    expect(second.body).toMatchObject({ contentType: 'application/octet-stream', size: 3 });
    expect((await worker.report(jobId, 'succeed', { leaseId })).status).toBe(200);

    const job = await jobOf(jobId);
    expect(job.files).toEqual([
      { fileId, name: 'report 2024 – ü.csv', contentType: 'text/csv; charset=utf-8', size: bytes.length, url: `/jobs/${jobId}/files/${fileId}` },
      { fileId: second.body.fileId, name: 'raw.bin', contentType: 'application/octet-stream', size: 3, url: `/jobs/${jobId}/files/${second.body.fileId as string}` },
    ]);
    const got = await download(job.files[0]!.url);
    expect(got.status).toBe(200);
    expect(got.bytes.equals(bytes)).toBe(true);
    expect(got.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(got.headers.get('content-length')).toBe(String(bytes.length));
    expect(got.headers.get('content-disposition')).toBe(`attachment; filename="report 2024 _ _.csv"; filename*=UTF-8''${encodeURIComponent('report 2024 – ü.csv')}`);
    expect(got.headers.get('x-content-type-options')).toBe('nosniff');
    // The admin may read it too.
    expect((await download(job.files[1]!.url, tokenFor('admin', 'ops'))).bytes.toString()).toBe('abc');
  });

  it('refuses another worker, another lease id, a job no longer leased (409) and an unknown job (404)', async () => {
    const { jobId, leaseId, worker } = await leased();
    const body = Buffer.from('x');
    expect(await upload({ jobId, leaseId, name: 'a', body, workerId: 'other-worker' })).toMatchObject({ status: 409, body: { error: { code: 'lease_conflict' } } });
    expect(await upload({ jobId, leaseId: 'lease_not_current', name: 'a', body })).toMatchObject({ status: 409, body: { error: { code: 'lease_conflict' } } });
    expect((await worker.report(jobId, 'succeed', { leaseId })).status).toBe(200);
    expect(await upload({ jobId, leaseId, name: 'late', body })).toMatchObject({ status: 409, body: { error: { code: 'lease_conflict' } } });
    expect(await upload({ jobId: 'job_000000000000000000000000', leaseId, name: 'a', body })).toMatchObject({ status: 404, body: { error: { code: 'job_not_found' } } });
    expect(await files.fileIdsOfJob(jobId)).toEqual([]);
  });

  it('refuses a stale lease: once the lease expired and another worker leased the job, the old holder gets 409', async () => {
    const { jobId, leaseId } = await leased('stale-worker');
    clock.advance(31_000);
    const other = new HttpWorker(server.baseUrl, WORKER_TOKEN, 'fresh-worker');
    const [again] = await other.lease({ limit: 1 });
    expect(again).toMatchObject({ jobId, attempt: 2 });
    expect(await upload({ jobId, leaseId, name: 'stale.txt', body: Buffer.from('old'), workerId: 'stale-worker' })).toMatchObject({ status: 409, body: { error: { code: 'lease_conflict' } } });
    expect(await upload({ jobId, leaseId: again!.leaseId, name: 'fresh.txt', body: Buffer.from('new'), workerId: 'fresh-worker' })).toMatchObject({ status: 201 });
    expect((await jobOf(jobId)).files.map((f) => f.name)).toEqual(['fresh.txt']);
  });

  it('keeps no file when the lease is lost while the bytes stream in', async () => {
    const { jobId, leaseId } = await leased('slow-worker');
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const answer = streamUpload({
      baseUrl: server.baseUrl,
      path: `/jobs/${jobId}/files?name=slow.bin&leaseId=${leaseId}`,
      headers: { Authorization: `Bearer ${WORKER_TOKEN}`, 'X-Worker-Id': 'slow-worker', 'Content-Type': 'application/octet-stream' },
      head: Buffer.alloc(0),
      totalBytes: 1024 * 1024,
      hold: { afterBytes: 512 * 1024, release: released },
    });
    // Half the body is in: the lease expires and another worker takes the job.
    await waitFor(async () => ((await db.connection.collection(`${RESULT_FILE_BUCKET}.chunks`).countDocuments()) > 0 ? true : undefined), { what: 'chunks written' });
    clock.advance(31_000);
    const [again] = await new HttpWorker(server.baseUrl, WORKER_TOKEN, 'other-worker').lease({ limit: 1 });
    expect(again?.jobId).toBe(jobId);
    release();
    const res = await answer;
    expect({ status: res.status, code: (JSON.parse(res.text) as { error: { code: string } }).error.code }).toEqual({ status: 409, code: 'lease_conflict' });
    expect((await jobOf(jobId)).files).toEqual([]);
    expect(await files.fileIdsOfJob(jobId)).toEqual([]);
    expect(await db.connection.collection(`${RESULT_FILE_BUCKET}.chunks`).countDocuments()).toBe(0);
  });

  it('refuses a declared Content-Length over RESULT_FILE_MAX_BYTES before reading the body, and a chunked body as soon as it passes it', async () => {
    const { jobId, leaseId } = await leased();
    const head = [
      `POST /jobs/${jobId}/files?name=big.bin&leaseId=${leaseId} HTTP/1.1`,
      'Host: localhost',
      `Authorization: Bearer ${WORKER_TOKEN}`,
      'X-Worker-Id: file-worker-1',
      'Content-Type: application/octet-stream',
      `Content-Length: ${MAX_BYTES + 1}`,
      '',
      '',
    ].join('\r\n');
    const early = await sendHeadOnly({ baseUrl: server.baseUrl, head });
    expect({ status: early.status, closed: early.closed }).toEqual({ status: 413, closed: true });
    expect(JSON.parse(early.body)).toEqual({ error: { code: 'payload_too_large', message: `the body is ${MAX_BYTES + 1} bytes; a result file may be at most ${MAX_BYTES}` } });

    const chunked = await streamUpload({
      baseUrl: server.baseUrl,
      path: `/jobs/${jobId}/files?name=big.bin&leaseId=${leaseId}`,
      headers: { Authorization: `Bearer ${WORKER_TOKEN}`, 'X-Worker-Id': 'file-worker-1', 'Content-Type': 'application/octet-stream' },
      head: Buffer.alloc(0),
      // Far more than the loopback's socket buffers hold (several MB), so a server that went on
      // reading would let it all through, and one that stopped does not.
      totalBytes: MAX_BYTES + 64 * 1024 * 1024,
      chunked: true,
    });
    expect(chunked.status).toBe(413);
    expect(chunked.bytesSent).toBeLessThan(MAX_BYTES + 24 * 1024 * 1024);
    expect(await files.fileIdsOfJob(jobId)).toEqual([]);
    expect(await db.connection.collection(`${RESULT_FILE_BUCKET}.chunks`).countDocuments()).toBe(0);
    // Exactly the limit is fine.
    expect((await upload({ jobId, leaseId, name: 'max.bin', body: Buffer.alloc(MAX_BYTES, 1) })).status).toBe(201);
  });

  it('refuses a missing or bad name (422), a Content-Type that is no media type or a compressed body (415), the 101st file (409)', async () => {
    const { jobId, leaseId } = await leased();
    const body = Buffer.from('x');
    for (const name of [undefined, '', 'a\u0001b', 'n'.repeat(201)]) {
      const res = await upload({ jobId, leaseId, ...(name === undefined ? {} : { name }), body });
      expect({ name, status: res.status, code: (res.body.error as { code: string }).code }).toEqual({ name, status: 422, code: 'validation_error' });
    }
    for (const contentType of ['not a type', 'text/', 'a/b; c']) {
      const res = await upload({ jobId, leaseId, name: 'x', body, contentType });
      expect({ contentType, status: res.status }).toEqual({ contentType, status: 415 });
    }
    const gz = await fetch(`${server.baseUrl}/jobs/${jobId}/files?name=x&leaseId=${leaseId}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${WORKER_TOKEN}`, 'X-Worker-Id': 'file-worker-1', 'Content-Encoding': 'gzip' },
      body: new Uint8Array(body),
    });
    expect({ status: gz.status, body: await gz.json() }).toEqual({
      status: 415,
      body: { error: { code: 'unsupported_media_type', message: 'Content-Encoding must be identity: send the bytes of a result file as they are' } },
    });
    for (let i = 0; i < 100; i += 1) expect((await upload({ jobId, leaseId, name: `f${i}`, body })).status).toBe(201);
    expect(await upload({ jobId, leaseId, name: 'f100', body })).toMatchObject({ status: 409, body: { error: { code: 'invalid_state' } } });
  }, 60_000);
});

describe('download by the owner only', () => {
  it('answers 403 to another service and to a user with the owner’s sub, 403 to a worker (role), 404 for a file the job does not have', async () => {
    const { jobId, leaseId } = await leased();
    const { body } = await upload({ jobId, leaseId, name: 'secret.txt', body: Buffer.from('secret') });
    const url = `/jobs/${jobId}/files/${body.fileId as string}`;
    expect((await download(url)).bytes.toString()).toBe('secret');
    for (const token of [tokenFor('service', 'someone-else'), tokenFor('user', 'file-owner'), tokenFor('service', 'file-owner', { tenant: 'acme' })]) {
      const res = await download(url, token);
      expect({ status: res.status, body: JSON.parse(res.bytes.toString()) as unknown }).toEqual({ status: 403, body: { error: { code: 'access_denied', message: expect.any(String) } } });
    }
    expect(JSON.parse((await download(url, WORKER_TOKEN)).bytes.toString())).toMatchObject({ error: { code: 'permission_denied' } });
    expect(JSON.parse((await download(`/jobs/${jobId}/files/${'0'.repeat(24)}`)).bytes.toString())).toMatchObject({ error: { code: 'not_found' } });
    expect(JSON.parse((await download(`/jobs/${jobId}/files/junk`)).bytes.toString())).toMatchObject({ error: { code: 'not_found' } });
    // Another job's file id under this job is not this job's file.
    const other = await leased('file-worker-2');
    const theirs = await upload({ jobId: other.jobId, leaseId: other.leaseId, name: 'theirs', body: Buffer.from('t'), workerId: 'file-worker-2' });
    expect((await download(`/jobs/${jobId}/files/${theirs.body.fileId as string}`)).status).toBe(404);
  });
});

describe('ctx.uploadFile and retention', () => {
  it('a handler streams a file through the worker client; retention deletes it with the job', async () => {
    const jobId = await enqueue({ type: 'noop', payload: {}, tags: ['export'] });
    const digest = createHash('sha256');
    async function* generated(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 8; i += 1) {
        const part = randomBytes(128 * 1024);
        digest.update(part);
        yield part;
      }
    }
    const runner = new WorkerRunner({
      api: new JobsClient({ baseUrl: server.baseUrl, token: WORKER_TOKEN, workerId: 'runner-worker' }),
      handlers: new Map([
        [
          'noop',
          async (ctx) => {
            const file = await ctx.uploadFile('export.bin', 'application/octet-stream', generated());
            return { exported: file.fileId };
          },
        ],
      ]),
      logger: pino({ level: 'silent' }),
      concurrency: 1,
      shutdownGraceMs: 1_000,
      pollMinMs: 20,
      pollMaxMs: 50,
    });
    runner.start();
    try {
      await waitFor(async () => ((await jobOf(jobId)).status === 'succeeded' ? true : undefined), { what: 'the job to succeed' });
    } finally {
      await runner.stop();
    }
    const job = await jobOf(jobId);
    expect(job.files).toHaveLength(1);
    const got = await download(job.files[0]!.url);
    expect(createHash('sha256').update(got.bytes).digest('hex')).toBe(digest.digest('hex'));
    const client = new JobsClient({ baseUrl: server.baseUrl, token: OWNER });
    const opened = await client.downloadFile(jobId, job.files[0]!.fileId);
    expect({ contentType: opened.contentType, size: opened.size }).toEqual({ contentType: 'application/octet-stream', size: 8 * 128 * 1024 });
    await opened.body.cancel();

    // Eight days later the succeeded job is past its retention: it goes, and its file with it.
    const keep = await leased('keep-worker');
    await upload({ jobId: keep.jobId, leaseId: keep.leaseId, name: 'kept.txt', body: Buffer.from('kept'), workerId: 'keep-worker' });
    clock.advance(8 * 86_400_000);
    const cleaner = new RetentionCleaner({ store: new RetentionRepository(db.connection), clock, logger: silentLogger, ...DEFAULT_RETENTION });
    expect((await cleaner.runOnce()).deleted.succeeded).toBe(1);
    expect(await db.connection.collection('jobs').countDocuments({ _id: jobId as never })).toBe(0);
    expect(await files.fileIdsOfJob(jobId)).toEqual([]);
    // The leased job's file stays (unfinished jobs are never deleted).
    expect(await files.fileIdsOfJob(keep.jobId)).toHaveLength(1);
    expect(await db.connection.collection(`${RESULT_FILE_BUCKET}.chunks`).countDocuments()).toBe(1);
  });
});
