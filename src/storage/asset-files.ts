import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import mongoose, { type Connection } from 'mongoose';

/** GridFS bucket name: collections `assetFiles.files` and `assetFiles.chunks`. */
export const ASSET_BUCKET = 'assetFiles';

/** The bytes of asset versions, in GridFS. File ids are hex strings outside this module. */
export class AssetFiles {
  private bucket: mongoose.mongo.GridFSBucket | undefined;

  constructor(private readonly connection: Connection) {}

  /** Stores the bytes as one GridFS file and returns its id. */
  async upload(params: { bytes: Buffer; filename: string; metadata: Record<string, unknown> }): Promise<string> {
    const upload = this.openBucket().openUploadStream(params.filename, { metadata: params.metadata });
    // One chunk in an array: Readable.from(buffer) would iterate it byte by byte.
    await pipeline(Readable.from([params.bytes]), upload);
    return upload.id.toHexString();
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
