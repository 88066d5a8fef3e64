/** Why a payout could not be executed. Stable codes: they end up in a job's attempt history. */
export type PayoutErrorCode =
  | 'escrow_not_found'
  | 'escrow_batch_mismatch'
  /** The provider refused the transfer; retrying cannot help. */
  | 'transfer_rejected'
  /** The provider did not answer clearly; a retry (same idempotency key) is safe. */
  | 'transfer_unavailable'
  /** The escrow is paid by another transfer than the one the provider returned: needs a human. */
  | 'transfer_conflict'
  /** The caller's signal was aborted before the transfer was made. */
  | 'aborted';

export class PayoutError extends Error {
  constructor(
    readonly code: PayoutErrorCode,
    message: string,
    /** True when the same payout may be tried again (it will never pay twice). */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PayoutError';
  }
}
