import { Schema, type Connection, type Model } from 'mongoose';

import { ROLES, type Role } from '../model/principal';
import { CATCH_UP_POLICIES, type CatchUpPolicy, type ScheduleError } from '../model/schedule';

/** A schedule as stored. `_id` is the schedule name: its unique index is the only one names need. */
export interface ScheduleDocument {
  _id: string;
  type: string;
  payload: unknown;
  cron: string;
  timeZone: string;
  paused: boolean;
  catchUp: CatchUpPolicy;
  priority: number | null;
  /** Next occurrence to claim; null while paused. */
  nextRunAt: Date | null;
  /**
   * An occurrence that a claim decided to fire and whose job is not yet known to exist. Set by the
   * claim in the same atomic update that advances nextRunAt, cleared once the job is enqueued: a crash
   * in between leaves it here for the next tick of any instance to deliver.
   */
  pendingRunAt: Date | null;
  lastRunAt: Date | null;
  lastJobId: string | null;
  lastError: ScheduleError | null;
  /** Bumped by every claim and every edit; an edit is conditional on the revision it read. */
  revision: number;
  /**
   * Bumped only by edits that change when or whether occurrences fire (cron, timeZone, paused,
   * catchUp). A claim is conditional on it and on the nextRunAt it read, so edits of the payload,
   * type or priority never invalidate a claim (a storm of them would otherwise starve the schedule).
   * Absent on schedules written before it existed (a claim then matches it as null).
   */
  timingRevision: number;
  createdBy: string;
  /** The creator's role; null on schedules written before it was stored. */
  createdByRole: Role | null;
  /** The tenant of the token that created it; only that tenant's tokens (and tenant-less admins) see it. */
  tenant: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const errorSchema = new Schema<ScheduleError>({ code: String, message: { type: String, required: true }, at: Date }, { _id: false });

const scheduleSchema = new Schema<ScheduleDocument>(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    payload: { type: Schema.Types.Mixed },
    cron: { type: String, required: true },
    timeZone: { type: String, required: true },
    paused: { type: Boolean, required: true },
    catchUp: { type: String, enum: CATCH_UP_POLICIES, required: true },
    priority: { type: Number, default: null },
    nextRunAt: { type: Date, default: null },
    pendingRunAt: { type: Date, default: null },
    lastRunAt: { type: Date, default: null },
    lastJobId: { type: String, default: null },
    lastError: { type: errorSchema, default: null },
    revision: { type: Number, required: true },
    timingRevision: { type: Number, required: true },
    createdBy: { type: String, required: true },
    createdByRole: { type: String, enum: ROLES, default: null },
    tenant: { type: String, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'schedules', versionKey: false, minimize: false, strict: 'throw' },
);

// The tick's two reads: due schedules (paused=false, pendingRunAt=null, nextRunAt ≤ now) and
// undelivered occurrences (pendingRunAt set).
scheduleSchema.index({ paused: 1, pendingRunAt: 1, nextRunAt: 1 }, { name: 'due' });
scheduleSchema.index({ pendingRunAt: 1 }, { name: 'pending' });

export type ScheduleModel = Model<ScheduleDocument>;

export function scheduleModel(connection: Connection): ScheduleModel {
  return (connection.models.Schedule as ScheduleModel | undefined) ?? connection.model<ScheduleDocument>('Schedule', scheduleSchema);
}

export async function ensureScheduleIndexes(connection: Connection): Promise<void> {
  await scheduleModel(connection).createIndexes();
}
