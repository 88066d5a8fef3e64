import { ownerPrincipal } from '../auth/access';
import type { BatchReportItem, BatchReportResponse, HeartbeatResponse, LeasedJobWire, LeaseResponse } from '../client/types';
import { ConflictApiError, NetworkError, NotFoundApiError, RateLimitedApiError, UnavailableApiError } from '../client/errors';
import type { Logger } from '../logger';
import { PartialResult, PermanentJobError, RetryableJobError, SnoozeJobError, type JobHandler, type UploadedFile } from './handler';
import { PollBackoff } from './poll-backoff';
import { ReportBatcher } from './report-batcher';
import type { Tracing } from '../tracing/tracing';

/** Upper bound on retrying one report through an API outage. */
const MAX_REPORT_RETRY_MS = 60_000;

/** The part of the jobs client the runner uses (the real JobsClient, or a fake in unit tests). */
export interface WorkerApi {
  lease(params: { limit: number; types?: readonly string[]; waitSeconds?: number; signal?: AbortSignal }): Promise<LeaseResponse>;
  heartbeat(jobId: string, body: { leaseId: string; progress?: number; irreversible?: boolean; checkpoint?: unknown }): Promise<HeartbeatResponse>;
  succeed(jobId: string, body: { leaseId: string; result?: unknown; durationMs?: number }): Promise<unknown>;
  fail(jobId: string, body: { leaseId: string; error: { message: string; code?: string; retryable?: boolean }; durationMs?: number }): Promise<unknown>;
  /** Without it (an API client that predates snooze) a snooze is reported as a retryable failure. */
  snooze?(jobId: string, body: { leaseId: string; seconds: number; durationMs?: number }): Promise<unknown>;
  /** Without it, every report goes to its single endpoint. */
  reportBatch?(body: { reports: BatchReportItem[] }): Promise<BatchReportResponse>;
  /** Result files (`ctx.uploadFile`); a fake without it makes uploads fail. */
  uploadFile?(jobId: string, params: { leaseId: string; name: string; contentType: string; body: AsyncIterable<Uint8Array> | Uint8Array; signal?: AbortSignal }): Promise<UploadedFile>;
}

export interface WorkerRunnerOptions {
  api: WorkerApi;
  handlers: ReadonlyMap<string, JobHandler>;
  logger: Logger;
  concurrency: number;
  /** Types to lease; null: every type there is a handler for. */
  types?: readonly string[] | null;
  shutdownGraceMs: number;
  /** Idle/failed-poll backoff bounds. */
  pollMinMs?: number;
  pollMaxMs?: number;
  /** Long-poll: ask the API to hold an empty lease call this long (0: plain polling). */
  leaseWaitSeconds?: number;
  /**
   * Full leases: while the queue has a backlog (the last lease call came back full), wait until this
   * many slots are free before leasing again, or `leaseLingerMs` at most (default: half the
   * concurrency, up to 50). A drained queue is asked at once, so a lone job never waits.
   */
  leaseBatchTarget?: number;
  leaseLingerMs?: number;
  now?: () => number;
  random?: () => number;
  /** Waits `ms` or until `signal` aborts; injected so tests can observe the poll loop. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Called for every finished job (metrics, tests). */
  onJobFinished?: (event: JobFinishedEvent) => void;
  /**
   * Report finished jobs in batches (POST /jobs/reports; default on when the API client has it):
   * at once while no batch is in flight, else together in the next, which lingers
   * `reportLingerMs` (default 2) while reports keep coming. An API without the route gets single reports.
   */
  batchReports?: boolean;
  reportLingerMs?: number;
  /** A `job.run` span per run, in the trace the job was enqueued in (see src/tracing). */
  tracing?: Pick<Tracing, 'enabled' | 'withSpan'>;
}

export type JobOutcome = 'succeeded' | 'failed' | 'snoozed' | 'abandoned';

export interface JobFinishedEvent {
  jobId: string;
  type: string;
  outcome: JobOutcome;
  durationMs: number;
  errorCode?: string;
}

/** Why a running job's signal was aborted. */
export type AbortReason = 'timeout' | 'cancelled' | 'shutdown' | 'lease_lost';

