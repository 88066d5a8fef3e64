import type { NoopPayload } from '../../jobs/job-types';
import { PartialResult, PermanentJobError, type JobHandler } from '../handler';

type NoopResult = { sleptMs: number; resumedFrom?: number };

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    const timer = setTimeout(resolve, ms);
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

/** The step a checkpoint of this handler says was done last (0: none). */
function savedStep(checkpoint: unknown): number {
  const step = typeof checkpoint === 'object' && checkpoint !== null ? (checkpoint as { step?: unknown }).step : undefined;
  return typeof step === 'number' && Number.isInteger(step) && step > 0 ? step : 0;
}

/**
 * `noop`: succeeds at once, or after `sleepMs` unless aborted first; with `steps`, sleeps in that
 * many steps saving a checkpoint after each and resuming after the last saved one; with
 * `failItems`, succeeds with a partial result naming those items; with `fail`, fails instead (see
 * the payload schema).
 */
export function createNoopHandler(): JobHandler<NoopPayload, NoopResult | PartialResult<NoopResult>> {
  return async ({ payload, signal, attempt, checkpoint, saveCheckpoint }) => {
    const sleepMs = payload.sleepMs ?? 0;
    let resumedFrom: number | undefined;
    if (payload.steps !== undefined) {
      const steps = payload.steps;
      resumedFrom = Math.min(savedStep(checkpoint), steps);
      for (let step = resumedFrom + 1; step <= steps; step += 1) {
        await sleep(sleepMs / steps, signal);
        await saveCheckpoint({ step });
      }
    } else if (sleepMs > 0) {
      await sleep(sleepMs, signal);
    }
    // A plain error is what an unexpected failure looks like to the runner: retryable.
    if (payload.fail === 'retryable') throw new Error(`noop failed as asked (fail: "retryable", attempt ${attempt})`);
    if (payload.fail === 'permanent') throw new PermanentJobError('noop failed as asked (fail: "permanent")', 'failed_on_demand');
    const result: NoopResult = { sleptMs: sleepMs, ...(resumedFrom === undefined ? {} : { resumedFrom }) };
    if (payload.failItems && payload.failItems.length > 0) {
      return new PartialResult(
        result,
        payload.failItems.map((item) => ({ item, code: 'item_failed', message: `item ${item} failed (as asked)` })),
      );
    }
    return result;
  };
}
