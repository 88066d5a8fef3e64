import { Schema, type Connection, type Model } from 'mongoose';

import type { RateLimit } from '../model/job-type';

/**
 * A job type's run-time settings (PATCH /admin/types/:type): a field present overrides the
 * environment and the registry, a field absent does not (`null` in a PATCH $unsets it).
 */
export interface TypeSettingsDocument {
  /** The job type. */
  _id: string;
  paused?: boolean;
  concurrencyLimit?: number;
  keyConcurrencyLimit?: number;
  rateLimit?: RateLimit;
  updatedAt: Date;
}

const typeSettingsSchema = new Schema<TypeSettingsDocument>(
  {
    _id: { type: String, required: true },
    paused: Boolean,
    concurrencyLimit: Number,
    keyConcurrencyLimit: Number,
    rateLimit: { type: new Schema<RateLimit>({ jobs: Number, perSeconds: Number }, { _id: false }), default: undefined },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'job_types', versionKey: false },
);

export type TypeSettingsModel = Model<TypeSettingsDocument>;

export function typeSettingsModel(connection: Connection): TypeSettingsModel {
  return (connection.models.JobTypeSettings as TypeSettingsModel | undefined) ?? connection.model<TypeSettingsDocument>('JobTypeSettings', typeSettingsSchema);
}
