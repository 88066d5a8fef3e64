import type { Readable } from 'node:stream';

import { authorize, inTenant } from '../auth/access';
import { UploadBody } from '../assets/upload-body';
import { coerceError, InvalidStateError, LeaseConflictError, NotFoundError, ValidationError } from '../errors';
import type { Clock } from '../model/clock';
import { MAX_RESULT_FILES, type ResultFile } from '../model/job';
import type { Principal } from '../model/principal';
import type { JobRepository } from '../storage/job-repository';
import type { ResultFileRepository } from '../storage/result-file-repository';
import { holderOf, type ReportTarget } from './reports';

/** Default for RESULT_FILE_MAX_BYTES. */
export const DEFAULT_RESULT_FILE_MAX_BYTES = 100 * 1024 * 1024;

const MAX_NAME_LENGTH = 200;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

export interface ResultFileContent {
  /** Already reading: storage errors surface from `open`, not mid-stream. */
  stream: Readable;
  file: ResultFile;
}

export interface ResultFilesDeps {
  jobs: Pick<JobRepository, 'findById' | 'addResultFile'>;
  files: Pick<ResultFileRepository, 'uploadChunks' | 'openDownload' | 'delete'>;
  clock: Clock;
  /** The largest file accepted (RESULT_FILE_MAX_BYTES). */
  maxBytes: number;
}

/** 422 unless a file name is 1–200 characters without control characters. */
export function parseResultFileName(value: string): string {
  if (value.length === 0 || value.length > MAX_NAME_LENGTH || CONTROL_CHARACTERS.test(value)) {
    throw new ValidationError('invalid file name', [{ field: 'query.name', message: `must be 1-${MAX_NAME_LENGTH} characters without control characters` }]);
  }
  return value;
}

/**
 * Result files (reports, exports, processed files too big for `result`): the leaseholder streams one
 * into GridFS, the job lists it, the owner downloads it. Bytes are never held whole: the upload is
 * pulled one chunk at a time into storage, the download streamed out. Knows nothing of HTTP.
 */
export class ResultFiles {
  constructor(private readonly deps: ResultFilesDeps) {}

  /**
   * Stores a file for the job the caller holds the lease of. The lease is checked before a byte is
   * read (409 otherwise), and again by the write that lists the file: a lease lost during the upload
   * leaves no file behind.
   */
  async upload(params: { target: ReportTarget; name: string; contentType: string; content: AsyncIterable<Uint8Array> }): Promise<ResultFile> {
    const { target } = params;
    const name = parseResultFileName(params.name);
    const found = await this.deps.jobs.findById(target.jobId);
    const job = found && inTenant(target.principal, found) ? found : null;
    if (!job) throw new NotFoundError('job_not_found', `job ${target.jobId} does not exist`);
    const holder = holderOf(target);
    const holds = job.status === 'leased' && (holder.leaseId === undefined || holder.leaseId === job.leaseId) && (holder.workerId === undefined || holder.workerId === job.workerId);
    if (!holds) throw new LeaseConflictError();
    if (job.files.length >= MAX_RESULT_FILES) throw new InvalidStateError(`a job holds at most ${MAX_RESULT_FILES} result files`);

    const body = new UploadBody(params.content, this.deps.maxBytes, 'a result file');
    const { fileId, size } = await this.deps.files.uploadChunks({
      chunks: body.chunks(),
      filename: name,
      metadata: { jobId: job.jobId, leaseId: job.leaseId, contentType: params.contentType },
    });
    const file: ResultFile = { fileId, name, contentType: params.contentType, size, createdAt: this.deps.clock.now() };
    let listed;
    try {
      listed = await this.deps.jobs.addResultFile({ jobId: job.jobId, holder: { ...holder, leaseId: job.leaseId! }, file, maxFiles: MAX_RESULT_FILES, now: file.createdAt });
    } catch (rawErr) {
      await this.deps.files.delete(fileId).catch(() => undefined);
      throw coerceError(rawErr);
    }
    if (!listed) {
      // The lease was reclaimed (or another upload took the last place) while the bytes streamed in.
      await this.deps.files.delete(fileId).catch(() => undefined);
      throw new LeaseConflictError('the lease of this job ended while the file was uploaded; it was not kept');
    }
    return file;
  }

  /** The bytes of one of the job's files, for whoever may read the job (403/404 as for the job). */
  async open(params: { principal: Principal; jobId: string; fileId: string }): Promise<ResultFileContent> {
    const job = authorize({ principal: params.principal, kind: 'job', action: 'read', id: params.jobId, resource: await this.deps.jobs.findById(params.jobId) });
    const file = job.files.find((f) => f.fileId === params.fileId);
    if (!file) throw new NotFoundError('not_found', `job ${job.jobId} has no file ${params.fileId}`);
    return { file, stream: await this.deps.files.openDownload(file.fileId) };
  }
}
