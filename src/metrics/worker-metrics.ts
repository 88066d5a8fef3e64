import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type WorkerJobOutcome = 'succeeded' | 'failed' | 'cancelled';

/** What a worker process reports about itself (served by startMetricsServer on WORKER_METRICS_PORT). */
export interface WorkerMetrics {
  registry: Registry;
  /** Jobs this worker ran to an outcome, by type. */
  jobsProcessed: Counter<'type' | 'outcome'>;
  /** Handler run time as measured by this worker. */
  jobRunDuration: Histogram<'type' | 'outcome'>;
  /** Jobs running in this worker now. */
  activeJobs: Gauge<'type'>;
  /** Lease requests that failed (API down, 5xx, network). */
  leaseErrors: Counter;
}

export function createWorkerMetrics(params: { collectDefaultMetrics?: boolean; defaultLabels?: Record<string, string> } = {}): WorkerMetrics {
  const registry = new Registry();
  if (params.defaultLabels) registry.setDefaultLabels(params.defaultLabels);
  if (params.collectDefaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    jobsProcessed: new Counter({ name: 'worker_jobs_processed_total', help: 'Jobs this worker ran, by type and outcome.', labelNames: ['type', 'outcome'], registers }),
    jobRunDuration: new Histogram({
      name: 'worker_job_run_duration_seconds',
      help: 'Handler run time measured by this worker.',
      labelNames: ['type', 'outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    activeJobs: new Gauge({ name: 'worker_active_jobs', help: 'Jobs running in this worker now.', labelNames: ['type'], registers }),
    leaseErrors: new Counter({ name: 'worker_lease_errors_total', help: 'Lease requests that failed.', registers }),
  };
}
