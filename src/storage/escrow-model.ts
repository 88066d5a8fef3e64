import { Schema, type Connection, type Model } from 'mongoose';

import { ROLES, type Role } from '../model/principal';

export const ESCROW_STATUSES = ['held', 'paid'] as const;
export type EscrowStatus = (typeof ESCROW_STATUSES)[number];

/** An escrow as stored. `_id` is the escrow id, so its uniqueness needs no extra index. */
export interface EscrowDocument {
  _id: string;
  batchId: string;
  /** Integer minor units (cents), > 0. */
  amount: number;
  currency: string;
  payee: string;
  status: EscrowStatus;
  /** The provider's transfer id; set together with `status: 'paid'`, null while held. */
  transferId: string | null;
  paidAt: Date | null;
  createdBy: string;
  /** The creator's role; null on escrows written before it was stored. */
  createdByRole: Role | null;
  /** The creator's tenant: only that tenant's tokens (and tenant-less admins) see the escrow. */
  tenant: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const MODEL_NAME = 'Escrow';

const escrowSchema = new Schema<EscrowDocument>(
  {
    _id: { type: String, required: true },
    batchId: { type: String, required: true },
    amount: { type: Number, required: true, min: 1, validate: { validator: Number.isSafeInteger, message: 'amount must be an integer' } },
    currency: { type: String, required: true, match: /^[A-Z]{3}$/ },
    payee: { type: String, required: true },
    status: { type: String, required: true, enum: ESCROW_STATUSES },
    transferId: { type: String, default: null },
    paidAt: { type: Date, default: null },
    createdBy: { type: String, required: true },
    createdByRole: { type: String, enum: ROLES, default: null },
    tenant: { type: String, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  // Timestamps are written from the injected clock, not by Mongoose, so tests control time.
  { collection: 'escrows', versionKey: false, timestamps: false },
);
// Listing a batch's open escrows; ignored by the test server, used by MongoDB.
escrowSchema.index({ batchId: 1, status: 1 });
// GET /escrows: a tenant's (or everyone's) escrows, newest first.
escrowSchema.index({ tenant: 1, createdAt: -1, _id: -1 });
escrowSchema.index({ createdAt: -1, _id: -1 });

/** The Escrow model on the given connection (registered once per connection). */
export function escrowModel(connection: Connection): Model<EscrowDocument> {
  const existing = connection.models[MODEL_NAME] as Model<EscrowDocument> | undefined;
  return existing ?? connection.model<EscrowDocument>(MODEL_NAME, escrowSchema);
}

/** Creates the escrow indexes (connections run with autoIndex off). */
export async function ensureEscrowIndexes(connection: Connection): Promise<void> {
  await escrowModel(connection).createIndexes();
}
