import 'dotenv/config';

import { startApi } from './api-server';
import { loadApiConfig } from './config';
import { createLogger } from './logger';
import { exitOnStartupError, onShutdownSignal } from './process-signals';

async function main(): Promise<void> {
  const config = loadApiConfig(process.env);
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'jobs-api' });
  const api = await startApi({ config, logger });
  onShutdownSignal(logger, () => api.close());
}

main().catch(exitOnStartupError);
