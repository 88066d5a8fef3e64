import { Readable } from 'node:stream';

import mongoose, { type Connection } from 'mongoose';

/** GridFS bucket name: collections `assetFiles.files` and `assetFiles.chunks`. */
export const ASSET_BUCKET = 'assetFiles';

/** The bytes of asset versions, in GridFS. File ids are hex strings outside this module. */
export class AssetFileRepository {
  private bucket: mongoose.mongo.GridFSBucket | undefined;

  constructor(private readonly connection: Connection) {}

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
   */
  async openDownload(fileId: string): Promise<Readable> {
    const download = this.openBucket().openDownloadStream(new mongoose.Types.ObjectId(fileId));
    const chunks = download[Symbol.asyncIterator]();
    let first: IteratorResult<Buffer>;
    try {
      first = (await chunks.next()) as IteratorResult<Buffer>;
    } catch (rawErr) {
      download.destroy();
      throw rawErr;
    }
    async function* rest(): AsyncGenerator<Buffer> {
      for (let next = first; !next.done; next = (await chunks.next()) as IteratorResult<Buffer>) yield next.value;
    }
    const stream = Readable.from(rest(), { objectMode: false });
    // Also when the reader stops early (a client hung up): release the GridFS cursor.
    stream.once('close', () => download.destroy());
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

  // Created on first use, not in the constructor: the connection may not be open yet when wiring.
  private openBucket(): mongoose.mongo.GridFSBucket {
    if (this.bucket) return this.bucket;
    const db = this.connection.db;
    if (!db) throw new Error('the asset store needs an open database connection');
    this.bucket = new mongoose.mongo.GridFSBucket(db, { bucketName: ASSET_BUCKET });
    return this.bucket;
  }
}
