import type { Logger } from './logger';

/**
 * One Ctrl-C under `npm start` arrives twice: the terminal signals the whole foreground group, and
 * npm forwards what it got to its child as well. A repeat within this window is that echo, not a
 * second request.
 */
const ECHO_WINDOW_MS = 1_000;

/**
 * Runs `shutdown` once on the first SIGTERM/SIGINT and exits 0 when it finishes; a second signal
 * (past the echo window) exits at once.
 */
export function onShutdownSignal(logger: Logger, shutdown: () => Promise<void>): void {
  let stoppingSince: number | undefined;
  const handle = (signal: NodeJS.Signals): void => {
    if (stoppingSince !== undefined) {
      if (performance.now() - stoppingSince < ECHO_WINDOW_MS) return;
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stoppingSince = performance.now();
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
