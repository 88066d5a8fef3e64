import { Counter, Histogram, type Registry } from 'prom-client';

import type { JobEventMap, JobEvents } from '../jobs/job-events';

/** Run times from seconds to the longest lease (thumbnail.create: 300 s) and beyond. */
const RUN_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export type JobRunOutcome = 'succeeded' | 'failed';

/** Counters of job state transitions and the job run-time histogram, fed from JobEvents. */
export interface JobMetrics {
  enqueued: Counter<'type'>;
  leased: Counter<'type'>;
  succeeded: Counter<'type'>;
  failed: Counter<'type'>;
  deadLettered: Counter<'type'>;
  retriesScheduled: Counter<'type'>;
  reclaimed: Counter<'type'>;
  cancelled: Counter<'type'>;
  requeued: Counter<'type'>;
  runDuration: Histogram<'type' | 'outcome'>;
}

export function createJobMetrics(registry: Registry): JobMetrics {
  const counter = (name: string, help: string): Counter<'type'> => new Counter({ name, help, labelNames: ['type'], registers: [registry] });
  return {
    enqueued: counter('jobs_enqueued_total', 'Jobs enqueued (an idempotent repeat that returns the first job does not count).'),
    leased: counter('jobs_leased_total', 'Leases granted to workers (one per attempt).'),
    succeeded: counter('jobs_succeeded_total', 'Jobs a worker reported succeeded.'),
    failed: counter(
      'jobs_failed_total',
      'Attempts a worker reported failed, whatever happened next (retry scheduled, failed for good, or dead-lettered).',
    ),
    deadLettered: counter('jobs_dead_lettered_total', 'Jobs moved to dlq (attempts used up, by a failure report or an expired lease).'),
    retriesScheduled: counter('jobs_retries_scheduled_total', 'Failed attempts put back in the queue with a backoff.'),
    reclaimed: counter('jobs_reclaimed_total', 'Expired leases returned to the queue.'),
    cancelled: counter('jobs_cancelled_total', 'Jobs that ended cancelled.'),
    requeued: counter('jobs_requeued_total', 'Finished jobs an admin put back in the queue.'),
    runDuration: new Histogram({
      name: 'job_run_duration_seconds',
      help: 'Handler run time of one attempt, as the worker reported it (durationMs in succeed/fail).',
      labelNames: ['type', 'outcome'],
      buckets: RUN_DURATION_BUCKETS,
      registers: [registry],
    }),
  };
}

/** Every counter starts at 0 for the known types, so rate() works from the first scrape. */
export function initJobMetrics(metrics: JobMetrics, types: readonly string[]): void {
  for (const type of types) {
    for (const c of [metrics.enqueued, metrics.leased, metrics.succeeded, metrics.failed, metrics.deadLettered, metrics.retriesScheduled, metrics.reclaimed, metrics.cancelled, metrics.requeued]) {
      c.labels(type).inc(0);
    }
  }
}

/**
 * `dead_lettered` after a failure report carries the worker's durationMs at run time, though its
 * event type does not declare it; read it without trusting the shape.
 */
function durationMsOf(payload: object): number | undefined {
  const value = (payload as { durationMs?: unknown }).durationMs;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function observeRun(metrics: JobMetrics, payload: JobEventMap['succeeded'] | JobEventMap['failed'], outcome: JobRunOutcome): void {
  const ms = durationMsOf(payload);
  if (ms !== undefined) metrics.runDuration.labels(payload.type, outcome).observe(ms / 1000);
}

/** Subscribes the metrics to the job events (one per state transition); returns the unsubscribe. */
export function recordJobEvents(events: JobEvents, metrics: JobMetrics): () => void {
  const offs = [
    events.on('enqueued', (e) => metrics.enqueued.labels(e.type).inc()),
    events.on('leased', (e) => metrics.leased.labels(e.type).inc()),
    events.on('succeeded', (e) => {
      metrics.succeeded.labels(e.type).inc();
      observeRun(metrics, e, 'succeeded');
    }),
    events.on('retry_scheduled', (e) => {
      metrics.failed.labels(e.type).inc();
      metrics.retriesScheduled.labels(e.type).inc();
      observeRun(metrics, e, 'failed');
    }),
    events.on('failed', (e) => {
      metrics.failed.labels(e.type).inc();
      observeRun(metrics, e, 'failed');
    }),
    events.on('dead_lettered', (e) => {
      metrics.deadLettered.labels(e.type).inc();
      // Attempts exhausted by a failure report: that report was a failed attempt too.
      if (e.reason === 'attempts_exhausted') {
        metrics.failed.labels(e.type).inc();
        observeRun(metrics, e, 'failed');
      }
    }),
    events.on('reclaimed', (e) => metrics.reclaimed.labels(e.type).inc()),
    events.on('cancelled', (e) => metrics.cancelled.labels(e.type).inc()),
    events.on('requeued', (e) => metrics.requeued.labels(e.type).inc()),
  ];
  return () => {
    for (const off of offs) off();
  };
}
