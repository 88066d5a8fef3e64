import type { Connection } from 'mongoose';

import type { JobStatus } from '../model/job';
import { jobModel, type JobModel } from './job-model';
import { ResultFileRepository } from './result-file-repository';

/** The statuses retention may delete: finished jobs only (never queued or leased). */
export type RetainedStatus = Extract<JobStatus, 'succeeded' | 'failed' | 'cancelled' | 'dlq'>;

/**
 * The two steps of one retention batch. Deleting by a bounded list of ids (rather than one unbounded
 * deleteMany by age) keeps every write short, so the cleaner never holds the collection for long.
 */
export class RetentionRepository {
  private readonly jobs: JobModel;
  private readonly files: ResultFileRepository;

  constructor(connection: Connection) {
    this.jobs = jobModel(connection);
    this.files = new ResultFileRepository(connection);
  }

  /**
   * Deletes the result files of these jobs (GridFS). Run before the jobs are deleted: a crash in
   * between leaves an expired job without its files (deleted on the next pass), never files that
   * no job lists.
   */
  async deleteResultFiles(params: { ids: readonly string[] }): Promise<number> {
    return this.files.deleteFilesOfJobs(params.ids);
  }

  /** Up to `limit` ids of jobs in `status` that finished before `before`, oldest first. */
  async findExpired(params: { status: RetainedStatus; before: Date; limit: number }): Promise<string[]> {
    const docs = await this.jobs
      .find({ status: params.status, completedAt: { $lt: params.before } }, { _id: 1 })
      .sort({ completedAt: 1 })
      .limit(params.limit)
      .lean<{ _id: string }[]>();
    return docs.map((d) => d._id);
  }

  /**
   * Deletes those of `ids` that still match: a job requeued (or otherwise changed) since it was found
   * no longer has the status and completedAt it was found with, and is kept.
   */
  async deleteExpired(params: { ids: readonly string[]; status: RetainedStatus; before: Date }): Promise<number> {
    if (params.ids.length === 0) return 0;
    const result = await this.jobs.deleteMany({ _id: { $in: [...params.ids] }, status: params.status, completedAt: { $lt: params.before } });
    return result.deletedCount;
  }
}

/**
 * (status, completedAt) serves findExpired on a real MongoDB: equality on status, then the range and
 * sort on completedAt. Kept here, next to the only query that needs it.
 */
export async function ensureRetentionIndexes(connection: Connection): Promise<void> {
  await jobModel(connection).collection.createIndex({ status: 1, completedAt: 1 }, { name: 'retention' });
}
