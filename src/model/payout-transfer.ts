/** One transfer the payment provider made (the sandbox provider's ledger). */
export interface PayoutTransferRecord {
  transferId: string;
  idempotencyKey: string;
  amount: number;
  currency: string;
  payee: string;
  status: 'succeeded';
  createdAt: Date;
}

