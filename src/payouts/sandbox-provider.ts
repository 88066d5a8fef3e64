import { randomBytes } from 'node:crypto';

import type { Connection } from 'mongoose';

import { coerceError } from '../errors';
import { isDuplicateKeyError } from '../storage/errors';
import { createPayoutTransferRepository, type PayoutTransferRepository } from '../storage/payout-transfer-repository';
import { type PayoutTransferRecord } from '../model/payout-transfer';
import {
  PermanentProviderError,
  TransientProviderError,
  type PaymentProvider,
  type TransferRequest,
  type TransferResult,
} from './payment-provider';

/**
 * Where the sandbox injects transient failures:
 * - `before-recording`: nothing moved, the caller sees an error.
 * - `after-recording`: the money moved, yet the caller sees an error (a lost response); a retry with
 *   the same key must answer with that same transfer.
 */
export type SandboxFailurePoint = 'before-recording' | 'after-recording';
export const SANDBOX_FAILURE_POINTS: readonly SandboxFailurePoint[] = ['before-recording', 'after-recording'];

/** Payees whose id starts with this are refused permanently, so that path can be exercised end to end. */
export const SANDBOX_REJECTED_PAYEE_PREFIX = 'acct_rejected';

export interface SandboxProviderOptions {
  /** Where the sandbox keeps its ledger of transfers (collection `sandbox_payout_transfers`). */
  connection: Connection;
  /** Probability 0..1 of a transient failure at each enabled failure point; default 0. */
  failureRate?: number;
  /** Default: both points. */
  failurePoints?: readonly SandboxFailurePoint[];
  /** [0, 1) source; one draw per enabled point per call while failureRate > 0. Default Math.random. */
  random?: () => number;
  now?: () => Date;
}

/** A transient failure the sandbox injected on purpose; `point` says whether money had moved. */
export class SandboxInjectedFailure extends TransientProviderError {
  constructor(readonly point: SandboxFailurePoint) {
    super(`sandbox: injected transient failure ${point}`, 'provider_unavailable');
  }
}

const PAYEE = /^[A-Za-z0-9._:-]{1,128}$/;
const CURRENCY = /^[A-Z]{3}$/;

/**
 * A real PaymentProvider whose "bank" is a MongoDB collection. A unique index on the idempotency key
 * makes "at most one transfer per key" hold under any concurrency, across processes.
 */
export class SandboxPaymentProvider implements PaymentProvider {
  private readonly store: PayoutTransferRepository;
  private readonly failureRate: number;
  private readonly failurePoints: ReadonlySet<SandboxFailurePoint>;
  private readonly random: () => number;
  private readonly now: () => Date;
  private indexesReady: Promise<void> | undefined;

