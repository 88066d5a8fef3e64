import type { Principal } from '../auth/roles';
import { ConflictError, NotFoundError } from '../errors';
import type { Clock } from '../jobs/job';
import type { JobRegistry } from '../jobs/registry';
import type { ScheduleDocument } from '../storage/schedule-model';
import { toSchedule, type ScheduleChanges, type ScheduleRepository } from '../storage/schedule-repository';
import { nextOccurrence } from './cron';
import type { Schedule } from './schedule';

/** `cron` and `timeZone` are already checked with cronProblem / timeZoneProblem by the caller. */
export type CreateScheduleInput = Pick<Schedule, 'name' | 'type' | 'payload' | 'cron' | 'timeZone' | 'paused' | 'catchUp' | 'priority'>;

export type UpdateScheduleInput = Partial<Omit<CreateScheduleInput, 'name'>>;

export interface ScheduleServiceDeps {
  schedules: ScheduleRepository;
  registry: Pick<JobRegistry, 'parsePayload'>;
  clock: Clock;
}

/** How many schedules a listing returns at most (schedules are configuration: a few, not millions). */
export const MAX_SCHEDULES_LISTED = 1_000;
const MAX_EDIT_ROUNDS = 5;

/** Creating, reading, editing, pausing and deleting schedules. Knows nothing of HTTP; firing is the Scheduler's. */
export class ScheduleService {
  constructor(private readonly deps: ScheduleServiceDeps) {}

  async create(principal: Principal, input: CreateScheduleInput): Promise<Schedule> {
    // The payload is validated exactly as POST /jobs validates it (404 unknown type, 422 payload_invalid).
    const payload = this.deps.registry.parsePayload(input.type, input.payload);
    const now = this.deps.clock.now();
    const doc: ScheduleDocument = {
      _id: input.name,
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
      createdBy: principal.sub,
      tenant: principal.tenant ?? null,
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.deps.schedules.insert(doc))) throw new ConflictError(`a schedule named "${input.name}" already exists`);
    return toSchedule(doc);
  }

  async list(): Promise<Schedule[]> {
    return (await this.deps.schedules.list(MAX_SCHEDULES_LISTED)).map(toSchedule);
  }

  async get(name: string): Promise<Schedule> {
    return toSchedule(await this.read(name));
  }

  /**
   * Applies a partial edit. Pausing clears nextRunAt; resuming, or changing the cron expression or
   * time zone of an active schedule, computes it afresh from now (occurrences missed while paused are
   * not caught up). The write is conditional on the revision read, so an edit never overwrites a
   * concurrent claim or edit with stale values; a lost race is retried on a fresh read.
   */
  async update(name: string, input: UpdateScheduleInput): Promise<Schedule> {
    for (let round = 0; round < MAX_EDIT_ROUNDS; round += 1) {
      const current = await this.read(name);
      const changes: ScheduleChanges = {};
      if (input.type !== undefined || input.payload !== undefined) {
        const type = input.type ?? current.type;
        changes.type = type;
        changes.payload = this.deps.registry.parsePayload(type, input.payload === undefined ? current.payload : input.payload);
      }
      if (input.cron !== undefined) changes.cron = input.cron.trim();
      if (input.timeZone !== undefined) changes.timeZone = input.timeZone;
      if (input.catchUp !== undefined) changes.catchUp = input.catchUp;
      if (input.priority !== undefined) changes.priority = input.priority;
      if (input.paused !== undefined) changes.paused = input.paused;

      const now = this.deps.clock.now();
      if (input.paused ?? current.paused) changes.nextRunAt = null;
      else if (current.paused || input.cron !== undefined || input.timeZone !== undefined) {
        // Resumed, or re-timed while active: the next occurrence after now, under the new timing.
        changes.nextRunAt = nextOccurrence({ cron: changes.cron ?? current.cron, timeZone: changes.timeZone ?? current.timeZone, name }, now);
      }
      const updated = await this.deps.schedules.update({ name, revision: current.revision, changes, now });
      if (updated) return toSchedule(updated);
    }
    throw new ConflictError(`schedule "${name}" kept changing while it was being edited; retry`);
  }

  async delete(name: string): Promise<void> {
    if (!(await this.deps.schedules.delete(name))) throw new NotFoundError('not_found', `schedule "${name}" does not exist`);
  }

  private async read(name: string): Promise<ScheduleDocument> {
    const doc = await this.deps.schedules.findByName(name);
    if (!doc) throw new NotFoundError('not_found', `schedule "${name}" does not exist`);
    return doc;
  }
}
