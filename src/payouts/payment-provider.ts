/**
 * The port to whoever actually moves money. Glossary:
 * - transfer: one movement of money to a payee, identified by the provider's transfer id.
 * - idempotency key: chosen by the caller; every call with the same key answers with the same
 *   transfer, so a retry after an unclear outcome (timeout, crash) never pays twice.
 */
export interface TransferRequest {
  idempotencyKey: string;
  /** Integer minor units (cents), > 0. */
  amount: number;
  /** ISO 4217, three uppercase letters. */
  currency: string;
  /** The payee's account id at the provider. */
  payee: string;
  signal?: AbortSignal;
}

/** `pending`: accepted and committed by the provider, settling later; it will not be undone by a retry. */
export type TransferStatus = 'succeeded' | 'pending';

export interface TransferResult {
  transferId: string;
  status: TransferStatus;
}

export interface PaymentProvider {
  /**
   * Moves money at most once per idempotency key. Rejects with TransientProviderError when the
   * outcome is unknown or the provider is briefly unavailable (retry with the same key), and with
   * PermanentProviderError when retrying cannot help.
   */
  transfer(request: TransferRequest): Promise<TransferResult>;
}

export abstract class PaymentProviderError extends Error {
  abstract readonly retryable: boolean;

  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Network trouble, timeouts, 5xx, rate limits. The money may or may not have moved: only a retry
 * with the same idempotency key tells.
 */
export class TransientProviderError extends PaymentProviderError {
  readonly retryable = true;

  constructor(message: string, code = 'provider_unavailable', options?: { cause?: unknown }) {
    super(message, code, options);
  }
}

/** The provider refused the transfer (bad payee, key reused with other details): no retry will help. */
export class PermanentProviderError extends PaymentProviderError {
  readonly retryable = false;

  constructor(message: string, code = 'transfer_rejected', options?: { cause?: unknown }) {
    super(message, code, options);
  }
}
