import type { Logger } from './logger';

/**
 * Runs `shutdown` once on the first SIGTERM/SIGINT and exits 0 when it finishes; a second signal
 * exits at once.
 */
export function onShutdownSignal(logger: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

/** Prints a start-up failure as one line and exits 1. */
export function exitOnStartupError(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${message.split('\n')[0]}\n`);
  process.exit(1);
}
