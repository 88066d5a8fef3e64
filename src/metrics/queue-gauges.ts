import { Gauge, type Registry } from 'prom-client';

import { coerceError } from '../errors';
import type { QueueStats } from '../jobs/admin-service';
import type { Logger } from '../logger';
import { PeriodicTask } from '../periodic-task';

export interface QueueGaugesParams {
  registry: Registry;
  /** One aggregation over the jobs (AdminService.stats). */
  readStats: () => Promise<QueueStats>;
  logger: Logger;
  /** How often start() refreshes the gauges. */
  intervalMs: number;
}

/**
 * Queue depth, scheduled (not yet due) jobs and how late the due ones are, by type. A scrape reads the last values; they are refreshed by one
 * aggregation every `intervalMs` (start/stop), never per scrape, so many scrapers cost nothing more.
 */
export class QueueGauges {
  readonly depth: Gauge<'type'>;
  readonly oldestAge: Gauge<'type'>;
  readonly scheduled: Gauge<'type'>;
  readonly jobsByStatus: Gauge<'type' | 'status'>;
  readonly lastRefresh: Gauge;
  private readonly task: PeriodicTask<void>;

  constructor(private readonly params: QueueGaugesParams) {
    this.task = new PeriodicTask({
      name: 'queue gauges refresh',
      intervalMs: params.intervalMs,
      run: () => this.readAndSet(),
      onError: (rawErr) => params.logger.warn({ err: coerceError(rawErr) }, 'queue gauges refresh failed'),
    });
    const registers = [params.registry];
    this.depth = new Gauge({ name: 'jobs_queue_depth', help: 'Jobs in status queued (due or scheduled), by type.', labelNames: ['type'], registers });
    this.oldestAge = new Gauge({
      name: 'jobs_oldest_queued_age_seconds',
      help: 'How long the longest-waiting due job of the type has been due (now - nextRunAt, queued jobs with nextRunAt <= now); 0 when none is due.',
      labelNames: ['type'],
      registers,
    });
    this.scheduled = new Gauge({
      name: 'jobs_scheduled',
      help: 'Queued jobs of the type that are not due yet (a future scheduleAt or a retry backoff); part of jobs_queue_depth.',
      labelNames: ['type'],
      registers,
    });
    this.jobsByStatus = new Gauge({ name: 'jobs_status_count', help: 'Jobs in the collection by type and status.', labelNames: ['type', 'status'], registers });
    this.lastRefresh = new Gauge({
      name: 'jobs_queue_gauges_refreshed_timestamp_seconds',
      help: 'When the queue gauges were last refreshed (Unix time); stale when refreshing fails.',
      registers,
    });
  }

  /** Reads the stats once and replaces every gauge value. Concurrent calls share one read. */
  refresh(): Promise<void> {
    return this.task.runNow();
  }

  /** Refreshes now and then every intervalMs; failures are logged, and the next tick tries again. */
  start(): void {
    this.task.start();
  }

  /** Stops refreshing and waits for a refresh in flight, so the database can be closed after it. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  private async readAndSet(): Promise<void> {
    const stats = await this.params.readStats();
    // Reset and set in one synchronous step: a scrape never sees a half-updated set, and types that
    // vanished from the collection stop being reported.
    this.depth.reset();
    this.oldestAge.reset();
    this.scheduled.reset();
    this.jobsByStatus.reset();
    for (const [type, counts] of Object.entries(stats.byType)) {
      this.depth.labels(type).set(counts.queued);
      for (const [status, count] of Object.entries(counts)) this.jobsByStatus.labels(type, status).set(count);
      this.oldestAge.labels(type).set((stats.oldestQueuedJobAgeMsByType[type] ?? 0) / 1000);
      this.scheduled.labels(type).set(stats.scheduledByType[type] ?? 0);
    }
    this.lastRefresh.set(stats.generatedAt.getTime() / 1000);
  }
}
