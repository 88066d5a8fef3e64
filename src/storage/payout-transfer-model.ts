import { Schema, type Connection, type Model } from 'mongoose';

/** One transfer recorded by the sandbox payment provider: money that has moved. */
export interface PayoutTransferDocument {
  /** The transfer id the provider answers with. */
  _id: string;
  /** Unique: a second transfer with the same key is never recorded. */
  idempotencyKey: string;
  amount: number;
  currency: string;
  payee: string;
  status: 'succeeded';
  createdAt: Date;
}

const MODEL_NAME = 'PayoutTransfer';

const payoutTransferSchema = new Schema<PayoutTransferDocument>(
  {
    _id: { type: String, required: true },
    idempotencyKey: { type: String, required: true },
    amount: { type: Number, required: true },
    currency: { type: String, required: true },
    payee: { type: String, required: true },
    status: { type: String, required: true, enum: ['succeeded'] },
    createdAt: { type: Date, required: true },
  },
  { collection: 'sandbox_payout_transfers', versionKey: false, timestamps: false },
);
// The guarantee that money moves at most once per key rests on this index (code 11000 on a repeat).
payoutTransferSchema.index({ idempotencyKey: 1 }, { unique: true });

export function payoutTransferModel(connection: Connection): Model<PayoutTransferDocument> {
  const existing = connection.models[MODEL_NAME] as Model<PayoutTransferDocument> | undefined;
  return existing ?? connection.model<PayoutTransferDocument>(MODEL_NAME, payoutTransferSchema);
}

/** Creates the unique idempotency-key index (connections run with autoIndex off). */
export async function ensurePayoutTransferIndexes(connection: Connection): Promise<void> {
  await payoutTransferModel(connection).createIndexes();
}
