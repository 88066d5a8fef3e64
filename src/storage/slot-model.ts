import { Schema, type Connection, type Model } from 'mongoose';

/**
 * One document per concurrency slot of a limited job type (`<type>#<index>`). A slot is held by a
 * lease until `expiresAt`; a slot whose holder crashed frees itself when that time passes, so no
 * count can leak. Acquiring one is a conditional update, atomic across all API instances.
 */
export interface SlotDocument {
  _id: string;
  type: string;
  index: number;
  leaseId: string | null;
  expiresAt: Date;
}

const slotSchema = new Schema<SlotDocument>(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    index: { type: Number, required: true },
    leaseId: { type: String, default: null },
    expiresAt: { type: Date, required: true },
  },
  { collection: 'job_slots', versionKey: false },
);
slotSchema.index({ type: 1, expiresAt: 1 }, { name: 'free_by_type' });

export type SlotModel = Model<SlotDocument>;

export function slotModel(connection: Connection): SlotModel {
  return (connection.models.JobSlot as SlotModel | undefined) ?? connection.model<SlotDocument>('JobSlot', slotSchema);
}
