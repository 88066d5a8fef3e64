import { authorize, mayAccess, scopeOf } from '../auth/access';
import type { Principal, Role } from '../model/principal';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { randomHex } from '../random-hex';
import { isDuplicateKeyError } from '../storage/errors';
import type { EscrowRecord } from '../model/escrow';
import type { EscrowRepository } from '../storage/escrow-repository';
import { parseEscrowInput, type EscrowInput } from './escrow-input';
import { PaymentProviderError, type PaymentProvider, type TransferResult } from './payment-provider';
import { PayoutError } from './payout-errors';

/**
 * Escrow: money held for a payee until its payout batch runs. Payout: the one transfer that pays an
 * escrow. This service moves money at most once per escrow, however often executePayout is called.
 */
export type Escrow = EscrowRecord;

export interface NewEscrow extends EscrowInput {
  /** The principal that created it (src/auth/access.ts `ownershipOf` gives all three). */
  createdBy: string;
  createdByRole?: Role | null;
  /** A tenant admin's escrow belongs to its tenant: other tenants' tokens cannot see it. */
  tenant?: string | null;
}

export interface EscrowListing {
  escrows: Escrow[];
  page: number;
  perPage: number;
  total: number;
  totalPages: number;
}

export interface ExecutePayoutParams {
  escrowId: string;
  batchId: string;
  signal?: AbortSignal;
  /** Runs right before the provider is asked to move money; throwing stops the payout. */
  beforeTransfer?: () => Promise<void>;
  /**
   * Whom the payout is made for (a payout job's owner): an escrow it may not pay (src/auth/access.ts,
   * action `pay`) answers escrow_not_found like a missing one. Absent: a trusted caller, no check.
   */
  owner?: Principal;
}

export interface PayoutResult {
  escrowId: string;
  transferId: string;
  /** True when this call did not make the held → paid transition (an earlier or concurrent call did). */
  alreadyPaid: boolean;
}

export interface PayoutServiceDeps {
  escrows: EscrowRepository;
  provider: PaymentProvider;
  now?: () => Date;
  generateEscrowId?: () => string;
}

/** The provider's idempotency key: derived from the escrow alone, so every attempt, worker and job agrees on it. */
export function payoutIdempotencyKey(escrowId: string): string {
  return `escrow:${escrowId}`;
}

export class PayoutService {
  private readonly escrows: EscrowRepository;
  private readonly provider: PaymentProvider;
  private readonly now: () => Date;
  private readonly generateEscrowId: () => string;

  constructor(deps: PayoutServiceDeps) {
    this.escrows = deps.escrows;
    this.provider = deps.provider;
    this.now = deps.now ?? (() => new Date());
    this.generateEscrowId = deps.generateEscrowId ?? (() => `escrow_${randomHex(12)}`);
  }

  /** Creates a held escrow. Invalid input → ValidationError; an escrow id in use → ConflictError. */
  async createEscrow(params: NewEscrow): Promise<Escrow> {
    const { createdBy, createdByRole = null, tenant = null, ...fields } = params;
    // Validated here as well as at the route: the seed script and other callers come in typed, not checked.
    const input = parseEscrowInput(fields);
    if (typeof createdBy !== 'string' || createdBy.length === 0) {
      throw new ValidationError('the escrow is invalid', [{ field: 'createdBy', message: 'is required' }]);
    }
    const escrowId = input.escrowId ?? this.generateEscrowId();
    try {
      return await this.escrows.insertEscrow({
        escrowId,
        batchId: input.batchId,
        amount: input.amount,
        currency: input.currency,
        payee: input.payee,
        createdBy,
        createdByRole,
        tenant,
        now: this.now(),
      });
    } catch (rawErr) {
      if (isDuplicateKeyError(rawErr)) throw new ConflictError(`escrow "${escrowId}" already exists`);
      throw rawErr;
    }
  }

  /** For trusted callers (handlers, scripts); requests from principals use readEscrow. */
  async getEscrow(escrowId: string): Promise<Escrow> {
    const escrow = await this.escrows.findEscrow(escrowId);
    if (!escrow) throw new NotFoundError('escrow_not_found', `escrow "${escrowId}" does not exist`);
    return escrow;
  }

