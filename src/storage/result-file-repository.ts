import type { Connection } from 'mongoose';

import { AssetFileRepository } from './asset-file-repository';

/** GridFS bucket of jobs' result files: collections `resultFiles.files` and `resultFiles.chunks`. */
export const RESULT_FILE_BUCKET = 'resultFiles';

/**
 * The bytes of jobs' result files, streamed in and out of GridFS as assets are (same bounded-memory
 * upload and download). Each file's metadata names its job, so a job's files can be found and deleted
 * with it whether or not the job document got to list them.
 */
export class ResultFileRepository extends AssetFileRepository {
  constructor(private readonly conn: Connection) {
    super(conn, RESULT_FILE_BUCKET);
  }

  /** Deletes every result file of these jobs (chunks and files documents); returns how many. */
  async deleteFilesOfJobs(jobIds: readonly string[]): Promise<number> {
    if (jobIds.length === 0) return 0;
    const files = await this.filesCollection()
      .find({ 'metadata.jobId': { $in: [...jobIds] } }, { projection: { _id: 1 } })
      .toArray();
    for (const file of files) await this.delete(String(file._id));
    return files.length;
  }

  /** Ids of the files stored for a job (tests, retention checks). */
  async fileIdsOfJob(jobId: string): Promise<string[]> {
    const files = await this.filesCollection().find({ 'metadata.jobId': jobId }, { projection: { _id: 1 } }).toArray();
    return files.map((f) => String(f._id));
  }

  private filesCollection() {
    const db = this.conn.db;
    if (!db) throw new Error('the file store needs an open database connection');
    return db.collection(`${RESULT_FILE_BUCKET}.files`);
  }
}

/** Finding a job's files (retention, bulk delete) is by metadata.jobId. */
export async function ensureResultFileIndexes(connection: Connection): Promise<void> {
  const db = connection.db;
  if (!db) throw new Error('indexes need an open database connection');
  await db.collection(`${RESULT_FILE_BUCKET}.files`).createIndex({ 'metadata.jobId': 1 }, { name: 'by_job' });
}
