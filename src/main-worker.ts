import 'dotenv/config';

import { loadWorkerConfig } from './config';
import { createLogger } from './logger';
import { exitOnStartupError, onShutdownSignal } from './process-signals';
import { startTracing } from './tracing/tracing';
import { startWorker } from './worker/worker-process';

async function main(): Promise<void> {
  const config = loadWorkerConfig(process.env);
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'jobs-worker' });
  // Only with OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) set is the OpenTelemetry SDK loaded.
  const tracing = await startTracing({ env: process.env, serviceName: 'jobs-worker' });
  const worker = await startWorker({ config, logger, tracing });
  // First signal: stop leasing, let running jobs finish within the grace period, exit 0.
  // A second signal exits at once.
  onShutdownSignal(logger, async () => {
    await worker.close();
    await tracing.shutdown();
  });
}

main().catch(exitOnStartupError);
