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

/** Quartz's default for cron triggers: after downtime, run once for what was missed. */
export const DEFAULT_CATCH_UP: CatchUpPolicy = 'last';
export const DEFAULT_TIME_ZONE = 'UTC';

export interface SchedulerSettings {
  /** How often a scheduler ticks on its own; 0: never (tick() still works). */
  intervalMs: number;
  /** An occurrence later than this when its tick runs counts as missed (see the catch-up policy). */
  misfireGraceMs: number;
}

/** The defaults (src/config.ts uses them too). Quartz also treats a trigger 60 s late as misfired. */
export const DEFAULT_SCHEDULER: Readonly<SchedulerSettings> = Object.freeze({ intervalMs: 1_000, misfireGraceMs: 60_000 });

/** Names appear in paths and in `createdBy` (`schedule:<name>`), so they are kept URL- and log-safe. */
export const SCHEDULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

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

/** The `createdBy` of every job a schedule enqueues. */
export function scheduleCreator(name: string): string {
  return `schedule:${name}`;
}

/** One key per (schedule, occurrence): the jobs collection's unique dedupe index makes it exactly one job. */
export function occurrenceIdempotencyKey(name: string, occurrence: Date): string {
  return `schedule:${name}:${occurrence.toISOString()}`;
}
