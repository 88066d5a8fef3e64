import { randomBytes } from 'node:crypto';

import mongoose from 'mongoose';

import { ASSET_BUCKET, AssetFileRepository } from '../../src/storage/asset-file-repository';
import { useTestDatabase } from '../helpers/database';
import { clearCollections } from '../helpers/storage';

/** The contract of AssetFileRepository: version bytes in GridFS, against the real test database. */
const db = useTestDatabase();
let files: AssetFileRepository;

const FILES = `${ASSET_BUCKET}.files`;
const CHUNKS = `${ASSET_BUCKET}.chunks`;
/** GridFS's default chunk size: bytes beyond it span several chunk documents. */
const CHUNK_BYTES = 255 * 1024;

beforeAll(() => {
  files = new AssetFileRepository(db.connection);
});
beforeEach(async () => {
  await clearCollections(db.connection, [FILES, CHUNKS]);
});

async function chunkCount(fileId?: string): Promise<number> {
  return db.connection.collection(CHUNKS).countDocuments(fileId ? { files_id: new mongoose.Types.ObjectId(fileId) } : {});
}

async function* slices(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

describe('upload / read', () => {
  it('stores bytes spanning several chunks as one file, with its metadata, and reads them back', async () => {
    const bytes = randomBytes(2 * CHUNK_BYTES + 1_000);
    const fileId = await files.upload({ bytes, filename: 'cat.png', metadata: { assetId: 'asset_1', contentType: 'image/png' } });

    expect(fileId).toMatch(/^[0-9a-f]{24}$/);
    expect((await files.read(fileId)).equals(bytes)).toBe(true);
    expect(await chunkCount(fileId)).toBe(3);
    const doc = await db.connection.collection(FILES).findOne({ _id: new mongoose.Types.ObjectId(fileId) });
    expect(doc).toMatchObject({ filename: 'cat.png', length: bytes.length, metadata: { assetId: 'asset_1', contentType: 'image/png' } });
  });

  it('stores an empty file', async () => {
    const fileId = await files.upload({ bytes: Buffer.alloc(0), filename: 'empty.png', metadata: {} });
    expect((await files.read(fileId)).length).toBe(0);
  });
});

describe('uploadChunks', () => {
  it('streams chunks of any size into one file and reports its size', async () => {
    const bytes = randomBytes(CHUNK_BYTES + 12_345);
    const { fileId, size } = await files.uploadChunks({ chunks: slices(bytes, 10_000), filename: 'big.png', metadata: { assetId: 'asset_2' } });
    expect(size).toBe(bytes.length);
    expect((await files.read(fileId)).equals(bytes)).toBe(true);
    // A plain iterable works as well as an async one.
    const parts = [Buffer.from('ab'), Buffer.from('cd')];
    const small = await files.uploadChunks({ chunks: parts, filename: 'small.png', metadata: {} });
    expect(small.size).toBe(4);
    expect((await files.read(small.fileId)).toString()).toBe('abcd');
  });

  it('when the chunks fail part-way, deletes what was written and passes the error on: no partial file is left', async () => {
    const failure = new Error('the client hung up');
    async function* failing(): AsyncGenerator<Buffer> {
      yield randomBytes(CHUNK_BYTES);
      yield randomBytes(CHUNK_BYTES);
      yield randomBytes(10);
      throw failure;
    }
    await expect(files.uploadChunks({ chunks: failing(), filename: 'partial.png', metadata: {} })).rejects.toBe(failure);
    expect(await chunkCount()).toBe(0);
    expect(await db.connection.collection(FILES).countDocuments({})).toBe(0);
  });
});

describe('openDownload', () => {
  it('streams the bytes of a file', async () => {
    const bytes = randomBytes(CHUNK_BYTES + 5);
    const fileId = await files.upload({ bytes, filename: 'cat.png', metadata: {} });
    const parts: Buffer[] = [];
    for await (const part of await files.openDownload(fileId)) parts.push(part as Buffer);
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
  });

  it('rejects for a missing file before any byte is streamed', async () => {
    const missing = new mongoose.Types.ObjectId().toHexString();
    await expect(files.openDownload(missing)).rejects.toThrow();
    await expect(files.read(missing)).rejects.toThrow();
  });

  it('lets a reader stop early (the stream closes without error)', async () => {
    const fileId = await files.upload({ bytes: randomBytes(3 * CHUNK_BYTES), filename: 'cat.png', metadata: {} });
    const stream = await files.openDownload(fileId);
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    for await (const part of stream) {
      expect((part as Buffer).length).toBeGreaterThan(0);
      break;
    }
    await closed;
    expect(stream.destroyed).toBe(true);
  });
});

describe('delete', () => {
  it('removes the file and its chunks; other files stay', async () => {
    const doomed = await files.upload({ bytes: randomBytes(CHUNK_BYTES + 1), filename: 'a.png', metadata: {} });
    const kept = await files.upload({ bytes: Buffer.from('kept'), filename: 'b.png', metadata: {} });
    await files.delete(doomed);

    expect(await chunkCount(doomed)).toBe(0);
    await expect(files.read(doomed)).rejects.toThrow();
    expect((await files.read(kept)).toString()).toBe('kept');
  });

  it('rejects for a file that does not exist', async () => {
    await expect(files.delete(new mongoose.Types.ObjectId().toHexString())).rejects.toThrow();
  });
});
