import { randomBytes } from 'node:crypto';

import { MAX_ASSET_BYTES } from '../../src/model/asset';
import { ASSET_BUCKET } from '../../src/storage/asset-file-repository';
import { assetModel } from '../../src/storage/asset-model';
import { makeImage } from '../fixtures/images';
import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { listen } from '../helpers/server';
import { tokenFor } from '../helpers/tokens';
import { sendHeadOnly, streamUpload } from '../helpers/upload-client';

/**
 * Upload limits over real sockets (issue 11): bodies are streamed, refused as early as the headers
 * or the first bytes allow, and a refused or cut-off upload leaves nothing in GridFS.
 */

const db = useTestDatabase();
const UPLOAD_CONCURRENCY = 2;
let baseUrl = '';
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  const server = await listen(buildTestApp(db, { assetUploadConcurrency: UPLOAD_CONCURRENCY }));
  baseUrl = server.baseUrl;
  close = server.close;
});

afterAll(async () => {
  await close?.();
});

const SERVICE = `Bearer ${tokenFor('service', 'uploader')}`;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const pngHeaders = { Authorization: SERVICE, 'Content-Type': 'image/png' };

/** GridFS files, GridFS chunks and asset records in the database: a refused upload changes none. */
async function storedCounts(): Promise<{ files: number; chunks: number; assets: number }> {
  const database = db.connection.db!;
  return {
    files: await database.collection(`${ASSET_BUCKET}.files`).countDocuments(),
    chunks: await database.collection(`${ASSET_BUCKET}.chunks`).countDocuments(),
    assets: await assetModel(db.connection).countDocuments(),
  };
}

function errorCodeOf(text: string): unknown {
  return (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
}

async function uploadSmallPng(path = '/assets'): Promise<{ status: number; text: string; retryAfter: string | null }> {
  const bytes = await makeImage({ contentType: 'image/png', width: 12, height: 12 });
  const res = await fetch(`${baseUrl}${path}`, { method: 'POST', headers: pngHeaders, body: new Uint8Array(bytes) });
  return { status: res.status, text: await res.text(), retryAfter: res.headers.get('retry-after') };
}

describe('upload limits', () => {
  it('answers a declared Content-Length over the limit with 413 before any body byte is sent, and closes the connection', async () => {
    const before = await storedCounts();
    const started = Date.now();

    const res = await sendHeadOnly({
      baseUrl,
      head: `POST /assets HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${SERVICE}\r\nContent-Type: image/png\r\nContent-Length: ${MAX_ASSET_BYTES + 1}\r\n\r\n`,
    });

    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'payload_too_large', message: expect.any(String) } });
    expect(res.headers.connection).toBe('close');
    // The server neither waited for the body nor kept the connection to read it later.
    expect(res.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await storedCounts()).toEqual(before);
  });

  it('cuts a chunked body off with 413 once it passes the limit, reads no further, and leaves no GridFS file', async () => {
    const before = await storedCounts();
    const totalBytes = MAX_ASSET_BYTES + 64 * 1024 * 1024;

    const res = await streamUpload({ baseUrl, path: '/assets', headers: pngHeaders, head: PNG_SIGNATURE, totalBytes, chunked: true });

    expect(res.status).toBe(413);
    expect(errorCodeOf(res.text)).toBe('payload_too_large');
    expect(res.headers.connection).toBe('close');
    // Stopped at the limit: the sender got no further than the limit plus what socket buffers hold.
    expect(res.bytesSent).toBeLessThan(MAX_ASSET_BYTES + 24 * 1024 * 1024);
    // The chunks written up to the limit were deleted before the answer.
    expect(await storedCounts()).toEqual(before);
  });

  it('refuses a new version over the limit the same way, leaving the asset as it was', async () => {
    const created = await uploadSmallPng();
    const assetId = (JSON.parse(created.text) as { assetId: string }).assetId;
    const before = await storedCounts();

    const res = await streamUpload({ baseUrl, path: `/assets/${assetId}`, headers: pngHeaders, head: PNG_SIGNATURE, totalBytes: MAX_ASSET_BYTES + 8 * 1024 * 1024, chunked: true });

    expect(res.status).toBe(413);
    expect(await storedCounts()).toEqual(before);
    expect(await assetModel(db.connection).findOne({ assetId }).lean()).toMatchObject({ versionNumber: 1, versions: [expect.objectContaining({ versionNumber: 1 })] });
  });

  it.each([
    ['with a Content-Length', false],
    ['chunked', true],
  ])('answers a PNG-labelled body that is not a PNG (%s) with 415 from its first bytes, storing nothing', async (_name, chunked) => {
    const before = await storedCounts();
    const jpeg = await makeImage({ contentType: 'image/jpeg', width: 16, height: 16 });

    const res = await streamUpload({ baseUrl, path: '/assets', headers: pngHeaders, head: jpeg.subarray(0, 64), totalBytes: 20 * 1024 * 1024, chunked });

    expect(res.status).toBe(415);
    expect(errorCodeOf(res.text)).toBe('unsupported_media_type');
    // Judged from the signature: the rest of the body was never read (what was sent sat in socket buffers).
    expect(res.bytesSent).toBeLessThan(12 * 1024 * 1024);
    expect(await storedCounts()).toEqual(before);
  });

  it('refuses a compressed body with 415 (stored bytes must be the image)', async () => {
    const res = await fetch(`${baseUrl}/assets`, { method: 'POST', headers: { ...pngHeaders, 'Content-Encoding': 'gzip' }, body: new Uint8Array(randomBytes(64)) });
    expect(res.status).toBe(415);
    expect(errorCodeOf(await res.text())).toBe('unsupported_media_type');
  });

  it('stores a large body streamed in chunks, byte for byte', async () => {
    const totalBytes = 6 * 1024 * 1024 + 123;
    const res = await streamUpload({ baseUrl, path: '/assets', headers: pngHeaders, head: PNG_SIGNATURE, totalBytes, chunked: true });
    expect(res.status).toBe(201);
    const { assetId, size } = JSON.parse(res.text) as { assetId: string; size: number };
    expect(size).toBe(totalBytes);

    const content = await fetch(`${baseUrl}/assets/${assetId}/content`, { headers: { Authorization: SERVICE } });
    const bytes = Buffer.from(await content.arrayBuffer());
    expect(bytes.length).toBe(totalBytes);
    expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(bytes.subarray(8).every((b) => b === 0x42)).toBe(true);
  });

  it('deletes what was written when the client hangs up mid-upload', async () => {
    const before = await storedCounts();
    const abort = new AbortController();
    let release: () => void = () => undefined;
    // Settled at once either way, so a failure above cannot leave a rejection unhandled.
    const outcome = streamUpload({
      baseUrl,
      path: '/assets',
      headers: pngHeaders,
      head: PNG_SIGNATURE,
      totalBytes: 16 * 1024 * 1024,
      chunked: true,
      hold: { afterBytes: 2 * 1024 * 1024, release: new Promise((resolve) => (release = resolve)) },
      signal: abort.signal,
    }).then(
      () => 'answered',
      () => 'cut off',
    );
    // Some chunks reach GridFS while the client holds the rest back...
    await waitFor(async () => ((await storedCounts()).chunks > before.chunks ? true : undefined), { what: 'chunks of the held upload' });
    // ...then it hangs up.
    abort.abort();
    expect(await outcome).toBe('cut off');
    release();

    await waitFor(async () => {
      const now = await storedCounts();
      return now.chunks === before.chunks && now.files === before.files ? true : undefined;
    }, { what: 'the partial upload to be deleted' });
    expect(await storedCounts()).toEqual(before);
  });
});

