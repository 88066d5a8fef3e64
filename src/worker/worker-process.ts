import type { Connection } from 'mongoose';

import { createAssetService } from '../assets/asset-service';
import { JobsClient } from '../client/jobs-client';
import type { WorkerConfig } from '../config';
import { JOB_TYPES } from '../jobs/job-types';
import { JobRegistry } from '../jobs/registry';
import type { Logger } from '../logger';
import { createPayouts } from '../payouts/create-payouts';
import { connectDatabase } from '../storage/connection';
import { ensureIndexes } from '../storage/indexes';
import { checkHandlers, createHandlers } from './handlers';
import { nodeHttpTransport } from './node-http-transport';
import { createWorkerMetrics } from '../metrics/worker-metrics';
import { startMetricsServer } from '../metrics/metrics-server';
import { WorkerRunner, type JobFinishedEvent } from './runner';
import { noTracing, type Tracing } from '../tracing/tracing';

export interface RunningWorker {
  runner: WorkerRunner;
  connection: Connection;
  /** Graceful stop (see WorkerRunner.stop), then closes the database connection. */
  close(): Promise<void>;
}

/** Composition root of a worker process: checks handlers, connects, starts the runner. */
export async function startWorker(params: {
  config: WorkerConfig;
  logger: Logger;
  onJobFinished?: (event: JobFinishedEvent) => void;
  /** A job.run span per run, client spans per call (src/tracing); default: off. */
  tracing?: Tracing;
}): Promise<RunningWorker> {
  const { config, logger } = params;
  const tracing = params.tracing ?? noTracing;
  const registry = new JobRegistry(JOB_TYPES, config.JOB_POLICY_OVERRIDES);
  const wanted = config.WORKER_TYPES ? config.WORKER_TYPES.split(',').map((t) => t.trim()).filter(Boolean) : null;

  const connection = await connectDatabase({
    uri: config.MONGODB_URI,
    dbName: config.MONGODB_DB_NAME,
    timeoutMs: config.DB_TIMEOUT_MS,
    writeConcern: config.DB_WRITE_CONCERN,
    readPreference: config.DB_READ_PREFERENCE,
  });
  try {
    await ensureIndexes(connection);
    const handlers = createHandlers({
      assets: createAssetService(connection),
      payouts: createPayouts({ connection, sandbox: { failureRate: config.SANDBOX_FAILURE_RATE } }).payouts,
    });
    const types = checkHandlers(registry, handlers, wanted);
    // Optional metrics endpoint of this worker process.
    const metrics = config.WORKER_METRICS_PORT === undefined ? undefined : createWorkerMetrics({ collectDefaultMetrics: true, defaultLabels: { worker: config.WORKER_ID } });
    const metricsServer = metrics ? await startMetricsServer({ registry: metrics.registry, port: config.WORKER_METRICS_PORT!, logger }) : undefined;
    const onJobFinished = (event: JobFinishedEvent): void => {
      if (metrics && event.outcome !== 'abandoned') {
        metrics.jobsProcessed.labels(event.type, event.outcome).inc();
        metrics.jobRunDuration.labels(event.type, event.outcome).observe(event.durationMs / 1000);
      }
      params.onJobFinished?.(event);
    };
    const runner = new WorkerRunner({
      api: new JobsClient({ baseUrl: config.JOBS_API_URL, token: config.WORKER_TOKEN, workerId: config.WORKER_ID, tracing, jsonTransport: nodeHttpTransport() }),
      tracing,
      handlers,
      logger,
      concurrency: config.WORKER_CONCURRENCY,
      types,
      shutdownGraceMs: config.WORKER_SHUTDOWN_GRACE_MS,
      leaseWaitSeconds: config.WORKER_LEASE_WAIT_SECONDS,
      ...(config.WORKER_LEASE_BATCH_TARGET === undefined ? {} : { leaseBatchTarget: config.WORKER_LEASE_BATCH_TARGET }),
      leaseLingerMs: config.WORKER_LEASE_LINGER_MS,
      batchReports: config.WORKER_BATCH_REPORTS === 'on',
      reportLingerMs: config.WORKER_REPORT_LINGER_MS,
      onJobFinished,
    });
    runner.start();
    logger.info({ workerId: config.WORKER_ID, types, concurrency: config.WORKER_CONCURRENCY }, 'worker started');
    let closing: Promise<void> | undefined;
    return {
      runner,
      connection,
      close: () => {
        closing ??= runner
          .stop()
          .then(() => metricsServer?.close())
          .then(() => connection.close());
        return closing;
      },
    };
  } catch (err) {
    await connection.close();
    throw err;
  }
}