class JobAbort extends Error {
  constructor(readonly reason: AbortReason) {
    super(`job aborted: ${reason}`);
    this.name = 'JobAbort';
  }
}

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

interface RunningJob {
  job: LeasedJobWire;
  controller: AbortController;
  done: Promise<void>;
}

/**
 * The worker loop: lease up to the free capacity, run each job's handler under the lease length with
 * an AbortSignal, heartbeat at a third of the lease, and report the outcome. Only the runner reports
 * job state; handlers return a result or throw.
 */
export class WorkerRunner {
  /** Running jobs by lease id. */
  private readonly running = new Map<string, RunningJob>();
  private readonly stopController = new AbortController();
  private readonly backoff: PollBackoff;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly batcher: ReportBatcher | undefined;

  constructor(private readonly options: WorkerRunnerOptions) {
    const { api } = options;
    if (api.reportBatch && options.batchReports !== false) {
      this.batcher = new ReportBatcher({
        send: (reports) => api.reportBatch!({ reports }),
        sendOne: (report) => this.sendSingle(report),
        ...(options.reportLingerMs === undefined ? {} : { lingerMs: options.reportLingerMs }),
        onFallback: () => options.logger.info('the API has no batch reports (POST /jobs/reports answered 404): reporting one by one'),
      });
    }
    this.backoff = new PollBackoff({
      minMs: options.pollMinMs ?? 250,
      maxMs: options.pollMaxMs ?? 5_000,
      random: options.random ?? Math.random,
    });
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? abortableSleep;
  }

  get activeJobs(): number {
    return this.running.size;
  }

  start(): void {
    this.loop ??= this.pollLoop();
  }

  /**
   * Graceful stop: no more leasing; running jobs get `shutdownGraceMs` to finish and are then
   * aborted and reported as retryable failures. Resolves when every job is reported.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopController.abort();
      await this.loop;
      const all = Promise.all([...this.running.values()].map((r) => r.done));
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace_over'>((resolve) => {
        timer = setTimeout(() => resolve('grace_over'), this.options.shutdownGraceMs);
      });
      const first = await Promise.race([all.then(() => 'done' as const), graceOver]);
      clearTimeout(timer);
      if (first === 'grace_over') {
        this.options.logger.warn({ jobs: [...this.running.values()].map((r) => r.job.jobId) }, 'shutdown grace period over: failing running jobs as retryable');
        for (const r of this.running.values()) r.controller.abort(new JobAbort('shutdown'));
        await Promise.all([...this.running.values()].map((r) => r.done));
      }
    })();
    return this.stopping;
  }

  private types(): readonly string[] {
    return this.options.types ?? [...this.options.handlers.keys()];
  }

  private async pollLoop(): Promise<void> {
    const stopSignal = this.stopController.signal;
    const batchTarget = Math.max(1, Math.min(this.options.concurrency, 100, this.options.leaseBatchTarget ?? Math.min(50, Math.ceil(this.options.concurrency / 2))));
    const lingerMs = this.options.leaseLingerMs ?? 20;
    let backlog = false;
    while (!stopSignal.aborted) {
      const free = this.options.concurrency - this.running.size;
      if (free <= 0) {
        await this.waitForFreeCapacity();
        continue;
      }
      // Jobs are waiting: a few ms for more capacity to free make one fuller lease call instead of
      // many calls of one or two jobs each.
      if (backlog && free < batchTarget) {
        backlog = false;
        await this.waitForCapacity(batchTarget, lingerMs);
        continue;
      }
      let leased: LeaseResponse;
      const waitSeconds = this.options.leaseWaitSeconds ?? 0;
      const askedAt = this.now();
      try {
        leased = await this.options.api.lease({
          limit: Math.min(free, 100),
          types: this.types(),
          ...(waitSeconds > 0 ? { waitSeconds } : {}),
          signal: stopSignal,
        });
      } catch (err) {
        if (stopSignal.aborted) break;
        // A 429 says how long to wait; otherwise (API or database down) the backoff grows.
        const retryAfterMs = err instanceof RateLimitedApiError && err.retryAfterSeconds !== undefined ? err.retryAfterSeconds * 1000 : 0;
        const wait = Math.max(this.backoff.next(), retryAfterMs);
        this.options.logger.warn({ err, retryInMs: wait }, 'lease failed; backing off');
        await this.sleep(wait, stopSignal);
        continue;
      }
      if (leased.jobs.length === 0) {
        // A long-poll that came back empty already waited on the server; poll again at once. An
        // empty answer that came back early (an API without long-poll) gets the backoff instead.
        const waitedOnServer = waitSeconds > 0 && this.now() - askedAt >= (waitSeconds * 1000) / 2;
        if (!waitedOnServer) await this.sleep(this.backoff.next(), stopSignal);
        continue;
      }
      this.backoff.reset();
      backlog = leased.jobs.length >= Math.min(free, 100);
      const leaseMs = (job: LeasedJobWire): number => Math.max(1_000, Date.parse(job.leaseExpiresAt) - Date.parse(leased.leasedAt));
      for (const job of leased.jobs) this.startJob(job, leaseMs(job));
    }
  }

  /** Resolves once `target` slots are free, after `lingerMs` at most, or on stop. */
  private async waitForCapacity(target: number, lingerMs: number): Promise<void> {
    const deadline = this.now() + lingerMs;
    const stopSignal = this.stopController.signal;
    while (!stopSignal.aborted && this.options.concurrency - this.running.size < target) {
      const left = deadline - this.now();
      if (left <= 0) return;
      // The timer settles the capacity wait too, so its stop listener is removed.
      const timer = setTimeout(() => this.wakeUp?.(), left);
      await this.waitForFreeCapacity();
      clearTimeout(timer);
    }
  }