describe('concurrent uploads per API instance', () => {
  it(`streams at most ${UPLOAD_CONCURRENCY} at once: one more gets 429 with Retry-After, and a slot is free again once an upload ends`, async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const before = await storedCounts();
    // Uploads that send their first 512 KB and then wait: each holds a slot.
    const held = Array.from({ length: UPLOAD_CONCURRENCY }, () =>
      streamUpload({ baseUrl, path: '/assets', headers: pngHeaders, head: PNG_SIGNATURE, totalBytes: 4 * 1024 * 1024, chunked: true, hold: { afterBytes: 512 * 1024, release: released } }),
    );
    for (const upload of held) upload.catch(() => undefined);
    await waitFor(async () => ((await storedCounts()).chunks >= before.chunks + 2 * UPLOAD_CONCURRENCY ? true : undefined), { what: 'both held uploads to be streaming' });

    const refused = await uploadSmallPng();
    expect(refused.status).toBe(429);
    expect(errorCodeOf(refused.text)).toBe('rate_limited');
    expect(refused.retryAfter).toBe('1');

    release();
    const finished = await Promise.all(held);
    expect(finished.map((r) => r.status)).toEqual(held.map(() => 201));
    // The slots were given back when those answers went out.
    expect((await uploadSmallPng()).status).toBe(201);
  });

  it('gives the slot back when a client hangs up mid-upload', async () => {
    const aborts = Array.from({ length: UPLOAD_CONCURRENCY }, () => new AbortController());
    const before = await storedCounts();
    const uploads = aborts.map((abort) =>
      streamUpload({
        baseUrl,
        path: '/assets',
        headers: pngHeaders,
        head: PNG_SIGNATURE,
        totalBytes: 4 * 1024 * 1024,
        chunked: true,
        hold: { afterBytes: 512 * 1024, release: new Promise<void>(() => undefined) },
        signal: abort.signal,
      }).catch(() => undefined),
    );
    await waitFor(async () => ((await storedCounts()).chunks >= before.chunks + 2 * UPLOAD_CONCURRENCY ? true : undefined), { what: 'the held uploads to be streaming' });
    expect((await uploadSmallPng()).status).toBe(429);

    for (const abort of aborts) abort.abort();
    await Promise.all(uploads);
    await waitFor(async () => ((await uploadSmallPng()).status === 201 ? true : undefined), { what: 'a free upload slot' });
  });
});
