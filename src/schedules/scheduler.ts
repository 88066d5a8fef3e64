import { AppError, coerceError } from '../errors';
import { PeriodicTask } from '../periodic-task';
import type { Clock } from '../model/clock';
import type { JobService } from '../jobs/job-service';
import type { Logger } from '../logger';
import type { ScheduleState } from '../model/schedule';
import type { ScheduleRepository } from '../storage/schedule-repository';
import { planRun } from './cron';
import { occurrenceIdempotencyKey, scheduleCreator, scheduleOwner, type SchedulerSettings } from './schedule';

export interface SchedulerDeps extends SchedulerSettings {
  schedules: ScheduleRepository;
  jobs: Pick<JobService, 'enqueue'>;
  clock: Clock;
  logger: Logger;
  /** Schedules read per query. */
  batchSize?: number;
}

export interface TickReport {
  /** Occurrences whose job this tick enqueued (or found already enqueued), as `name@ISO`. */
  fired: string[];
  /** Claims this tick won that skipped overdue occurrences (catch-up `none`). */
  skipped: string[];
}

const DEFAULT_BATCH = 100;
const MAX_ROUNDS_PER_TICK = 10;

/**
 * Errors that will not go away by retrying the same occurrence: the type was unregistered or the
 * payload no longer matches it (a deploy changed the registry). The occurrence is dropped and the error
 * shown on the schedule; every other error (the database) leaves it pending for the next tick.
 */
const UNDELIVERABLE = new Set(['job_type_not_found', 'payload_invalid', 'validation_error']);

/**
 * Fires due schedule occurrences. Every API instance runs one; they coordinate only through the
 * schedule documents (no leader, no lock):
 *
 * 1. Claim: read a due schedule, plan the occurrence to fire and the next one, and write both with a
 *    compare-and-set on the due occurrence and the timing read (`nextRunAt`, `timingRevision`). One
 *    instance wins per occurrence; the losers do nothing. Edits of the timing make the claim fail (it
 *    was planned on the old timing); edits of the payload, type or priority do not, so no storm of
 *    them can starve a schedule. The occurrence to fire is stored as `pendingRunAt` in the same atomic
 *    update, and its job gets the payload current at the claim.
 * 2. Deliver: enqueue the job with the idempotency key `schedule:<name>:<occurrence ISO>`, then clear
 *    `pendingRunAt`. A crash between claim and enqueue leaves it set, and the next tick of any
 *    instance delivers it (every tick starts with pending occurrences, and a due claim is refused
 *    while one is pending); a crash after the enqueue makes that delivery find the existing job
 *    through the jobs' unique dedupe key instead of creating a second one.
 *
 * So an occurrence, once claimed to fire, gets exactly one job; occurrences are only ever claimed
 * forwards (the next run is always later than the tick's now).
 */
export class Scheduler {
  private readonly task: PeriodicTask<TickReport>;
  private idleDelayMs: number;

  constructor(private readonly deps: SchedulerDeps) {
    this.idleDelayMs = deps.intervalMs;
    this.task = new PeriodicTask({
      name: 'scheduler tick',
      intervalMs: deps.intervalMs,
      run: () => this.runTick(),
      nextDelayMs: (report) => this.nextDelay(report),
      onError: (rawErr) => deps.logger.warn({ err: coerceError(rawErr) }, 'scheduler tick failed'),
    });
  }

  /** One pass: deliver undelivered occurrences, then claim and fire due ones. Concurrent calls share one pass. */
  tick(): Promise<TickReport> {
    return this.task.runNow();
  }

  start(): void {
    this.task.start();
  }

