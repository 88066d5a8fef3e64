import type { Ownership, Role } from '../model/principal';
import type { CatchUpPolicy } from '../model/schedule';

/** Quartz's default for cron triggers: after downtime, run once for what was missed. */
export const DEFAULT_CATCH_UP: CatchUpPolicy = 'last';
export const DEFAULT_TIME_ZONE = 'UTC';

export interface SchedulerSettings {
  /** How often a scheduler ticks on its own; 0: never (tick() still works). */
  intervalMs: number;
  /** An occurrence later than this when its tick runs counts as missed (see the catch-up policy). */
  misfireGraceMs: number;
  /** While ticks find nothing, they slow down to one per this (default: intervalMs, no slowing). */
  idleIntervalMs?: number;
}

/** The defaults (src/config.ts uses them too). Quartz also treats a trigger 60 s late as misfired. */
export const DEFAULT_SCHEDULER: Readonly<SchedulerSettings> = Object.freeze({ intervalMs: 1_000, misfireGraceMs: 60_000, idleIntervalMs: 5_000 });

/** Names appear in paths and in `createdBy` (`schedule:<name>`), so they are kept URL- and log-safe. */
export const SCHEDULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** The `createdBy` of every job a schedule enqueues. */
export function scheduleCreator(name: string): string {
  return `schedule:${name}`;
}

/**
 * The principal a schedule's jobs act for: whoever created the schedule. Only admins create schedules
 * (POST /admin/schedules), so one stored before roles were recorded was an admin's.
 */
export function scheduleOwner(schedule: Pick<Ownership, 'createdBy' | 'createdByRole'>): { sub: string; role: Role } {
  return { sub: schedule.createdBy, role: schedule.createdByRole ?? 'admin' };
}

/** One key per (schedule, occurrence): the jobs collection's unique dedupe index makes it exactly one job. */
export function occurrenceIdempotencyKey(name: string, occurrence: Date): string {
  return `schedule:${name}:${occurrence.toISOString()}`;
}
