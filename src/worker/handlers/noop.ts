import type { NoopPayload } from '../../jobs/job-types';
import type { JobHandler } from '../handler';

/** `noop`: succeeds at once, or after `sleepMs` unless aborted first. */
export function createNoopHandler(): JobHandler<NoopPayload, { sleptMs: number }> {
  return async ({ payload, signal }) => {
    const sleepMs = payload.sleepMs ?? 0;
    if (sleepMs > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, sleepMs);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
          },
          { once: true },
        );
      });
    }
    return { sleptMs: sleepMs };
  };
}