  constructor(options: SandboxProviderOptions) {
    const failureRate = options.failureRate ?? 0;
    if (!Number.isFinite(failureRate) || failureRate < 0 || failureRate > 1) {
      throw new RangeError(`sandbox provider: failureRate must be a number in [0, 1], got ${String(options.failureRate)}`);
    }
    for (const point of options.failurePoints ?? []) {
      if (!SANDBOX_FAILURE_POINTS.includes(point)) {
        throw new RangeError(`sandbox provider: unknown failure point "${String(point)}" (use ${SANDBOX_FAILURE_POINTS.join(', ')})`);
      }
    }
    this.store = createPayoutTransferRepository(options.connection);
    this.failureRate = failureRate;
    this.failurePoints = new Set(options.failurePoints ?? SANDBOX_FAILURE_POINTS);
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => new Date());
  }

  async transfer(request: TransferRequest): Promise<TransferResult> {
    request.signal?.throwIfAborted();
    checkRequest(request);
    await this.ensureIndexes();
    this.injectFailure('before-recording');
    // Last moment a caller's abort can still prevent the transfer.
    request.signal?.throwIfAborted();
    const transfer = await this.recordOnce(request);
    this.injectFailure('after-recording');
    return { transferId: transfer.transferId, status: transfer.status };
  }

  /**
   * Creates the unique index the at-most-once guarantee rests on. Called by `transfer` (once per
   * instance) so the guarantee does not depend on start-up wiring; safe to call again.
   */
  ensureIndexes(): Promise<void> {
    this.indexesReady ??= this.store.ensureIndexes().catch((rawErr: unknown) => {
      this.indexesReady = undefined; // let the next call try again
      throw new TransientProviderError('sandbox: cannot prepare the transfer ledger', 'provider_unavailable', { cause: coerceError(rawErr) });
    });
    return this.indexesReady;
  }

  /** How many transfers were recorded under this key: 0 or 1 unless the guarantee is broken. */
  countTransfers(idempotencyKey: string): Promise<number> {
    return this.store.countTransfers(idempotencyKey);
  }

  /** Transfers recorded per idempotency key, for every key that has any. */
  countTransfersByKey(): Promise<Map<string, number>> {
    return this.store.countTransfersByKey();
  }

  findTransfer(idempotencyKey: string): Promise<PayoutTransferRecord | null> {
    return this.store.findTransferByKey(idempotencyKey);
  }

  private injectFailure(point: SandboxFailurePoint): void {
    if (this.failureRate === 0 || !this.failurePoints.has(point)) return;
    if (this.random() < this.failureRate) throw new SandboxInjectedFailure(point);
  }

  /** Insert first and let the unique index arbitrate; the losers of a race read the winner's transfer. */
  private async recordOnce(request: TransferRequest): Promise<PayoutTransferRecord> {
    const candidate: PayoutTransferRecord = {
      transferId: `tr_${randomBytes(12).toString('hex')}`,
      idempotencyKey: request.idempotencyKey,
      amount: request.amount,
      currency: request.currency,
      payee: request.payee,
      status: 'succeeded',
      createdAt: this.now(),
    };
    try {
      await this.store.insertTransfer(candidate);
      return candidate;
    } catch (rawErr) {
      if (!isDuplicateKeyError(rawErr)) {
        // Like a provider's 5xx: whether the write landed is unknown, so the caller retries with the key.
        throw new TransientProviderError('sandbox: the transfer ledger did not answer', 'provider_unavailable', { cause: coerceError(rawErr) });
      }
    }
    const existing = await this.findExisting(request.idempotencyKey);
    if (existing.amount !== request.amount || existing.currency !== request.currency || existing.payee !== request.payee) {
      throw new PermanentProviderError(
        `sandbox: idempotency key "${request.idempotencyKey}" was already used for a different transfer`,
        'idempotency_key_reused',
      );
    }
    return existing;
  }

  private async findExisting(idempotencyKey: string): Promise<PayoutTransferRecord> {
    let existing: PayoutTransferRecord | null;
    try {
      existing = await this.store.findTransferByKey(idempotencyKey);
    } catch (rawErr) {
      throw new TransientProviderError('sandbox: the transfer ledger did not answer', 'provider_unavailable', { cause: coerceError(rawErr) });
    }
    // The insert that beat ours was acknowledged before our duplicate-key error, so this is not expected.
    if (!existing) throw new TransientProviderError(`sandbox: transfer for key "${idempotencyKey}" not readable yet`, 'provider_unavailable');
    return existing;
  }
}

function checkRequest(request: TransferRequest): void {
  const problems: string[] = [];
  if (typeof request.idempotencyKey !== 'string' || request.idempotencyKey.length === 0 || request.idempotencyKey.length > 255) {
    problems.push('idempotencyKey must be a string of 1-255 characters');
  }
  if (!Number.isSafeInteger(request.amount) || request.amount <= 0) problems.push('amount must be a positive integer of minor units');
  if (!CURRENCY.test(request.currency)) problems.push('currency must be three uppercase letters');
  if (!PAYEE.test(request.payee)) problems.push('payee must be an account id');
  if (problems.length > 0) throw new PermanentProviderError(`sandbox: invalid transfer: ${problems.join('; ')}`, 'invalid_request');
  if (request.payee.startsWith(SANDBOX_REJECTED_PAYEE_PREFIX)) {
    throw new PermanentProviderError(`sandbox: payee "${request.payee}" cannot receive transfers`, 'payee_rejected');
  }
}
