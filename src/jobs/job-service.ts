import type { Job, JobError, JobStatus } from '../model/job';
import type { Principal } from '../model/principal';
import { Dependencies } from './dependencies';
import { Enqueuer, type BatchItemResult, type EnqueueInput, type EnqueueResult } from './enqueue';
import { JobControl, type RequeueOutcome, type ResultWait } from './job-control';
import { Leaser, type LeaseInput, type LeaseResult } from './lease';
import { LeaseRescuer } from './lease-rescue';
import type { QueueDeps } from './queue-deps';
import type { AppError } from '../errors';
import { Reporter, type BatchReport, type BatchReportResult, type FailAnswer, type HeartbeatAnswer, type ReportTarget, type SnoozeAnswer } from './reports';
import { ResultWaiters } from './result-waiters';
import type { WorkerPresence } from './worker-presence';

export { DEFAULT_PRIORITY, MAX_BATCH, type BatchItemResult, type EnqueueInput } from './enqueue';
export type { LeaseInput } from './lease';
export type { BatchReport, BatchReportResult, ReportTarget } from './reports';
export type { ResultWait } from './job-control';
export { newJobId } from './queue-deps';

export interface JobServiceDeps extends QueueDeps {
  /** Minimum time between two reclaim passes of this process (0: before every lease). */
  reclaimIntervalMs: number;
  /** Long-poll: how soon one shared query looks for work after activity, while lease calls wait. */
  leasePollIntervalMs?: number;
  /** Long-poll: the longest the shared query waits while nothing happens. */
  leasePollMaxIntervalMs?: number;
  /** `GET /jobs/:jobId?wait=`: how often one shared query looks for finishes recorded by other instances (default 500 ms). */
  resultPollIntervalMs?: number;
  /** The run-time type settings, re-read before a lease call when stale (see TypeSettings). */
  runtimeSettings?: { fresh(): Promise<void> };
  /** Told of every lease call and heartbeat (GET /admin/workers). */
  presence?: Pick<WorkerPresence, 'seen'>;
}

/**
 * The queue's front: one object the routes and the scheduler call, delegating to the use cases by
 * role — Enqueuer (enqueue, batches, dependencies), Leaser (lease planning and slots, long-polls),
 * LeaseRescuer (reclaiming expired leases), Reporter (heartbeat, succeed, fail) and JobControl (read,
 * cancel, requeue). Every job state transition goes through one of them and emits one event; the
 * access rule is src/auth/access.ts. Knows nothing of HTTP.
 */
export class JobService {
  private readonly enqueuer: Enqueuer;
  private readonly leaser: Leaser;
  private readonly rescuer: LeaseRescuer;
  private readonly reporter: Reporter;
  private readonly control: JobControl;
  private readonly results: ResultWaiters;
  private readonly presence: Pick<WorkerPresence, 'seen'> | undefined;

  constructor(deps: JobServiceDeps) {
    this.presence = deps.presence;
    const dependencies = new Dependencies(deps);
    this.enqueuer = new Enqueuer(deps, dependencies);
    this.rescuer = new LeaseRescuer(deps, dependencies);
    this.leaser = new Leaser(deps, this.rescuer);
    this.reporter = new Reporter(deps, dependencies);
    this.results = new ResultWaiters({
      events: deps.events,
      findFinished: (jobIds) => deps.jobs.findFinishedAmong(jobIds),
      pollIntervalMs: deps.resultPollIntervalMs ?? 500,
    });
    this.control = new JobControl(deps, dependencies, this.results);
  }

  /** `GET /jobs/:jobId?wait=` requests now held. */
  get waitingResultCalls(): number {
    return this.results.size;
  }

  /** Lease calls now waiting for work (long-poll). */
  get waitingLeaseCalls(): number {
    return this.leaser.waitingLeaseCalls;
  }

  /** Whether a waiting lease call is held back by a run-time setting (a pause, a full limit). */
  get waitsOnSettings(): boolean {
    return this.leaser.waitsOnSettings;
  }

  /** Ends every long-poll wait (shutdown): lease calls and result waits answer at once. */
  close(): void {
    this.leaser.close();
    this.results.close();
  }

  /** Cross-instance wake-up of long-polls through a change feed (see Leaser.startWorkFeed). */
  startWorkFeed(mode: 'auto' | 'on' | 'off'): Promise<boolean> {
    return this.leaser.startWorkFeed(mode);
  }

  enqueue(principal: Principal, input: EnqueueInput): Promise<EnqueueResult> {
    return this.enqueuer.enqueue(principal, input);
  }

  enqueueBatch(principal: Principal, inputs: readonly EnqueueInput[]): Promise<BatchItemResult[]> {
    return this.enqueuer.enqueueBatch(principal, inputs);
  }

  lease(input: LeaseInput): Promise<LeaseResult> {
    this.presence?.seen({ workerId: input.workerId, types: input.types, tenant: input.tenant, call: 'lease' });
    return this.leaser.lease(input);
  }

  reclaimExpiredLeases(now?: Date): Promise<number> {
    return this.rescuer.reclaimExpiredLeases(now);
  }

  heartbeat(target: ReportTarget, params: { progress?: number | undefined; irreversible?: boolean | undefined; checkpoint?: unknown } = {}): Promise<HeartbeatAnswer> {
    this.presence?.seen({ workerId: target.workerId, types: undefined, tenant: target.principal.tenant, call: 'heartbeat' });
    return this.reporter.heartbeat(target, params);
  }

  snooze(target: ReportTarget, seconds: number, durationMs?: number): Promise<SnoozeAnswer> {
    return this.reporter.snooze(target, seconds, durationMs);
  }

  succeed(target: ReportTarget, result: unknown, durationMs?: number): Promise<{ jobId: string; status: JobStatus }> {
    return this.reporter.succeed(target, result, durationMs);
  }

  fail(target: ReportTarget, error: JobError & { retryable?: boolean }, durationMs?: number): Promise<FailAnswer> {
    return this.reporter.fail(target, error, durationMs);
  }

  reportBatch(params: { workerId: string; principal: Principal; reports: readonly (BatchReport | AppError)[] }): Promise<BatchReportResult[]> {
    return this.reporter.reportBatch(params);
  }

  cancel(principal: Principal, jobId: string): Promise<{ jobId: string; status: JobStatus }> {
    return this.control.cancel(principal, jobId);
  }

  /** Bulk cancel's step for one job (see JobControl.cancelMatched). */
  cancelMatched(job: Job, tenant?: string): Promise<{ status: JobStatus; changed: boolean } | null> {
    return this.control.cancelMatched(job, tenant);
  }

  getJob(principal: Principal, jobId: string, wait?: ResultWait): Promise<Job> {
    return this.control.getJob(principal, jobId, wait);
  }

  requeue(jobId: string, tenant?: string): Promise<RequeueOutcome> {
    return this.control.requeue({ jobId, tenant });
  }
}
