import type { Connection } from 'mongoose';

import type { AccessScope } from '../model/principal';
import type { EscrowFields, EscrowRecord } from '../model/escrow';
import type { Role } from '../model/principal';
import { accessFilter } from './access-scope';
import { ensureEscrowIndexes, escrowModel, type EscrowDocument } from './escrow-model';

export interface NewEscrowRecord {
  escrowId: string;
  batchId: string;
  amount: number;
  currency: string;
  payee: string;
  createdBy: string;
  createdByRole: Role | null;
  tenant: string | null;
  now: Date;
}

export interface EscrowPage {
  escrows: EscrowRecord[];
  /** How many escrows the scope holds in all. */
  total: number;
}

export interface EscrowRepository {
  /** Inserts a held escrow; a duplicate escrow id rejects with the driver's code 11000. */
  insertEscrow(escrow: NewEscrowRecord): Promise<EscrowRecord>;
  findEscrow(escrowId: string): Promise<EscrowRecord | null>;
  /** The escrows within `scope` (src/auth/access.ts), newest first. */
  listEscrows(params: { scope: AccessScope; skip: number; limit: number }): Promise<EscrowPage>;
  /**
   * held → paid with the transfer id, in one conditional update. Null when the escrow is not held
   * (already paid by someone else, or missing): exactly one caller can win the transition.
   */
  markEscrowPaid(params: { escrowId: string; transferId: string; now: Date }): Promise<EscrowRecord | null>;
  /** Creates the escrow collection's indexes (Mongoose autoIndex is off on our connections). */
  ensureIndexes(): Promise<void>;
}

export function createEscrowRepository(connection: Connection): EscrowRepository {
  const Escrow = escrowModel(connection);
  return {
    async insertEscrow(escrow) {
      const doc: EscrowDocument = {
        _id: escrow.escrowId,
        batchId: escrow.batchId,
        amount: escrow.amount,
        currency: escrow.currency,
        payee: escrow.payee,
        status: 'held',
        transferId: null,
        paidAt: null,
        createdBy: escrow.createdBy,
        createdByRole: escrow.createdByRole,
        tenant: escrow.tenant,
        createdAt: escrow.now,
        updatedAt: escrow.now,
      };
      // Through the model so the schema's validators are a last line of defence behind the service's.
      await Escrow.create(doc);
      return toEscrowRecord(doc);
    },

    async findEscrow(escrowId) {
      const doc = await Escrow.findById(escrowId).lean<EscrowDocument>().exec();
      return doc ? toEscrowRecord(doc) : null;
    },

    async listEscrows({ scope, skip, limit }) {
      const filter = accessFilter(scope);
      const [docs, total] = await Promise.all([
        Escrow.find(filter, null, { sort: { createdAt: -1, _id: -1 }, skip, limit }).lean<EscrowDocument[]>().exec(),
        Escrow.countDocuments(filter).exec(),
      ]);
      return { escrows: docs.map(toEscrowRecord), total };
    },

    async markEscrowPaid({ escrowId, transferId, now }) {
      const doc = await Escrow.findOneAndUpdate(
        { _id: escrowId, status: 'held' },
        { $set: { status: 'paid', transferId, paidAt: now, updatedAt: now } },
        { new: true },
      )
        .lean<EscrowDocument>()
        .exec();
      return doc ? toEscrowRecord(doc) : null;
    },

    ensureIndexes: () => ensureEscrowIndexes(connection),
  };
}

function toEscrowRecord(doc: EscrowDocument): EscrowRecord {
  const fields: EscrowFields = {
    escrowId: doc._id,
    batchId: doc.batchId,
    amount: doc.amount,
    currency: doc.currency,
    payee: doc.payee,
    createdBy: doc.createdBy,
    createdByRole: doc.createdByRole ?? null,
    tenant: doc.tenant ?? null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
  if (doc.status === 'paid') {
    if (doc.transferId === null || doc.paidAt === null) {
      // Only markEscrowPaid writes `paid`, always with both fields; anything else is corruption.
      throw new Error(`escrow ${doc._id} is paid but has no transferId/paidAt`);
    }
    return { ...fields, status: 'paid', transferId: doc.transferId, paidAt: doc.paidAt };
  }
  return { ...fields, status: 'held', transferId: null, paidAt: null };
}
