import { Schema, type Connection, type Model } from 'mongoose';

/**
 * Dedupe `throttle`: one document per (tenant, type, key) naming the job of the current period.
 * Taking a period is a conditional update (or the insert of the first one), atomic across API
 * instances; the job's id is chosen before the job is written, so whoever inserts that id first
 * creates the period's job (a crash between the two leaves nothing to clean up).
 */
export interface ThrottleDocument {
  /** `<tenant>/<type>:<key>`. */
  _id: string;
  jobId: string;
  /** The period ends (a new job may be created) at this time. */
  until: Date;
}

const throttleSchema = new Schema<ThrottleDocument>(
  {
    _id: { type: String, required: true },
    jobId: { type: String, required: true },
    until: { type: Date, required: true },
  },
  { collection: 'job_throttles', versionKey: false },
);
// An ended period is as good as none, so MongoDB may delete it (the test server keeps TTL indexes
// but deletes nothing; a stale period is replaced by the next enqueue of its key anyway).
throttleSchema.index({ until: 1 }, { name: 'ended', expireAfterSeconds: 0 });

export type ThrottleModel = Model<ThrottleDocument>;

export function throttleModel(connection: Connection): ThrottleModel {
  return (connection.models.JobThrottle as ThrottleModel | undefined) ?? connection.model<ThrottleDocument>('JobThrottle', throttleSchema);
}

export async function ensureThrottleIndexes(connection: Connection): Promise<void> {
  await throttleModel(connection).createIndexes();
}
