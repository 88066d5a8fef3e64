import { coerceError } from '../errors';
import { PeriodicTask } from '../periodic-task';
import type { Logger } from '../logger';
import type { RetainedStatus, RetentionRepository } from '../storage/retention-repository';
import type { Clock } from '../model/clock';

/** Days a finished job is kept, per terminal status; 0 keeps it forever. */
export interface RetentionPolicy {
  succeededDays: number;
  /** `failed` and `cancelled`. */
  failedDays: number;
  dlqDays: number;
}

export interface RetentionSettings extends RetentionPolicy {
  /** How often start() runs a pass; 0: this process never cleans on its own (runOnce() still works). */
  intervalMs: number;
  /** Jobs deleted per batch at most. */
  batchSize: number;
  /** Pause between two batches, so a large backlog is worked off without starving other writes. */
  batchPauseMs: number;
}

/** The defaults (src/config.ts uses them too): dead letters are kept longest, for investigation. */
export const DEFAULT_RETENTION: Readonly<RetentionSettings> = Object.freeze({
  succeededDays: 7,
  failedDays: 30,
  dlqDays: 90,
  intervalMs: 60_000,
  batchSize: 500,
  batchPauseMs: 200,
});

export interface RetentionCleanerDeps extends RetentionSettings {
  store: Pick<RetentionRepository, 'findExpired' | 'deleteExpired'> & Partial<Pick<RetentionRepository, 'deleteResultFiles'>>;
  clock: Clock;
  logger: Logger;
  /** Injected so tests need not wait; defaults to a timer. */
  pause?: (ms: number) => Promise<void>;
}

export interface RetentionReport {
  deleted: Record<RetainedStatus, number>;
  /** The size of every batch deleted, in order (each ≤ batchSize). */
  batches: number[];
}

const DAY_MS = 86_400_000;

function timerPause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Deletes finished jobs once they are older (by completedAt) than their status's retention, in bounded
 * batches with a pause between them. Stats need no bookkeeping: they are counted live from the jobs, so
 * they stay exact as jobs go. Every API instance may run one: two cleaners deleting the same ids is
 * harmless (a delete of a missing id deletes nothing).
 */
export class RetentionCleaner {
  private readonly task: PeriodicTask<RetentionReport>;
  private stopping = false;

  constructor(private readonly deps: RetentionCleanerDeps) {
    this.task = new PeriodicTask({
      name: 'retention pass',
      intervalMs: deps.intervalMs,
      run: () => this.clean(),
      onError: (rawErr) => deps.logger.warn({ err: coerceError(rawErr) }, 'retention pass failed'),
    });
  }

  /** The statuses with a retention, and the age after which each is deleted. */
  retainedStatuses(): { status: RetainedStatus; days: number }[] {
    const { succeededDays, failedDays, dlqDays } = this.deps;
    const all: { status: RetainedStatus; days: number }[] = [
      { status: 'succeeded', days: succeededDays },
      { status: 'failed', days: failedDays },
      { status: 'cancelled', days: failedDays },
      { status: 'dlq', days: dlqDays },
    ];
    return all.filter((entry) => entry.days > 0);
  }

  /** One full pass over every status. Concurrent calls share one pass. */
  runOnce(): Promise<RetentionReport> {
    return this.task.runNow();
  }

  start(): void {
    if (this.retainedStatuses().length === 0) return;
    this.stopping = false;
    this.task.start();
  }

  /** Stops after the batch in progress and waits for it, so the database can be closed after it. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.task.stop();
  }

  private async clean(): Promise<RetentionReport> {
    const { store, batchSize } = this.deps;
    const pause = this.deps.pause ?? timerPause;
    const report: RetentionReport = { deleted: { succeeded: 0, failed: 0, cancelled: 0, dlq: 0 }, batches: [] };
    const now = this.deps.clock.now().getTime();
    for (const { status, days } of this.retainedStatuses()) {
      const before = new Date(now - days * DAY_MS);
      for (;;) {
        if (this.stopping) return report;
        const ids = await store.findExpired({ status, before, limit: batchSize });
        if (ids.length === 0) break;
        // A job's result files go with it (first, so no file outlives the job that lists it).
        await store.deleteResultFiles?.({ ids });
        const deleted = await store.deleteExpired({ ids, status, before });
        report.deleted[status] += deleted;
        report.batches.push(deleted);
        if (ids.length < batchSize) break;
        // A full batch: more may follow. Let other writers in before the next one.
        await pause(this.deps.batchPauseMs);
      }
    }
    const total = report.batches.reduce((a, b) => a + b, 0);
    if (total > 0) this.deps.logger.info({ deleted: report.deleted, batches: report.batches.length }, 'retention deleted finished jobs');
    return report;
  }
}
