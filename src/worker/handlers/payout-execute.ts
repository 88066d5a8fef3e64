import { payoutExecute, type PayoutPayload } from '../../jobs/job-types';
import { PayoutError } from '../../payouts/payout-errors';
import type { PayoutResult, PayoutService } from '../../payouts/payout-service';
import { PermanentJobError, RetryableJobError, type JobHandler } from '../handler';

export type { PayoutResult } from '../../payouts/payout-service';

export interface PayoutHandlerDeps {
  payouts: Pick<PayoutService, 'executePayout'>;
}

/**
 * `payout.execute`: pays one escrow. Safe to run any number of times for the same escrow (duplicate
 * deliveries, retries after a crash): the service moves money at most once and answers repeats with
 * the original transfer. `isRetry` in the payload is informational and changes nothing here.
 */
export function createPayoutHandler(deps: PayoutHandlerDeps): JobHandler<PayoutPayload, PayoutResult> {
  return async (context) => {
    // The runner validates payloads at enqueue; checked again because a bad one must fail, not retry.
    const parsed = payoutExecute.payload.safeParse(context.payload);
    if (!parsed.success) throw new PermanentJobError(`payload is invalid: ${parsed.error.issues[0]?.message ?? 'unknown'}`, 'payload_invalid');
    const { escrowId, batchId } = parsed.data;
    try {
      // Money moves only after the API recorded this point of no return, which it refuses once a
      // cancel was acknowledged: no payout ever starts after its cancel.
      // The owner may pay only its own tenant's escrows (no owner, from an older API: no check, as before).
      const result = await deps.payouts.executePayout({
        escrowId,
        batchId,
        signal: context.signal,
        beforeTransfer: () => context.pointOfNoReturn(),
        ...(context.owner === undefined ? {} : { owner: context.owner }),
      });
      context.logger.info({ jobId: context.jobId, ...result }, result.alreadyPaid ? 'escrow was already paid' : 'escrow paid');
      return result;
    } catch (rawErr) {
      if (rawErr instanceof PayoutError) {
        context.logger.warn({ jobId: context.jobId, escrowId, code: rawErr.code, retryable: rawErr.retryable }, rawErr.message);
        throw rawErr.retryable ? new RetryableJobError(rawErr.message, rawErr.code) : new PermanentJobError(rawErr.message, rawErr.code);
      }
      // Anything else (the database unreachable, ...) is left to the runner's default: retry.
      throw rawErr;
    }
  };
}
