import 'dotenv/config';

import { loadWorkerConfig } from './config';
import { createLogger } from './logger';
import { exitOnStartupError, onShutdownSignal } from './process-signals';

async function main(): Promise<void> {
  const config = loadWorkerConfig(process.env);
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'jobs-worker' });
  logger.info({ workerId: config.WORKER_ID }, 'worker started (no handlers yet)');
  const keepAlive = setInterval(() => undefined, 60_000);
  onShutdownSignal(logger, async () => {
    clearInterval(keepAlive);
  });
}

main().catch(exitOnStartupError);