  private waitForFreeCapacity(): Promise<void> {
    return new Promise((resolve) => {
      const stopSignal = this.stopController.signal;
      const done = (): void => {
        this.wakeUp = undefined;
        stopSignal.removeEventListener('abort', done);
        resolve();
      };
      this.wakeUp = done;
      stopSignal.addEventListener('abort', done, { once: true });
    });
  }

  private startJob(job: LeasedJobWire, leaseMs: number): void {
    const controller = new AbortController();
    const entry: RunningJob = { job, controller, done: Promise.resolve() };
    entry.done = this.runJob(job, controller, leaseMs).finally(() => {
      this.running.delete(job.leaseId);
      this.wakeUp?.();
    });
    // Keyed by lease: a worker woken from a freeze may be handed a job it still runs on a stale lease.
    this.running.set(job.leaseId, entry);
  }

  /**
   * Sends a report, retrying while the API is unreachable or answers 503 (a restart, a database
   * failover) for up to one lease length (at most a minute): the lease stays ours until the API
   * reclaims it, so a late report is still accepted, and one after the reclaim is refused (409).
   * Without this a restart longer than the client's own retries would cost the job a second run.
   */
  private async reportThroughOutages(send: () => Promise<unknown>, leaseMs: number, log: Logger): Promise<void> {
    const deadline = this.now() + Math.min(leaseMs, MAX_REPORT_RETRY_MS);
    const backoff = new PollBackoff({ minMs: 250, maxMs: 2_000, random: this.options.random ?? Math.random });
    for (;;) {
      try {
        await send();
        return;
      } catch (err) {
        const wait = backoff.next();
        if (!(err instanceof NetworkError || err instanceof UnavailableApiError) || this.now() + wait > deadline) throw err;
        log.warn({ err, retryInMs: wait }, 'report failed; retrying');
        await this.sleep(wait, new AbortController().signal);
      }
    }
  }

  /** A report through its single endpoint (no batching, or an API without it). */
  private async sendSingle(report: BatchReportItem): Promise<void> {
    const { api } = this.options;
    const durationMs = report.durationMs === undefined ? {} : { durationMs: report.durationMs };
    switch (report.outcome) {
      case 'succeeded':
        await api.succeed(report.jobId, { leaseId: report.leaseId, ...('result' in report ? { result: report.result } : {}), ...durationMs });
        return;
      case 'failed':
        await api.fail(report.jobId, { leaseId: report.leaseId, error: report.error, ...durationMs });
        return;
      case 'snoozed':
        try {
          if (!api.snooze) throw new NotFoundApiError(404, 'not_found', 'this API client has no snooze');
          await api.snooze(report.jobId, { leaseId: report.leaseId, seconds: report.seconds, ...durationMs });
        } catch (err) {
          // An API that predates snooze: the job is retried instead (the attempt counts).
          if (!(err instanceof NotFoundApiError && err.code === 'not_found')) throw err;
          await api.fail(report.jobId, { leaseId: report.leaseId, error: { message: `snooze for ${report.seconds} s is not supported by this API; retried instead`, code: 'snoozed', retryable: true }, ...durationMs });
        }
    }
  }

