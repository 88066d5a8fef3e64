import 'dotenv/config';

import { loadWorkerConfig } from './config';
import { createLogger } from './logger';
import { exitOnStartupError, onShutdownSignal } from './process-signals';
import { startWorker } from './worker/worker-process';

async function main(): Promise<void> {
  const config = loadWorkerConfig(process.env);
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'jobs-worker' });
  const worker = await startWorker({ config, logger });
  // First signal: stop leasing, let running jobs finish within the grace period, exit 0.
  // A second signal exits at once.
  onShutdownSignal(logger, () => worker.close());
}

main().catch(exitOnStartupError);