  /** Stops ticking and waits for a tick in flight, so the database can be closed after it. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  private async runTick(): Promise<TickReport> {
    const report: TickReport = { fired: [], skipped: [] };
    const batch = this.deps.batchSize ?? DEFAULT_BATCH;
    for (let round = 0; round < MAX_ROUNDS_PER_TICK; round += 1) {
      const now = this.deps.clock.now();
      // One query: undelivered occurrences (delivered first; a schedule holding one is never due)
      // and due schedules.
      const work = await this.deps.schedules.findDue({ now, limit: batch });
      const pending = work.filter((doc) => doc.pendingRunAt !== null);
      await Promise.all(pending.map((doc) => this.deliver(doc, doc.pendingRunAt!, report)));
      const due = work.filter((doc) => doc.pendingRunAt === null);
      await Promise.all(due.map((doc) => this.claimAndFire(doc, now, report)));
      if (work.length < batch) break;
    }
    return report;
  }

  /**
   * The pace of the ticks: every intervalMs while there is work; while ticks find nothing, twice as
   * long each time up to idleIntervalMs (minute-granularity cron needs no more; an occurrence found a
   * few seconds late still fires, within the misfire grace). A schedule created or edited through this
   * instance brings the next tick forward (wake).
   */
  private nextDelay(report: TickReport): number {
    const { intervalMs } = this.deps;
    const idleMax = Math.max(intervalMs, this.deps.idleIntervalMs ?? intervalMs);
    this.idleDelayMs = report.fired.length > 0 || report.skipped.length > 0 ? intervalMs : Math.min(idleMax, Math.max(intervalMs, this.idleDelayMs * 2));
    return this.idleDelayMs;
  }

  /** A schedule changed here: tick soon, at the busy pace. */
  wake(): void {
    this.idleDelayMs = this.deps.intervalMs;
    this.task.wakeWithin(this.deps.intervalMs);
  }

  private async claimAndFire(doc: ScheduleState, now: Date, report: TickReport): Promise<void> {
    try {
      const plan = planRun({
        spec: { cron: doc.cron, timeZone: doc.timeZone, name: doc.name },
        dueAt: doc.nextRunAt!,
        now,
        catchUp: doc.catchUp,
        misfireGraceMs: this.deps.misfireGraceMs,
      });
      const claimed = await this.deps.schedules.claim({
        name: doc.name,
        timingRevision: doc.timingRevision,
        dueAt: doc.nextRunAt!,
        fire: plan.fire,
        nextRunAt: plan.nextRunAt,
        now,
      });
      // Lost: another instance claimed this occurrence, or an edit changed the timing; nothing to do.
      if (!claimed) return;
      if (plan.fire) {
        // The schedule as the claim left it: edits of the payload made before the claim are in it.
        await this.deliver(claimed, plan.fire, report);
      } else {
        report.skipped.push(`${doc.name}@${doc.nextRunAt!.toISOString()}`);
        this.deps.logger.info({ schedule: doc.name, dueAt: doc.nextRunAt, nextRunAt: plan.nextRunAt }, 'missed schedule occurrences skipped (catch-up none)');
      }
    } catch (rawErr) {
      this.deps.logger.warn({ err: coerceError(rawErr), schedule: doc.name }, 'schedule claim failed; retried on the next tick');
    }
  }

  private async deliver(doc: ScheduleState, occurrence: Date, report: TickReport): Promise<void> {
    const name = doc.name;
    const now = this.deps.clock.now();
    try {
      const { job, created } = await this.deps.jobs.enqueue(
        { sub: scheduleCreator(name), role: 'service', ...(doc.tenant ? { tenant: doc.tenant } : {}) },
        {
          type: doc.type,
          payload: doc.payload,
          ...(doc.priority === null ? {} : { priority: doc.priority }),
          idempotencyKey: occurrenceIdempotencyKey(name, occurrence),
          // The job works with its schedule's owner's reach (a tenant admin's schedule thumbnails its
          // tenant's assets), not with that of `schedule:<name>`, which owns nothing.
          actsFor: scheduleOwner(doc),
        },
      );
      await this.deps.schedules.settlePending({ name, occurrence, outcome: { jobId: job.jobId }, now });
      report.fired.push(`${name}@${occurrence.toISOString()}`);
      if (created) this.deps.logger.info({ schedule: name, occurrence, jobId: job.jobId }, 'schedule occurrence enqueued');
    } catch (rawErr) {
      const err = coerceError(rawErr);
      if (!(err instanceof AppError && UNDELIVERABLE.has(err.code))) {
        this.deps.logger.warn({ err, schedule: name, occurrence }, 'schedule occurrence not delivered yet; retried on the next tick');
        return;
      }
      this.deps.logger.warn({ err, schedule: name, occurrence }, 'schedule occurrence cannot be enqueued; skipped');
      const error = { code: err.code, message: err.message, at: now };
      await this.deps.schedules.settlePending({ name, occurrence, outcome: { error }, now }).catch((rawSettleErr: unknown) => {
        this.deps.logger.warn({ err: coerceError(rawSettleErr), schedule: name }, 'schedule error not recorded; retried on the next tick');
      });
    }
  }
}
