import type { Role } from './principal';

/** Glossary: an escrow is money held for a payee until its payout batch runs; its payout is the one transfer that pays it. */
export interface EscrowFields {
  escrowId: string;
  batchId: string;
  amount: number;
  currency: string;
  payee: string;
  createdBy: string;
  /** null: written before roles were stored. */
  createdByRole: Role | null;
  tenant: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** An escrow as the domain sees it: a plain object; `transferId` and `paidAt` exist exactly when paid. */
export type EscrowRecord =
  | (EscrowFields & { status: 'held'; transferId: null; paidAt: null })
  | (EscrowFields & { status: 'paid'; transferId: string; paidAt: Date });

