import { apiErrorFor, NotFoundApiError } from '../client/errors';
import type { BatchReportItem, BatchReportResponse } from '../client/types';
import { ERROR_CATALOG, isErrorCode } from '../error-catalog';

/** At most this many reports per batch (API.md), and about this many bytes of JSON (the API takes 1 MB bodies). */
const MAX_BATCH = 100;
const MAX_BATCH_BYTES = 512 * 1024;

export interface ReportBatcherOptions {
  /** POST /jobs/reports. */
  send: (reports: BatchReportItem[]) => Promise<BatchReportResponse>;
  /** The single endpoint of the report's outcome: for an API without batch reports, or a report too big to share a batch. */
  sendOne: (report: BatchReportItem) => Promise<void>;
  /** While reports keep coming (another within this many ms), a flush waits this long for more. */
  lingerMs?: number;
  /** Called once when the API turns out not to have batch reports (404). */
  onFallback?: () => void;
}

interface Pending {
  report: BatchReportItem;
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Reports of finished jobs, sent in batches (POST /jobs/reports). A report submitted while no batch
 * is in flight goes at once; reports submitted meanwhile go together in the next batch, which
 * waits `lingerMs` more while they keep coming (so a busy worker sends one request per few ms, an
 * idle one never waits). Each submit resolves when its own report was accepted, and rejects with
 * the error its single endpoint would have answered (a 409 as ConflictApiError, ...) or with the
 * batch's transport error (the runner's outage retries then submit it again). Against an API
 * without the batch route (404), every report from then on goes to its single endpoint.
 */
export class ReportBatcher {
  private queue: Pending[] = [];
  private flushing = false;
  private lastSubmitAt = Number.NEGATIVE_INFINITY;
  private single = false;

  constructor(private readonly options: ReportBatcherOptions) {}

  /** Whether reports go one by one (the API has no batch route). */
  get fallenBack(): boolean {
    return this.single;
  }

  submit(report: BatchReportItem): Promise<void> {
    if (this.single) return this.options.sendOne(report);
    const bytes = Buffer.byteLength(JSON.stringify(report));
    if (bytes > MAX_BATCH_BYTES) return this.options.sendOne(report);
    const now = performance.now();
    const busy = now - this.lastSubmitAt <= (this.options.lingerMs ?? 2);
    this.lastSubmitAt = now;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ report, bytes, resolve, reject });
      if (!this.flushing) void this.drain(busy);
    });
  }

  private async drain(busy: boolean): Promise<void> {
    this.flushing = true;
    try {
      const linger = this.options.lingerMs ?? 2;
      if (busy && linger > 0) await new Promise((resolve) => setTimeout(resolve, linger));
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        if (this.single) {
          for (const entry of batch) this.options.sendOne(entry.report).then(entry.resolve, entry.reject);
          continue;
        }
        await this.flush(batch);
      }
    } finally {
      this.flushing = false;
    }
  }

  private takeBatch(): Pending[] {
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < MAX_BATCH && bytes + this.queue[count]!.bytes <= MAX_BATCH_BYTES) {
      bytes += this.queue[count]!.bytes;
      count += 1;
    }
    return this.queue.splice(0, Math.max(1, count));
  }

  private async flush(batch: Pending[]): Promise<void> {
    let answer: BatchReportResponse;
    try {
      answer = await this.options.send(batch.map((entry) => entry.report));
    } catch (err) {
      // An older API has no batch route: the route itself is unknown (not one report's job).
      if (err instanceof NotFoundApiError && err.code === 'not_found') {
        this.single = true;
        this.options.onFallback?.();
        for (const entry of batch) this.options.sendOne(entry.report).then(entry.resolve, entry.reject);
        return;
      }
      for (const entry of batch) entry.reject(err);
      return;
    }
    batch.forEach((entry, i) => {
      const result = answer.results[i];
      if (!result) entry.reject(new Error(`the batch answer has no result for report ${i}`));
      else if ('error' in result) {
        const { code } = result.error;
        entry.reject(apiErrorFor(isErrorCode(code) ? ERROR_CATALOG[code].status : 500, { error: result.error }));
      } else entry.resolve();
    });
  }
}
