import { CronExpressionParser, type CronExpression } from 'cron-parser';

import type { CatchUpPolicy } from '../model/schedule';

/**
 * Cron arithmetic for schedules (cron-parser with Luxon time zones). Every function is pure and
 * takes `now` from the caller, so the scheduler's clock is injected.
 */

export interface CronSpec {
  cron: string;
  timeZone: string;
  /** Seeds `H` (hashed) fields, so every API instance computes the same instants for a schedule. */
  name: string;
}

const FIELD_COUNT = /^\S+(\s+\S+){4,5}$/;

function parse(spec: CronSpec, currentDate: Date): CronExpression {
  return CronExpressionParser.parse(spec.cron.trim(), { tz: spec.timeZone, currentDate, hashSeed: spec.name });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Why a cron expression is not usable, or undefined when it is. Five fields (minute hour
 * day-of-month month day-of-week), six with seconds first, or a predefined one such as `@daily`.
 * cron-parser alone would accept an empty or three-field string (missing fields default to `*`).
 */
export function cronProblem(expression: string): string | undefined {
  const trimmed = expression.trim();
  if (!trimmed.startsWith('@') && !FIELD_COUNT.test(trimmed)) {
    return 'cron must have 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or be a predefined expression such as @daily';
  }
  try {
    parse({ cron: trimmed, timeZone: 'UTC', name: 'check' }, new Date(0)).next();
    return undefined;
  } catch (err) {
    return `cron is not a valid expression: ${message(err)}`;
  }
}

/**
 * A UTC offset ("+02:00", "-0530", "+02") is not a time zone: it has no daylight-saving rules, so a
 * schedule "at 03:00" in it drifts by an hour against the place it was meant for. Whether Intl
 * accepts one depends on the runtime's ICU (Node 20 refuses it, Node 24 accepts it), so the rule is
 * decided here, the same everywhere: refused. A fixed offset is spelled as an IANA zone (Etc/GMT-2
 * for +02:00, POSIX's inverted sign) or UTC.
 */
const UTC_OFFSET = /^[+-]\d/;

/** Why a time zone is not a usable IANA zone name, or undefined when it is. */
export function timeZoneProblem(timeZone: string): string | undefined {
  if (UTC_OFFSET.test(timeZone.trim())) {
    return `timeZone must be an IANA time zone name such as "Europe/Berlin" or "UTC", not a UTC offset (got "${timeZone}"; a fixed offset is written like "Etc/GMT-2" for +02:00)`;
  }
  try {
    // Intl knows the IANA database; Luxon (inside cron-parser) must accept the name as well.
    new Intl.DateTimeFormat('en-US', { timeZone });
    parse({ cron: '0 0 * * *', timeZone, name: 'check' }, new Date(0)).next();
    return undefined;
  } catch {
    return `timeZone must be an IANA time zone name such as "Europe/Berlin" or "UTC" (got "${timeZone}")`;
  }
}

/** The first occurrence strictly after `after`. */
export function nextOccurrence(spec: CronSpec, after: Date): Date {
  return parse(spec, after).next().toDate();
}

/** The latest occurrence at or before `at`, if there is one. */
function latestOccurrence(spec: CronSpec, at: Date): Date | undefined {
  try {
    return parse(spec, new Date(at.getTime() + 1)).prev().toDate();
  } catch {
    return undefined;
  }
}

export interface RunPlan {
  /** The occurrence to enqueue now, or null when the policy skips what is due. */
  fire: Date | null;
  /** The next occurrence after the ones handled now (always later than `now`). */
  nextRunAt: Date;
}

/**
 * Decides what a due schedule does at `now`. `dueAt` (the stored nextRunAt, ≤ now) is an occurrence;
 * the latest occurrence ≤ now is the one that may fire: on time (within the grace) it always fires;
 * overdue beyond the grace it fires only under catch-up `last`. Earlier due occurrences are skipped,
 * so a schedule never fires more than once per claim.
 *
 * The next run is computed from the handled occurrence, not from `now`: that is how cron-parser
 * iterates, and it keeps a daily 02:30 from firing twice when a DST fall-back repeats 02:30 (a fresh
 * computation from inside the repeated hour would return the repeat).
 */
export function planRun(params: { spec: CronSpec; dueAt: Date; now: Date; catchUp: CatchUpPolicy; misfireGraceMs: number }): RunPlan {
  const { spec, dueAt, now } = params;
  // On a DST spring-forward, cron-parser's prev() can miss an occurrence its next() produced (a
  // skipped local time moved past the gap); the stored dueAt is authoritative then.
  const found = latestOccurrence(spec, now);
  const latest = found && found.getTime() > dueAt.getTime() ? found : dueAt;
  const onTime = now.getTime() - latest.getTime() <= params.misfireGraceMs;
  const fire = onTime || params.catchUp === 'last' ? latest : null;
  let nextRunAt = nextOccurrence(spec, latest);
  if (nextRunAt.getTime() <= now.getTime()) nextRunAt = nextOccurrence(spec, now);
  return { fire, nextRunAt };
}
