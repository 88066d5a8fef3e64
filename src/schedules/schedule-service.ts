import { authorize, ownershipOf, scopeOf, type Action } from '../auth/access';
import type { Principal } from '../model/principal';
import { ConflictError } from '../errors';
import type { Clock } from '../model/clock';
import type { JobRegistry } from '../jobs/registry';
import type { ScheduleChanges, ScheduleEditBasis, ScheduleRepository } from '../storage/schedule-repository';
import { nextOccurrence } from './cron';
import { toSchedule, type ScheduleState, type Schedule } from '../model/schedule';

/** `cron` and `timeZone` are already checked with cronProblem / timeZoneProblem by the caller. */
export type CreateScheduleInput = Pick<Schedule, 'name' | 'type' | 'payload' | 'cron' | 'timeZone' | 'paused' | 'catchUp' | 'priority'>;

export type UpdateScheduleInput = Partial<Omit<CreateScheduleInput, 'name'>>;

export interface ScheduleServiceDeps {
  schedules: ScheduleRepository;
  registry: Pick<JobRegistry, 'parsePayload'>;
  clock: Clock;
  /** Told when a schedule is created or edited here (the local scheduler ticks sooner). */
  onChanged?: () => void;
}

/** How many schedules a listing returns at most (schedules are configuration: a few, not millions). */
export const MAX_SCHEDULES_LISTED = 1_000;
const MAX_EDIT_ROUNDS = 5;

/**
 * Creating, reading, editing, pausing and deleting schedules. Knows nothing of HTTP; firing is the
 * Scheduler's. Every call is made on behalf of a principal and goes through src/auth/access.ts: a
 * tenant token sees only its tenant's schedules, and another tenant's answers 404 like a missing one.
 * Names stay globally unique (they are the `_id`, and appear in the jobs' `createdBy` and keys): a
 * name taken by another tenant is a 409 conflict, which tells nothing about that schedule.
 */
export class ScheduleService {
  constructor(private readonly deps: ScheduleServiceDeps) {}

  async create(principal: Principal, input: CreateScheduleInput): Promise<Schedule> {
    // The payload is validated exactly as POST /jobs validates it (404 unknown type, 422 payload_invalid).
    const payload = this.deps.registry.parsePayload(input.type, input.payload);
    const now = this.deps.clock.now();
    const state: ScheduleState = {
      name: input.name,
      type: input.type,
      payload,
      cron: input.cron.trim(),
      timeZone: input.timeZone,
      paused: input.paused,
      catchUp: input.catchUp,
      priority: input.priority,
      nextRunAt: input.paused ? null : nextOccurrence({ cron: input.cron, timeZone: input.timeZone, name: input.name }, now),
      pendingRunAt: null,
      lastRunAt: null,
      lastJobId: null,
      lastError: null,
      revision: 0,
      timingRevision: 0,
      ...ownershipOf(principal),
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.deps.schedules.insert(state))) throw new ConflictError(`a schedule named "${input.name}" already exists`);
    this.deps.onChanged?.();
    return toSchedule(state);
  }

  async list(principal: Principal): Promise<Schedule[]> {
    return (await this.deps.schedules.list({ scope: scopeOf(principal, 'schedule'), limit: MAX_SCHEDULES_LISTED })).map(toSchedule);
  }

  async get(principal: Principal, name: string): Promise<Schedule> {
    return toSchedule(await this.read(principal, name, 'read'));
  }

  /**
   * Applies a partial edit. Pausing clears nextRunAt; resuming, or changing the cron expression or
   * time zone of an active schedule, computes it afresh from now (occurrences missed while paused are
   * not caught up). A field given with its current value is no change, so it never moves nextRunAt.
   *
   * The write is conditional on what the edit was computed from (the timing it re-timed, the type it
   * validated a payload against) and on the caller's access scope, so an edit never writes values
   * derived from a stale read, nor lands on a schedule the caller may not see; a lost race is retried
   * on a fresh read. Concurrent edits of independent fields both apply; of the same field, the last
   * one wins. Only timing changes (cron, timeZone, paused, catchUp) invalidate a claim in progress: an
   * occurrence claimed while the payload is being edited fires with the payload current at its claim.
   */
  async update(principal: Principal, name: string, input: UpdateScheduleInput): Promise<Schedule> {
    for (let round = 0; round < MAX_EDIT_ROUNDS; round += 1) {
      const current = await this.read(principal, name, 'write');
      const changes: ScheduleChanges = {};
      const expected: ScheduleEditBasis = {};
      if (input.type !== undefined || input.payload !== undefined) {
        const type = input.type ?? current.type;
        changes.type = type;
        changes.payload = this.deps.registry.parsePayload(type, input.payload === undefined ? current.payload : input.payload);
        // A new payload was validated against the current type; a new type against the current payload.
        if (input.type === undefined) expected.type = current.type;
        if (input.payload === undefined) expected.revision = current.revision;
      }
      const timing = [input.cron, input.timeZone, input.paused, input.catchUp].some((value) => value !== undefined);
      // Compared with, and computed from, the current timing.
      if (timing) expected.timingRevision = current.timingRevision;
      const cron = input.cron?.trim();
      if (cron !== undefined && cron !== current.cron) changes.cron = cron;
      if (input.timeZone !== undefined && input.timeZone !== current.timeZone) changes.timeZone = input.timeZone;
      if (input.catchUp !== undefined && input.catchUp !== current.catchUp) changes.catchUp = input.catchUp;
      if (input.paused !== undefined && input.paused !== current.paused) changes.paused = input.paused;
      if (input.priority !== undefined) changes.priority = input.priority;

      const now = this.deps.clock.now();
      // A paused schedule has no next run (pausing clears it, nothing sets it while paused).
      if (changes.paused === true) changes.nextRunAt = null;
      else if (changes.paused === false || (!current.paused && (changes.cron !== undefined || changes.timeZone !== undefined))) {
        // Resumed, or re-timed while active: the next occurrence after now, under the new timing.
        changes.nextRunAt = nextOccurrence({ cron: changes.cron ?? current.cron, timeZone: changes.timeZone ?? current.timeZone, name }, now);
      }
      const scope = scopeOf(principal, 'schedule', 'write');
      const updated = await this.deps.schedules.update({ name, expected, scope, changes, now });
      if (updated) {
        this.deps.onChanged?.();
        return toSchedule(updated);
      }
    }
    throw new ConflictError(`schedule "${name}" kept changing while it was being edited; retry`);
  }

  async delete(principal: Principal, name: string): Promise<void> {
    await this.read(principal, name, 'write');
    // Conditional on the scope as well: a schedule replaced in between by another tenant's stays.
    if (!(await this.deps.schedules.delete({ name, scope: scopeOf(principal, 'schedule', 'write') }))) {
      authorize({ principal, kind: 'schedule', action: 'write', id: name, resource: null });
    }
  }

  /** The schedule, if the principal may take `action` on it; otherwise the same 404 as a missing one. */
  private async read(principal: Principal, name: string, action: Action): Promise<ScheduleState> {
    const doc = await this.deps.schedules.findByName(name);
    return authorize({ principal, kind: 'schedule', action, id: name, resource: doc });
  }
}
