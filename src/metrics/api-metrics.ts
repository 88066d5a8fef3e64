import { collectDefaultMetrics, Counter, Registry, type Histogram } from 'prom-client';

import type { QueueStats } from '../jobs/admin-service';
import type { JobEvents } from '../jobs/job-events';
import type { Logger } from '../logger';
import { createHttpRequestDuration, type HttpLabel } from './http-metrics';
import { createJobMetrics, initJobMetrics, recordJobEvents, type JobMetrics } from './job-metrics';
import { QueueGauges } from './queue-gauges';

export interface ApiMetricsParams {
  events: JobEvents;
  /** Registered job types: their series exist (at 0) from the first scrape. */
  types: readonly string[];
  readStats: () => Promise<QueueStats>;
  logger: Logger;
  /** Queue gauges refresh interval once started (default 15 s: a scrape every 15-30 s is usual). */
  gaugeIntervalMs?: number;
  /** Process metrics (CPU, memory, event loop); off by default so tests build apps cheaply. */
  collectDefaultMetrics?: boolean;
}

/** The API process's metrics: one Registry per app (never prom-client's global one). */
export interface ApiMetrics {
  registry: Registry;
  http: Histogram<HttpLabel>;
  jobs: JobMetrics;
  queueGauges: QueueGauges;
  /** Callback attempts by outcome: delivered, retry (failed, tried again later), failed (given up). */
  callbackDeliveries: Counter<'outcome'>;
  /** Unsubscribes from the job events. */
  detach(): void;
}

export function createApiMetrics(params: ApiMetricsParams): ApiMetrics {
  const registry = new Registry();
  if (params.collectDefaultMetrics) collectDefaultMetrics({ register: registry });
  const jobs = createJobMetrics(registry);
  initJobMetrics(jobs, params.types);
  const detach = recordJobEvents(params.events, jobs);
  const queueGauges = new QueueGauges({ registry, readStats: params.readStats, logger: params.logger, intervalMs: params.gaugeIntervalMs ?? 15_000 });
  const callbackDeliveries = new Counter({
    name: 'jobs_callback_deliveries_total',
    help: 'Callback attempts by outcome: delivered (a 2xx), retry (failed, tried again later), failed (the attempts ran out).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of ['delivered', 'retry', 'failed']) callbackDeliveries.labels(outcome).inc(0);
  return { registry, http: createHttpRequestDuration(registry), jobs, queueGauges, callbackDeliveries, detach };
}
