import { Schema, type Connection, type Model } from 'mongoose';

/**
 * One document per HELD slot of a (type, concurrencyKey) pool (`keyConcurrencyLimit`): `_id` is
 * the pool and the slot's index. A slot that does not exist is free, so taking one is an insert (a
 * duplicate key tells a racing caller it lost) and releasing one deletes it: the collection holds
 * only slots in use, however many keys there are. A slot whose holder crashed frees itself once
 * `expiresAt` passed and no leased job holds its lease id, as the type-wide slots do.
 */
export interface KeySlotDocument {
  _id: string;
  type: string;
  key: string;
  leaseId: string;
  expiresAt: Date;
}

const keySlotSchema = new Schema<KeySlotDocument>(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    key: { type: String, required: true },
    leaseId: { type: String, required: true },
    expiresAt: { type: Date, required: true },
  },
  { collection: 'job_key_slots', versionKey: false },
);
keySlotSchema.index({ leaseId: 1 }, { name: 'by_lease' });
// Slots a crash left behind (taken, then the process died before its claim) are taken over by the
// next lease of their key; for keys that never come back, MongoDB deletes them an hour after they
// expired, long after any lease that could hold them was reclaimed.
keySlotSchema.index({ expiresAt: 1 }, { name: 'abandoned', expireAfterSeconds: 3_600 });

export type KeySlotModel = Model<KeySlotDocument>;

export function keySlotModel(connection: Connection): KeySlotModel {
  return (connection.models.JobKeySlot as KeySlotModel | undefined) ?? connection.model<KeySlotDocument>('JobKeySlot', keySlotSchema);
}

export async function ensureKeySlotIndexes(connection: Connection): Promise<void> {
  await keySlotModel(connection).createIndexes();
}