  /** `alone`: a traced run reports through its single endpoint, so the report is a span of the job's own trace (a batch belongs to no one trace). */
  private report(item: BatchReportItem, alone: boolean): Promise<void> {
    return this.batcher && !alone ? this.batcher.submit(item) : this.sendSingle(item);
  }

  private async runJob(job: LeasedJobWire, controller: AbortController, leaseMs: number): Promise<void> {
    const tracing = this.options.tracing;
    if (!tracing?.enabled) {
      await this.runJobUntraced(job, controller, leaseMs, false);
      return;
    }
    // The run, its heartbeats and its report are one span of the enqueuing request's trace.
    await tracing.withSpan(
      'job.run',
      { parent: job.traceparent ?? null, kind: 'consumer', attributes: { 'job.id': job.jobId, 'job.type': job.type, 'job.attempt': job.attempt } },
      async (span) => {
        const outcome = await this.runJobUntraced(job, controller, leaseMs, job.traceparent != null);
        span.setAttributes({ 'job.outcome': outcome });
        if (outcome !== 'succeeded') span.fail();
      },
    );
  }

  private async runJobUntraced(job: LeasedJobWire, controller: AbortController, leaseMs: number, reportAlone: boolean): Promise<JobOutcome> {
    const { api, logger } = this.options;
    const log = logger.child({ jobId: job.jobId, type: job.type, attempt: job.attempt });
    const started = this.now();
    let progress: number | undefined;
    let checkpoint: unknown = job.checkpoint ?? null;
    const handler = this.options.handlers.get(job.type);
    /** A heartbeat the handler waits for (point of no return, checkpoint): a cancel or a lost lease aborts the job. */
    const awaitedHeartbeat = async (body: { irreversible?: boolean; checkpoint?: unknown }): Promise<void> => {
      if (controller.signal.aborted) throw controller.signal.reason;
      let beat: HeartbeatResponse;
      try {
        beat = await api.heartbeat(job.jobId, { leaseId: job.leaseId, ...body, ...(progress === undefined ? {} : { progress }) });
      } catch (err) {
        if (err instanceof ConflictApiError) controller.abort(new JobAbort('lease_lost'));
        throw err;
      }
      if (beat.cancelRequested) {
        controller.abort(new JobAbort('cancelled'));
        throw controller.signal.reason;
      }
    };

    // The job may take as long as its lease; past that it is aborted and reported as timed out.
    const timeout = setTimeout(() => controller.abort(new JobAbort('timeout')), leaseMs);
    const heartbeat = setInterval(() => {
      api.heartbeat(job.jobId, { leaseId: job.leaseId, ...(progress === undefined ? {} : { progress }) }).then(
        (beat) => {
          if (beat.cancelRequested) controller.abort(new JobAbort('cancelled'));
        },
        (err: unknown) => {
          if (err instanceof ConflictApiError) controller.abort(new JobAbort('lease_lost'));
          else log.warn({ err }, 'heartbeat failed');
        },
      );
    }, Math.max(100, Math.floor(leaseMs / 3)));

    const aborted = new Promise<never>((_, reject) => {
      const onAbort = (): void => reject(controller.signal.reason instanceof JobAbort ? controller.signal.reason : new JobAbort('shutdown'));
      if (controller.signal.aborted) onAbort();
      else controller.signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);

    let result: unknown;
    let failure: ReturnType<typeof describeFailure> | undefined;
    let snoozeSeconds: number | undefined;
    try {
      if (!handler) throw new PermanentJobError(`this worker has no handler for job type "${job.type}"`, 'no_handler');
      result = await Promise.race([
        handler({
          jobId: job.jobId,
          type: job.type,
          payload: job.payload,
          attempt: job.attempt,
          // An older API sends no owner: the handlers then keep today's behaviour (no owner check).
          ...(job.owner ? { owner: ownerPrincipal(job.owner) } : {}),
          signal: controller.signal,
          reportProgress: (percent) => {
            progress = Math.max(0, Math.min(100, percent));
          },
          pointOfNoReturn: () => awaitedHeartbeat({ irreversible: true }),
          get checkpoint(): unknown {
            return checkpoint;
          },
          saveCheckpoint: async (value: unknown) => {
            await awaitedHeartbeat({ checkpoint: value ?? null });
            checkpoint = value ?? null;
          },
          uploadFile: async (name, contentType, stream) => {
            if (!api.uploadFile) throw new Error('this worker cannot upload result files');
            try {
              return await api.uploadFile(job.jobId, { leaseId: job.leaseId, name, contentType, body: stream, signal: controller.signal });
            } catch (err) {
              // Refused because the lease is gone: someone else may hold the job now.
              if (err instanceof ConflictApiError && err.code === 'lease_conflict') controller.abort(new JobAbort('lease_lost'));
              throw err;
            }
          },
          logger: log,
        }),
        aborted,
      ]);
    } catch (err) {
      if (err instanceof SnoozeJobError) {
        snoozeSeconds = err.seconds;
        log.info({ seconds: err.seconds }, 'job snoozed');
      } else {
        failure = describeFailure(err);
        if (failure.retryable) log.warn({ err }, 'job failed; it may be retried');
        else log.warn({ err }, 'job failed permanently');
      }
    } finally {
      clearTimers();
    }

    let outcome: JobOutcome = 'abandoned';
    const durationMs = this.now() - started;
    try {
      const lease = { jobId: job.jobId, leaseId: job.leaseId, durationMs };
      if (snoozeSeconds !== undefined) {
        await this.reportThroughOutages(() => this.report({ ...lease, outcome: 'snoozed', seconds: snoozeSeconds }, reportAlone), leaseMs, log);
        outcome = 'snoozed';
      } else if (!failure) {
        const reported = result instanceof PartialResult ? result.toJSON() : result;
        await this.reportThroughOutages(() => this.report({ ...lease, outcome: 'succeeded', ...(reported === undefined ? {} : { result: reported }) }, reportAlone), leaseMs, log);
        outcome = 'succeeded';
      } else if (failure.code === 'lease_lost') {
        // Someone else may hold the job now; any report from us would be refused.
        log.warn('lease lost; abandoning the job without reporting');
      } else {
        const error = failure;
        await this.reportThroughOutages(() => this.report({ ...lease, outcome: 'failed', error }, reportAlone), leaseMs, log);
        outcome = 'failed';
      }
    } catch (reportErr) {
      // Refused (the lease is gone) or unreachable API after retries: the lease expires and the job
      // is reclaimed, so nothing is lost.
      if (reportErr instanceof ConflictApiError) log.warn({ err: reportErr }, 'report refused: the lease is gone');
      else log.error({ err: reportErr }, 'could not report the outcome; the lease will expire and the job be retried');
    }
    this.options.onJobFinished?.({ jobId: job.jobId, type: job.type, outcome, durationMs, ...(failure ? { errorCode: failure.code } : {}) });
    return outcome;

    function clearTimers(): void {
      clearTimeout(timeout);
      clearInterval(heartbeat);
    }
  }
}

/** Maps what a handler threw (or why it was stopped) to the failure the API records. */
export function describeFailure(err: unknown): { message: string; code: string; retryable: boolean } {
  if (err instanceof JobAbort) {
    switch (err.reason) {
      case 'timeout':
        return { message: 'the job ran longer than its lease (timeoutSeconds)', code: 'timeout', retryable: true };
      case 'cancelled':
        return { message: 'stopped: cancellation was requested', code: 'cancelled', retryable: false };
      case 'shutdown':
        return { message: 'the worker shut down before the job finished', code: 'worker_shutdown', retryable: true };
      case 'lease_lost':
        return { message: 'the lease was lost', code: 'lease_lost', retryable: true };
    }
  }
  if (err instanceof PermanentJobError) return { message: err.message, code: err.code, retryable: false };
  if (err instanceof RetryableJobError) return { message: err.message, code: err.code, retryable: true };
  const message = err instanceof Error ? err.message : String(err);
  return { message: message.slice(0, 2_000) || 'handler failed', code: 'handler_error', retryable: true };
}
