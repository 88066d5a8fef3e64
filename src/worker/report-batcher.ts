import { apiErrorFor, NotFoundApiError } from '../client/errors';
import type { BatchReportItem, BatchReportResponse } from '../client/types';
import { ERROR_CATALOG, isErrorCode } from '../error-catalog';
import { GroupCommit } from '../group-commit';

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

/** What a report's own single endpoint would have answered: accepted, or its error. */
type Outcome = { accepted: true } | { error: unknown };

/**
 * Reports of finished jobs, sent in batches (POST /jobs/reports) through a GroupCommit: a report
 * submitted while no batch is in flight goes at once; reports submitted meanwhile go together in the
 * next batch, which waits `lingerMs` more while they keep coming (so a busy worker sends one request
 * per few ms, an idle one never waits). Each submit resolves when its own report was accepted, and
 * rejects with the error its single endpoint would have answered (a 409 as ConflictApiError, ...) or
 * with the batch's transport error (the runner's outage retries then submit it again). Against an
 * API without the batch route (404), every report from then on goes to its single endpoint.
 */
export class ReportBatcher {
  private single = false;
  private readonly batches: GroupCommit<BatchReportItem, Outcome>;

  constructor(private readonly options: ReportBatcherOptions) {
    this.batches = new GroupCommit({ flush: (reports) => this.flush(reports), maxBatch: MAX_BATCH, maxWeight: MAX_BATCH_BYTES, lingerMs: options.lingerMs ?? 2 });
  }

  /** Whether reports go one by one (the API has no batch route). */
  get fallenBack(): boolean {
    return this.single;
  }

  async submit(report: BatchReportItem): Promise<void> {
    if (this.single) return this.options.sendOne(report);
    const bytes = Buffer.byteLength(JSON.stringify(report));
    if (bytes > MAX_BATCH_BYTES) return this.options.sendOne(report);
    const outcome = await this.batches.submit(report, bytes);
    if ('error' in outcome) throw outcome.error;
  }

  private async flush(reports: BatchReportItem[]): Promise<Outcome[]> {
    if (this.single) return this.sendEachAlone(reports);
    let answer: BatchReportResponse;
    try {
      answer = await this.options.send(reports);
    } catch (err) {
      // An older API has no batch route: the route itself is unknown (not one report's job).
      if (err instanceof NotFoundApiError && err.code === 'not_found') {
        this.single = true;
        this.options.onFallback?.();
        return this.sendEachAlone(reports);
      }
      // A transport error: every report of the batch gets it.
      throw err;
    }
    return reports.map((_, i): Outcome => {
      const result = answer.results[i];
      if (!result) return { error: new Error(`the batch answer has no result for report ${i}`) };
      if ('error' in result) {
        const { code } = result.error;
        return { error: apiErrorFor(isErrorCode(code) ? ERROR_CATALOG[code].status : 500, { error: result.error }) };
      }
      return { accepted: true };
    });
  }

  private sendEachAlone(reports: readonly BatchReportItem[]): Promise<Outcome[]> {
    return Promise.all(reports.map((report) => this.options.sendOne(report).then((): Outcome => ({ accepted: true }), (error: unknown): Outcome => ({ error }))));
  }
}
