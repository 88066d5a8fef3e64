import type { Ownership } from './principal';

/**
 * Glossary
 * - schedule: a named, recurring enqueue of one job type with one payload, at the times a cron
 *   expression gives in an IANA time zone.
 * - occurrence: one instant the cron expression names; at most one job is ever enqueued per
 *   occurrence of a schedule (its idempotency key is derived from the name and the instant).
 * - claim: the conditional update of the schedule document that decides, for exactly one scheduler,
 *   which occurrence fires and when the next one is due.
 * - catch-up policy: what a scheduler does with occurrences it finds overdue beyond the misfire grace
 *   (after a restart or an outage): `none` skips them all, `last` fires the most recent one once.
 */
export const CATCH_UP_POLICIES = ['none', 'last'] as const;
export type CatchUpPolicy = (typeof CATCH_UP_POLICIES)[number];

export interface ScheduleError {
  code?: string;
  message: string;
  at: Date;
}

/** A schedule as the domain and the API see it. */
export interface Schedule {
  name: string;
  type: string;
  payload: unknown;
  cron: string;
  timeZone: string;
  paused: boolean;
  catchUp: CatchUpPolicy;
  /** null: the job's default priority. */
  priority: number | null;
  /** The next occurrence that will fire; null while paused. */
  nextRunAt: Date | null;
  /** The occurrence whose job was enqueued last; null before the first. */
  lastRunAt: Date | null;
  lastJobId: string | null;
  /** Why the last occurrence could not be enqueued (e.g. its payload no longer matches the type). */
  lastError: ScheduleError | null;
  createdBy: string;
  /** The tenant of the token that created it (null: none); its jobs carry that tenant. */
  tenant: string | null;
  createdAt: Date;
  updatedAt: Date;
}


/**
 * A schedule with the bookkeeping its scheduler and edits need; storage maps its documents to this,
 * and the API shows only the Schedule part (toSchedule).
 */
export interface ScheduleState extends Schedule, Ownership {
  /**
   * An occurrence a claim decided to fire whose job is not yet known to exist: set by the claim in
   * the same atomic update that advances nextRunAt, cleared once the job is enqueued.
   */
  pendingRunAt: Date | null;
  /** Bumped by every claim and every edit. */
  revision: number;
  /** Bumped only by edits of the timing (cron, timeZone, paused, catchUp); null on schedules stored before it existed. */
  timingRevision: number | null;
}

export function toSchedule(state: ScheduleState): Schedule {
  return {
    name: state.name,
    type: state.type,
    payload: state.payload,
    cron: state.cron,
    timeZone: state.timeZone,
    paused: state.paused,
    catchUp: state.catchUp,
    priority: state.priority,
    nextRunAt: state.nextRunAt,
    lastRunAt: state.lastRunAt,
    lastJobId: state.lastJobId,
    lastError: state.lastError,
    createdBy: state.createdBy,
    tenant: state.tenant,
    createdAt: state.createdAt,
    updatedAt: state.updatedAt,
  };
}
