import type { Connection } from 'mongoose';

import type { AccessScope } from '../model/principal';
import type { ScheduleError, ScheduleState } from '../model/schedule';
import { accessFilter } from './access-scope';
import { isDuplicateKeyError } from './errors';
import { scheduleModel, type ScheduleDocument, type ScheduleModel } from './schedule-model';

function toState(doc: ScheduleDocument): ScheduleState {
  return {
    name: doc._id,
    type: doc.type,
    payload: doc.payload,
    cron: doc.cron,
    timeZone: doc.timeZone,
    paused: doc.paused,
    catchUp: doc.catchUp,
    priority: doc.priority ?? null,
    nextRunAt: doc.nextRunAt ?? null,
    lastRunAt: doc.lastRunAt ?? null,
    lastJobId: doc.lastJobId ?? null,
    lastError: doc.lastError ?? null,
    pendingRunAt: doc.pendingRunAt ?? null,
    revision: doc.revision,
    timingRevision: doc.timingRevision ?? null,
    createdBy: doc.createdBy,
    createdByRole: doc.createdByRole ?? null,
    tenant: doc.tenant ?? null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

function orNull(doc: ScheduleDocument | null): ScheduleState | null {
  return doc ? toState(doc) : null;
}

/** The fields an edit may change (name and history are not among them). */
export type ScheduleChanges = Partial<Pick<ScheduleState, 'type' | 'payload' | 'cron' | 'timeZone' | 'paused' | 'catchUp' | 'priority' | 'nextRunAt'>>;

/** The fields that decide when and whether occurrences fire: changing one bumps `timingRevision`. */
const TIMING_FIELDS = ['cron', 'timeZone', 'paused', 'catchUp', 'nextRunAt'] as const satisfies readonly (keyof ScheduleChanges)[];

export function changesTiming(changes: ScheduleChanges): boolean {
  return TIMING_FIELDS.some((field) => changes[field] !== undefined);
}

/**
 * What an edit was computed from, and must still hold when it is written: the whole schedule
 * (`revision`), its timing (`timingRevision`; an edit of it or a resume), or only its type (a new
 * payload validated against it). Edits that rely on nothing (priority; type and payload together)
 * give none, so concurrent edits of the payload do not refuse each other: the last one wins.
 */
export interface ScheduleEditBasis {
  revision?: number;
  /** null: a schedule stored before timingRevision existed. */
  timingRevision?: number | null;
  type?: string;
}

/** The atomic operations on schedules. Every change is one conditional update of one document. */
export class ScheduleRepository {
  private readonly schedules: ScheduleModel;

  constructor(connection: Connection) {
    this.schedules = scheduleModel(connection);
  }

  /** Inserts a new schedule; false when the name is taken. */
  async insert(schedule: ScheduleState): Promise<boolean> {
    const { name, timingRevision, ...fields } = schedule;
    const doc: ScheduleDocument = { _id: name, ...fields, timingRevision: timingRevision ?? 0 };
    try {
      await this.schedules.collection.insertOne(doc as unknown as Record<string, unknown>);
      return true;
    } catch (err) {
      if (isDuplicateKeyError(err)) return false;
      throw err;
    }
  }

  async findByName(name: string): Promise<ScheduleState | null> {
    return orNull(await this.schedules.findById(name).lean<ScheduleDocument>());
  }

  /** The schedules within `scope` (src/auth/access.ts), by name. */
  async list(params: { scope: AccessScope; limit: number }): Promise<ScheduleState[]> {
    return (await this.schedules.find(accessFilter(params.scope)).sort({ _id: 1 }).limit(params.limit).lean<ScheduleDocument[]>()).map(toState);
  }

  /**
   * Applies an edit if the schedule still has the values the edit was computed from (`expected`) and
   * is still within the caller's `scope` (checked in the same filter, so a race cannot slip past
   * either); null otherwise. Edits of the timing also bump `timingRevision`, which invalidates claims
   * planned on the old timing.
   */
  async update(params: { name: string; expected: ScheduleEditBasis; scope: AccessScope; changes: ScheduleChanges; now: Date }): Promise<ScheduleState | null> {
    const { expected } = params;
    const bump = changesTiming(params.changes) ? { revision: 1, timingRevision: 1 } : { revision: 1 };
    const updated = await this.schedules
      .findOneAndUpdate(
        {
          ...accessFilter(params.scope),
          _id: params.name,
          ...(expected.revision === undefined ? {} : { revision: expected.revision }),
          // null also matches a schedule written before timingRevision existed (no field).
          ...('timingRevision' in expected ? { timingRevision: expected.timingRevision ?? null } : {}),
          ...(expected.type === undefined ? {} : { type: expected.type }),
        },
        { $set: { ...params.changes, updatedAt: params.now }, $inc: bump },
        { returnDocument: 'after' },
      )
      .lean<ScheduleDocument>();
    return orNull(updated);
  }

  /** Deletes the schedule if it is within the caller's `scope`; false when there is none such. */
  async delete(params: { name: string; scope: AccessScope }): Promise<boolean> {
    const result = await this.schedules.deleteOne({ ...accessFilter(params.scope), _id: params.name });
    return result.deletedCount === 1;
  }

  /**
   * What a scheduler tick has to do, in one query: schedules holding an undelivered occurrence
   * (claimed, not yet enqueued: a crash, or in progress), and active schedules whose next occurrence
   * is due with nothing pending; earliest first.
   */
  async findDue(params: { now: Date; limit: number }): Promise<ScheduleState[]> {
    const docs = await this.schedules
      .find({ $or: [{ pendingRunAt: { $ne: null } }, { paused: false, pendingRunAt: null, nextRunAt: { $lte: params.now } }] })
      .sort({ nextRunAt: 1 })
      .limit(params.limit)
      .lean<ScheduleDocument[]>();
    return docs.map(toState);
  }

  /**
   * The claim: compare-and-set on the timing that was read (`timingRevision`) and on the occurrence
   * that was due (`dueAt`, the nextRunAt read). Exactly one caller can win for a given occurrence, as
   * the winner moves nextRunAt past it; it records the occurrence to fire (if any) as pending, in the
   * same atomic update. Also conditional on being active with nothing pending, so a claim never
   * replaces an undelivered occurrence. Edits that leave the timing alone (payload, type, priority) do
   * not make it fail. Never won before the occurrence is due (`dueAt` ≤ `now`), whatever the read
   * said: a read can return a document updated after it matched (the test server does), and a claim
   * of a not-yet-due occurrence would fire it early. Returns the schedule after the claim (its current
   * payload), or null when lost.
   */
  async claim(params: { name: string; timingRevision: number | null; dueAt: Date; fire: Date | null; nextRunAt: Date; now: Date }): Promise<ScheduleState | null> {
    const claimed = await this.schedules
      .findOneAndUpdate(
        {
          _id: params.name,
          // null also matches a schedule written before timingRevision existed (no field).
          timingRevision: params.timingRevision ?? null,
          nextRunAt: { $eq: params.dueAt, $lte: params.now },
          paused: false,
          pendingRunAt: null,
        },
        { $set: { nextRunAt: params.nextRunAt, pendingRunAt: params.fire, updatedAt: params.now }, $inc: { revision: 1 } },
        { returnDocument: 'after' },
      )
      .lean<ScheduleDocument>();
    return orNull(claimed);
  }

  /**
   * Clears a delivered (or undeliverable) pending occurrence: with the job id once its job exists, or
   * with the error that makes it impossible. Conditional on the occurrence, so a repeat is a no-op.
   */
  async settlePending(params: { name: string; occurrence: Date; outcome: { jobId: string } | { error: ScheduleError }; now: Date }): Promise<boolean> {
    const { outcome } = params;
    const set =
      'jobId' in outcome
        ? { lastRunAt: params.occurrence, lastJobId: outcome.jobId, lastError: null }
        : { lastError: outcome.error };
    const result = await this.schedules.updateOne(
      { _id: params.name, pendingRunAt: params.occurrence },
      { $set: { ...set, pendingRunAt: null, updatedAt: params.now } },
    );
    return result.modifiedCount === 1;
  }
}