  /** The escrow if the principal may see it; another tenant's answers 404 like a missing one. */
  async readEscrow(principal: Principal, escrowId: string): Promise<Escrow> {
    const escrow = await this.escrows.findEscrow(escrowId);
    return authorize({ principal, kind: 'escrow', action: 'read', id: escrowId, resource: escrow });
  }

  /** One page of the escrows the principal may see (a tenant token: its tenant's), newest first. */
  async listEscrows(principal: Principal, params: { page: number; perPage: number }): Promise<EscrowListing> {
    const { page, perPage } = params;
    const { escrows, total } = await this.escrows.listEscrows({ scope: scopeOf(principal, 'escrow'), skip: (page - 1) * perPage, limit: perPage });
    return { escrows, page, perPage, total, totalPages: Math.ceil(total / perPage) };
  }

  /**
   * Pays the escrow, at most once across retries, crashes and duplicate deliveries: a paid escrow
   * answers with its transfer; otherwise the provider is asked with a key derived from the escrow
   * (so a repeat returns the original transfer) and the escrow goes held → paid conditionally.
   * Throws PayoutError; `retryable` says whether trying again can help.
   */
  async executePayout(params: ExecutePayoutParams): Promise<PayoutResult> {
    const { escrowId, batchId, signal } = params;
    if (signal?.aborted) throw abortedError(signal);
    const escrow = await this.escrows.findEscrow(escrowId);
    // Before the batch check too: another tenant's escrow tells nothing, not even its batch.
    if (!escrow || (params.owner !== undefined && !mayAccess(params.owner, 'escrow', 'pay', escrow))) {
      throw new PayoutError('escrow_not_found', `escrow "${escrowId}" does not exist`, false);
    }
    if (escrow.batchId !== batchId) {
      throw new PayoutError('escrow_batch_mismatch', `escrow "${escrowId}" belongs to batch "${escrow.batchId}", not "${batchId}"`, false);
    }
    if (escrow.status === 'paid') return { escrowId, transferId: escrow.transferId, alreadyPaid: true };

    await params.beforeTransfer?.();
    const transfer = await this.transfer(escrow, signal);
    // No abort check from here on: the money has moved, and recording it now spares the next attempt a
    // provider call.
    const paid = await this.escrows.markEscrowPaid({ escrowId, transferId: transfer.transferId, now: this.now() });
    if (paid) return { escrowId, transferId: transfer.transferId, alreadyPaid: false };

    // A concurrent call won the held → paid transition; with one key per escrow it holds the same transfer.
    const current = await this.escrows.findEscrow(escrowId);
    if (current?.status === 'paid' && current.transferId === transfer.transferId) {
      return { escrowId, transferId: transfer.transferId, alreadyPaid: true };
    }
    throw new PayoutError(
      'transfer_conflict',
      `escrow "${escrowId}" is ${current ? `${current.status} with transfer ${String(current.transferId)}` : 'gone'}, but the provider returned transfer ${transfer.transferId}`,
      false,
    );
  }

  private async transfer(escrow: Escrow, signal: AbortSignal | undefined): Promise<TransferResult> {
    try {
      return await this.provider.transfer({
        idempotencyKey: payoutIdempotencyKey(escrow.escrowId),
        amount: escrow.amount,
        currency: escrow.currency,
        payee: escrow.payee,
        ...(signal ? { signal } : {}),
      });
    } catch (rawErr) {
      if (rawErr instanceof PaymentProviderError) {
        if (rawErr.retryable) {
          throw new PayoutError('transfer_unavailable', `payment provider: ${rawErr.message}`, true, { cause: rawErr });
        }
        throw new PayoutError('transfer_rejected', `payment provider refused (${rawErr.code}): ${rawErr.message}`, false, { cause: rawErr });
      }
      if (signal?.aborted) throw abortedError(signal);
      throw rawErr;
    }
  }
}

function abortedError(signal: AbortSignal): PayoutError {
  return new PayoutError('aborted', 'the payout was aborted; a retry finds any transfer already made (same idempotency key)', true, { cause: signal.reason });
}
