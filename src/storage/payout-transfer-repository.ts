import type { Connection } from 'mongoose';

import type { PayoutTransferRecord } from '../model/payout-transfer';
import { ensurePayoutTransferIndexes, payoutTransferModel, type PayoutTransferDocument } from './payout-transfer-model';

export interface PayoutTransferRepository {
  /** Records a transfer; a repeated idempotency key rejects with the driver's code 11000. */
  insertTransfer(transfer: PayoutTransferRecord): Promise<void>;
  findTransferByKey(idempotencyKey: string): Promise<PayoutTransferRecord | null>;
  countTransfers(idempotencyKey: string): Promise<number>;
  /** Number of recorded transfers for every idempotency key that has any. */
  countTransfersByKey(): Promise<Map<string, number>>;
  /** Creates the unique index on idempotencyKey (Mongoose autoIndex is off on our connections). */
  ensureIndexes(): Promise<void>;
}

export function createPayoutTransferRepository(connection: Connection): PayoutTransferRepository {
  const Transfer = payoutTransferModel(connection);
  return {
    async insertTransfer(transfer) {
      const doc: PayoutTransferDocument = {
        _id: transfer.transferId,
        idempotencyKey: transfer.idempotencyKey,
        amount: transfer.amount,
        currency: transfer.currency,
        payee: transfer.payee,
        status: transfer.status,
        createdAt: transfer.createdAt,
      };
      await Transfer.create(doc);
    },

    async findTransferByKey(idempotencyKey) {
      const doc = await Transfer.findOne({ idempotencyKey }).lean<PayoutTransferDocument>().exec();
      return doc ? toTransferRecord(doc) : null;
    },

    async countTransfers(idempotencyKey) {
      return Transfer.countDocuments({ idempotencyKey }).exec();
    },

    async countTransfersByKey() {
      const rows = await Transfer.aggregate<{ _id: string; count: number }>([{ $group: { _id: '$idempotencyKey', count: { $sum: 1 } } }]).exec();
      return new Map(rows.map((row) => [row._id, row.count]));
    },

    ensureIndexes: () => ensurePayoutTransferIndexes(connection),
  };
}

function toTransferRecord(doc: PayoutTransferDocument): PayoutTransferRecord {
  return {
    transferId: doc._id,
    idempotencyKey: doc.idempotencyKey,
    amount: doc.amount,
    currency: doc.currency,
    payee: doc.payee,
    status: doc.status,
    createdAt: doc.createdAt,
  };
}
