import type { NoopPayload } from '../../jobs/job-types';
import { PartialResult, PermanentJobError, type JobHandler } from '../handler';

/**
 * `noop`: succeeds at once, or after `sleepMs` unless aborted first; with `failItems`, succeeds
 * with a partial result naming those items; with `fail`, fails instead (see the payload schema).
 */
export function createNoopHandler(): JobHandler<NoopPayload, { sleptMs: number } | PartialResult<{ sleptMs: number }>> {
  return async ({ payload, signal, attempt }) => {
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
    // A plain error is what an unexpected failure looks like to the runner: retryable.
    if (payload.fail === 'retryable') throw new Error(`noop failed as asked (fail: "retryable", attempt ${attempt})`);
    if (payload.fail === 'permanent') throw new PermanentJobError('noop failed as asked (fail: "permanent")', 'failed_on_demand');
    if (payload.failItems && payload.failItems.length > 0) {
      return new PartialResult(
        { sleptMs: sleepMs },
        payload.failItems.map((item) => ({ item, code: 'item_failed', message: `item ${item} failed (as asked)` })),
      );
    }
    return { sleptMs: sleepMs };
  };
}
