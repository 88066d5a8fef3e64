import 'dotenv/config';

import { startApi } from './api-server';
import { loadApiConfig } from './config';
import { createLogger } from './logger';
import { exitOnStartupError, onShutdownSignal } from './process-signals';
import { startTracing } from './tracing/tracing';

async function main(): Promise<void> {
  const config = loadApiConfig(process.env);
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'jobs-api' });
  // Only with OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) set is the OpenTelemetry SDK loaded.
  const tracing = await startTracing({ env: process.env, serviceName: 'jobs-api' });
  const api = await startApi({ config, logger, tracing });
  logger.info({ tracing: tracing.enabled }, tracing.enabled ? 'tracing: exporting spans over OTLP/HTTP' : 'tracing: off');
  onShutdownSignal(logger, async () => {
    await api.close();
    await tracing.shutdown();
  });
}

main().catch(exitOnStartupError);
