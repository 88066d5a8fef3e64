import { Readable } from 'node:stream';

import mongoose, { type Connection } from 'mongoose';

/** GridFS bucket name: collections `assetFiles.files` and `assetFiles.chunks`. */
export const ASSET_BUCKET = 'assetFiles';

/** Chunk documents (255 KB each) one download reads per round trip. */
const DOWNLOAD_BATCH = 4;

/**
 * The bytes of asset versions, in GridFS (and, in their own bucket, jobs' result files: see
 * result-file-repository.ts). File ids are hex strings outside this module.
 */
export class AssetFileRepository {
  private bucket: mongoose.mongo.GridFSBucket | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly bucketName: string = ASSET_BUCKET,
  ) {}

  /** Stores the bytes as one GridFS file and returns its id. */
  async upload(params: { bytes: Buffer; filename: string; metadata: Record<string, unknown> }): Promise<string> {
    return (await this.uploadChunks({ chunks: [params.bytes], filename: params.filename, metadata: params.metadata })).fileId;
  }

  /**
   * Streams the chunks into one GridFS file, pulling the next only once the last is written (GridFS
   * writes a 255 KB chunk document at a time), so memory stays bounded whatever the size. When the
   * chunks fail (a body over the limit, a client that hung up) or a write fails, every chunk already
   * written is deleted before the error is passed on: no partial file is left. The files document
   * that makes a GridFS file visible is only written at the end.
   */
  async uploadChunks(params: { chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>; filename: string; metadata: Record<string, unknown> }): Promise<{ fileId: string; size: number }> {
    const bucket = this.openBucket();
    const upload = bucket.openUploadStream(params.filename, { metadata: params.metadata });
    // Failures surface through the write and end callbacks; without a listener an 'error' event would crash the process.
    upload.on('error', () => undefined);
    let size = 0;
    try {
      for await (const chunk of params.chunks) {
        // One chunk in flight at a time: after a failure no insert can land behind the clean-up.
        await new Promise<void>((resolve, reject) => upload.write(chunk, (err) => (err ? reject(err) : resolve())));
        size += chunk.length;
      }
      await new Promise<void>((resolve, reject) => upload.end((err?: Error | null) => (err ? reject(err) : resolve())));
    } catch (rawErr) {
      // Deletes the chunks written so far (and the files document, had the end got that far).
      await bucket.delete(upload.id).catch(() => undefined);
      upload.destroy();
      throw rawErr;
    }
    return { fileId: upload.id.toHexString(), size };
  }

  /**
   * The file's bytes as a stream whose first chunk is already read: a missing file or an unreachable
   * database rejects here, while a caller can still answer with an error, not halfway through a response.
   *
   * The chunks are read with a cursor of our own, a few chunk documents per batch, rather than
   * GridFS's download stream: its cursor takes the server's default batches (101 documents first,
   * then up to 16 MB; the test server sends whole files), so a 100 MB file cost ~165 MB of memory
   * on its way out. Here at most DOWNLOAD_BATCH chunks (about 1 MB) are held at a time.
   */
  async openDownload(fileId: string): Promise<Readable> {
    const id = new mongoose.Types.ObjectId(fileId);
    const db = this.openDb();
    const file = await db.collection(`${this.bucketName}.files`).findOne({ _id: id }, { projection: { length: 1, chunkSize: 1 } });
    if (!file) throw new Error(`FileNotFound: no file with id ${fileId} in ${this.bucketName}`);
    const length = Number(file.length);
    const expectedChunks = Math.ceil(length / Number(file.chunkSize));
    const cursor = db.collection(`${this.bucketName}.chunks`).find({ files_id: id }, { projection: { n: 1, data: 1 } }).sort({ n: 1 }).batchSize(DOWNLOAD_BATCH);
    let expected = 0;
    const nextChunk = async (): Promise<Buffer | null> => {
      if (expected >= expectedChunks) return null;
      const chunk = await cursor.next();
      if (!chunk || chunk.n !== expected) throw new Error(`ChunkIsMissing: file ${fileId} has no chunk ${expected}`);
      expected += 1;
      const data = chunk.data as mongoose.mongo.Binary;
      return Buffer.from(data.buffer.buffer, data.buffer.byteOffset, data.position);
    };
    let first: Buffer | null;
    try {
      first = await nextChunk();
    } catch (rawErr) {
      await cursor.close().catch(() => undefined);
      throw rawErr;
    }
    async function* rest(): AsyncGenerator<Buffer> {
      for (let next = first; next !== null; next = await nextChunk()) yield next;
    }
    const stream = Readable.from(rest(), { objectMode: false });
    // Also when the reader stops early (a client hung up): release the cursor.
    stream.once('close', () => void cursor.close().catch(() => undefined));
    return stream;
  }

  async read(fileId: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of await this.openDownload(fileId)) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }

  async delete(fileId: string): Promise<void> {
    await this.openBucket().delete(new mongoose.Types.ObjectId(fileId));
  }

  private openDb(): mongoose.mongo.Db {
    const db = this.connection.db;
    if (!db) throw new Error('the file store needs an open database connection');
    return db;
  }

  // Created on first use, not in the constructor: the connection may not be open yet when wiring.
  private openBucket(): mongoose.mongo.GridFSBucket {
    if (this.bucket) return this.bucket;
    const db = this.openDb();
    this.bucket = new mongoose.mongo.GridFSBucket(db, { bucketName: this.bucketName });
    return this.bucket;
  }
}
