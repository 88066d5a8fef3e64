import { Schema, type Connection, type Model } from 'mongoose';

/**
 * A rate-limited type's recent lease grants (rateLimit `{ jobs, perSeconds }`): at most `jobs`
 * entries, those of the last `perSeconds`. A lease call takes grants by rewriting the list
 * conditionally on the revision it read, so grants are counted in the database across every API
 * instance, over a sliding window (no fixed buckets).
 */
export interface RateWindowDocument {
  /** The job type. */
  _id: string;
  rev: number;
  grants: { at: Date; leaseId: string }[];
}

const rateWindowSchema = new Schema<RateWindowDocument>(
  {
    _id: { type: String, required: true },
    rev: { type: Number, required: true },
    grants: { type: [{ _id: false, at: Date, leaseId: String }], default: [] },
  },
  { collection: 'job_rate_windows', versionKey: false },
);

export type RateWindowModel = Model<RateWindowDocument>;

export function rateWindowModel(connection: Connection): RateWindowModel {
  return (connection.models.JobRateWindow as RateWindowModel | undefined) ?? connection.model<RateWindowDocument>('JobRateWindow', rateWindowSchema);
}
