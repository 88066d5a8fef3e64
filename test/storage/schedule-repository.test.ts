import type { ScheduleState } from '../../src/model/schedule';
import { ScheduleRepository } from '../../src/storage/schedule-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { clearCollections, useSecondConnection } from '../helpers/storage';

/** The contract of ScheduleRepository: conditional edits, scoped access and the claim, against the real test database. */
const db = useTestDatabase();
const other = useSecondConnection(db);
let schedules: ScheduleRepository;
let clock: TestClock;

beforeAll(() => {
  schedules = new ScheduleRepository(db.connection);
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['schedules']);
});

const MINUTE = 60_000;

function minutesFrom(base: Date, n: number): Date {
  return new Date(base.getTime() + n * MINUTE);
}

/** A new active schedule as the service creates it: every minute, due a minute from now. */
function scheduleState(overrides: Partial<ScheduleState> = {}): ScheduleState {
  const now = clock.now();
  return {
    name: 'nightly',
    type: 'thumbnail.create',
    payload: { assetId: 'asset_0123456789abcdef01234567', versionNumber: 1 },
    cron: '* * * * *',
    timeZone: 'UTC',
    paused: false,
    catchUp: 'none',
    priority: null,
    nextRunAt: minutesFrom(now, 1),
    pendingRunAt: null,
    lastRunAt: null,
    lastJobId: null,
    lastError: null,
    revision: 0,
    timingRevision: 0,
    createdBy: 'service-1',
    createdByRole: 'service',
    tenant: null,
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}

async function inserted(overrides: Partial<ScheduleState> = {}): Promise<ScheduleState> {
  const state = scheduleState(overrides);
  if (!(await schedules.insert(state))) throw new Error(`schedule ${state.name} exists`);
  return state;
}

async function stored(name: string): Promise<ScheduleState> {
  const state = await schedules.findByName(name);
  if (!state) throw new Error(`schedule ${name} is gone`);
  return state;
}

function rawSchedules() {
  return db.connection.collection<{ _id: string }>('schedules');
}

/** A schedule document as written before timingRevision and createdByRole were stored. */
async function insertLegacy(name: string, fields: Record<string, unknown> = {}): Promise<void> {
  const { name: _name, timingRevision: _t, createdByRole: _r, ...rest } = scheduleState({ name });
  await rawSchedules().insertOne({ _id: name, ...rest, ...fields });
}

describe('insert / findByName', () => {
  it('stores a schedule and reads it back as the same ScheduleState', async () => {
    const state = await inserted({ tenant: 'acme', priority: 80, payload: { nested: { list: [1, 2] } } });
    expect(await schedules.findByName('nightly')).toEqual(state);
    expect(await schedules.findByName('missing')).toBeNull();
  });

  it('refuses a name that is taken (false), leaving the first schedule as it was', async () => {
    const first = await inserted();
    expect(await schedules.insert(scheduleState({ cron: '0 0 * * *', tenant: 'other' }))).toBe(false);
    expect(await stored('nightly')).toEqual(first);
  });

  it('reads a schedule stored before timingRevision and createdByRole as null', async () => {
    await insertLegacy('legacy');
    expect(await stored('legacy')).toMatchObject({ name: 'legacy', timingRevision: null, createdByRole: null });
  });
});

describe('list', () => {
  beforeEach(async () => {
    await inserted({ name: 'c-acme', tenant: 'acme', createdBy: 'user-1', createdByRole: 'user' });
    await inserted({ name: 'a-none', tenant: null, createdBy: 'service-1', createdByRole: 'service' });
    await inserted({ name: 'b-acme', tenant: 'acme', createdBy: 'service-1', createdByRole: 'service' });
    await inserted({ name: 'd-globex', tenant: 'globex', createdBy: 'user-1', createdByRole: 'user' });
    // Written before tenants and roles were stored.
    await insertLegacy('e-legacy');
    await rawSchedules().updateOne({ _id: 'e-legacy' }, { $unset: { tenant: '' } });
  });

  const names = async (scope: Parameters<ScheduleRepository['list']>[0]['scope'], limit = 100): Promise<string[]> =>
    (await schedules.list({ scope, limit })).map((s) => s.name);

  it('lists every schedule by name for an unrestricted scope, up to the limit', async () => {
    expect(await names({})).toEqual(['a-none', 'b-acme', 'c-acme', 'd-globex', 'e-legacy']);
    expect(await names({}, 2)).toEqual(['a-none', 'b-acme']);
  });

  it('keeps a tenant scope to that tenant, and the null tenant to schedules without one (legacy ones included)', async () => {
    expect(await names({ tenant: 'acme' })).toEqual(['b-acme', 'c-acme']);
    expect(await names({ tenant: null })).toEqual(['a-none', 'e-legacy']);
  });

  it('keeps an owner scope to the creator and role; a service owns the schedules stored without a role', async () => {
    expect(await names({ owner: { createdBy: 'user-1', createdByRole: 'user' } })).toEqual(['c-acme', 'd-globex']);
    expect(await names({ owner: { createdBy: 'service-1', createdByRole: 'service' } })).toEqual(['a-none', 'b-acme', 'e-legacy']);
    expect(await names({ owner: { createdBy: 'service-1', createdByRole: 'admin' } })).toEqual([]);
    expect(await names({ tenant: 'acme', owner: { createdBy: 'user-1', createdByRole: 'user' } })).toEqual(['c-acme']);
  });
});

describe('update', () => {
  it('applies an edit with no basis: revision bumped, timingRevision kept for a payload edit', async () => {
    await inserted();
    clock.advance(1_000);
    const now = clock.now();
    const updated = await schedules.update({ name: 'nightly', expected: {}, scope: {}, changes: { payload: { v: 2 }, priority: 10 }, now });
    expect(updated).toMatchObject({ payload: { v: 2 }, priority: 10, revision: 1, timingRevision: 0, updatedAt: now });
    expect(await stored('nightly')).toEqual(updated);
  });

  it.each([
    ['cron', { cron: '0 * * * *' }],
    ['timeZone', { timeZone: 'Europe/Berlin' }],
    ['paused', { paused: true, nextRunAt: null }],
    ['catchUp', { catchUp: 'last' as const }],
    ['nextRunAt', { nextRunAt: new Date('2030-02-01T00:00:00.000Z') }],
  ])('bumps timingRevision for an edit of the timing (%s)', async (_field, changes) => {
    await inserted();
    const updated = await schedules.update({ name: 'nightly', expected: { timingRevision: 0 }, scope: {}, changes, now: clock.now() });
    expect(updated).toMatchObject({ ...changes, revision: 1, timingRevision: 1 });
  });

  it('is conditional on the edit basis: revision, timingRevision, type', async () => {
    const state = await inserted();
    const now = clock.now();
    const edit = (expected: Parameters<ScheduleRepository['update']>[0]['expected']) =>
      schedules.update({ name: 'nightly', expected, scope: {}, changes: { payload: { stale: true } }, now });

    expect(await edit({ revision: 1 })).toBeNull();
    expect(await edit({ timingRevision: 1 })).toBeNull();
    expect(await edit({ timingRevision: null })).toBeNull();
    expect(await edit({ type: 'payout.execute' })).toBeNull();
    expect(await stored('nightly')).toEqual(state);

    expect(await edit({ revision: 0, timingRevision: 0, type: 'thumbnail.create' })).toMatchObject({ payload: { stale: true }, revision: 1 });
    // The edit moved the revision: an edit computed from the first read now misses.
    expect(await edit({ revision: 0 })).toBeNull();
    // A payload edit leaves the timing basis valid.
    expect(await edit({ timingRevision: 0 })).toMatchObject({ revision: 2 });
  });

  it('is conditional on the scope: a schedule outside it is never written', async () => {
    const state = await inserted({ tenant: 'acme', createdBy: 'user-1', createdByRole: 'user' });
    const now = clock.now();
    const edit = (scope: Parameters<ScheduleRepository['update']>[0]['scope']) => schedules.update({ name: 'nightly', expected: {}, scope, changes: { priority: 1 }, now });

    expect(await edit({ tenant: 'globex' })).toBeNull();
    expect(await edit({ tenant: null })).toBeNull();
    expect(await edit({ owner: { createdBy: 'user-2', createdByRole: 'user' } })).toBeNull();
    expect(await edit({ owner: { createdBy: 'user-1', createdByRole: 'admin' } })).toBeNull();
    expect(await stored('nightly')).toEqual(state);
    expect(await edit({ tenant: 'acme', owner: { createdBy: 'user-1', createdByRole: 'user' } })).toMatchObject({ priority: 1 });
    expect(await schedules.update({ name: 'missing', expected: {}, scope: {}, changes: { priority: 1 }, now })).toBeNull();
  });

  it('edits a legacy schedule on the null timing basis; a timing edit gives it timingRevision 1', async () => {
    await insertLegacy('legacy');
    const now = clock.now();
    expect(await schedules.update({ name: 'legacy', expected: { timingRevision: 0 }, scope: {}, changes: { cron: '5 * * * *' }, now })).toBeNull();
    const updated = await schedules.update({ name: 'legacy', expected: { timingRevision: null }, scope: {}, changes: { cron: '5 * * * *' }, now });
    expect(updated).toMatchObject({ cron: '5 * * * *', timingRevision: 1 });
    // A payload edit of a legacy schedule leaves timingRevision absent.
    await insertLegacy('legacy-2');
    expect(await schedules.update({ name: 'legacy-2', expected: { timingRevision: null }, scope: {}, changes: { payload: { v: 3 } }, now })).toMatchObject({ timingRevision: null });
  });
});

describe('delete', () => {
  it('deletes within the scope only; false when there is none such', async () => {
    await inserted({ tenant: 'acme' });
    expect(await schedules.delete({ name: 'nightly', scope: { tenant: 'globex' } })).toBe(false);
    expect(await schedules.findByName('nightly')).not.toBeNull();
    expect(await schedules.delete({ name: 'nightly', scope: { tenant: 'acme' } })).toBe(true);
    expect(await schedules.findByName('nightly')).toBeNull();
    expect(await schedules.delete({ name: 'nightly', scope: {} })).toBe(false);
  });
});

describe('findDue', () => {
  it('returns what a tick has to do: active schedules due at now (inclusive) with nothing pending, and undelivered occurrences; earliest nextRunAt first', async () => {
    const now = clock.now();
    await inserted({ name: 'later-due', nextRunAt: minutesFrom(now, -1) });
    await inserted({ name: 'earliest-due', nextRunAt: minutesFrom(now, -5) });
    await inserted({ name: 'due-now', nextRunAt: now });
    await inserted({ name: 'future', nextRunAt: new Date(now.getTime() + 1) });
    await inserted({ name: 'paused', paused: true, nextRunAt: minutesFrom(now, -10) });
    await inserted({ name: 'paused-no-next', paused: true, nextRunAt: null });
    // Claimed (nextRunAt moved on), not delivered yet; and one paused since its claim.
    await inserted({ name: 'pending', nextRunAt: minutesFrom(now, 1), pendingRunAt: minutesFrom(now, -1) });
    await inserted({ name: 'pending-paused', paused: true, nextRunAt: minutesFrom(now, 2), pendingRunAt: minutesFrom(now, -2) });

    const work = await schedules.findDue({ now, limit: 10 });
    expect(work.map((s) => s.name)).toEqual(['earliest-due', 'later-due', 'due-now', 'pending', 'pending-paused']);
    expect(work.filter((s) => s.pendingRunAt !== null).map((s) => s.name)).toEqual(['pending', 'pending-paused']);
    expect((await schedules.findDue({ now, limit: 2 })).map((s) => s.name)).toEqual(['earliest-due', 'later-due']);
    expect(await schedules.findDue({ now: minutesFrom(now, -20), limit: 10 })).toEqual(work.filter((s) => s.pendingRunAt !== null));
  });
});

describe('claim', () => {
  function claimOf(state: ScheduleState, params: { fire?: Date | null; now?: Date } = {}) {
    const dueAt = state.nextRunAt!;
    return {
      name: state.name,
      timingRevision: state.timingRevision,
      dueAt,
      fire: params.fire === undefined ? dueAt : params.fire,
      nextRunAt: minutesFrom(dueAt, 1),
      // A scheduler claims an occurrence once it is due.
      now: params.now ?? new Date(Math.max(clock.now().getTime(), dueAt.getTime())),
    };
  }

  it('moves nextRunAt past the occurrence and records it as pending, in one update; a repeat loses', async () => {
    const state = await inserted();
    clock.advance(MINUTE);
    const claim = claimOf(state);
    const claimed = await schedules.claim(claim);

    expect(claimed).toMatchObject({ nextRunAt: claim.nextRunAt, pendingRunAt: claim.dueAt, revision: 1, timingRevision: 0, updatedAt: clock.now() });
    expect(await stored('nightly')).toEqual(claimed);
    expect(await schedules.claim(claim)).toBeNull();
    expect((await schedules.findDue({ now: clock.now(), limit: 10 })).map((s) => [s.name, s.pendingRunAt])).toEqual([['nightly', claim.dueAt]]);
  });

  it('with nothing to fire (missed occurrences skipped), only moves nextRunAt', async () => {
    const state = await inserted();
    const claimed = await schedules.claim(claimOf(state, { fire: null }));
    expect(claimed).toMatchObject({ pendingRunAt: null, nextRunAt: minutesFrom(state.nextRunAt!, 1) });
  });

  it('loses after an edit of the timing, but not after edits of payload, type or priority (and returns them)', async () => {
    const a = await inserted({ name: 'payload-edited' });
    const b = await inserted({ name: 'timing-edited' });
    const now = clock.now();
    await schedules.update({ name: a.name, expected: {}, scope: {}, changes: { type: 'payout.execute', payload: { v: 2 }, priority: 99 }, now });
    await schedules.update({ name: b.name, expected: {}, scope: {}, changes: { catchUp: 'last' }, now });

    expect(await schedules.claim(claimOf(a))).toMatchObject({ type: 'payout.execute', payload: { v: 2 }, priority: 99, pendingRunAt: a.nextRunAt });
    expect(await schedules.claim(claimOf(b))).toBeNull();
    expect((await stored(b.name)).pendingRunAt).toBeNull();
  });

  it('is conditional on the due nextRunAt read, on being active, and on nothing pending', async () => {
    const moved = await inserted({ name: 'moved' });
    const paused = await inserted({ name: 'paused' });
    const pending = await inserted({ name: 'pending', pendingRunAt: minutesFrom(clock.now(), -1) });
    const now = clock.now();
    await rawSchedules().updateOne({ _id: 'moved' }, { $set: { nextRunAt: minutesFrom(now, 2) } });
    await rawSchedules().updateOne({ _id: 'paused' }, { $set: { paused: true } });

    expect(await schedules.claim(claimOf(moved))).toBeNull();
    expect(await schedules.claim(claimOf(paused))).toBeNull();
    expect(await schedules.claim(claimOf(pending))).toBeNull();
    expect((await stored('pending')).pendingRunAt).toEqual(pending.pendingRunAt);
    expect(await schedules.claim({ ...claimOf(moved), name: 'missing' })).toBeNull();
  });

  it('is never won before the occurrence is due, whatever the read said', async () => {
    const state = await inserted();
    expect(await schedules.claim(claimOf(state, { now: new Date(state.nextRunAt!.getTime() - 1) }))).toBeNull();
    expect(await stored('nightly')).toEqual(state);
    expect(await schedules.claim(claimOf(state, { now: state.nextRunAt! }))).toMatchObject({ pendingRunAt: state.nextRunAt });
  });

  it('matches a legacy schedule (no timingRevision) on the null timing', async () => {
    await insertLegacy('legacy');
    const state = await stored('legacy');
    expect(await schedules.claim({ ...claimOf(state), timingRevision: 0 })).toBeNull();
    expect(await schedules.claim(claimOf(state))).toMatchObject({ pendingRunAt: state.nextRunAt, timingRevision: null });
  });

  it('gives an occurrence to exactly one of racing claims on two connections', async () => {
    const theirs = new ScheduleRepository(other.connection);
    const states = await Promise.all(['s1', 's2', 's3'].map((name) => inserted({ name })));
    for (const state of states) {
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? schedules : theirs).claim(claimOf(state))));
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect(await stored(state.name)).toMatchObject({ revision: 1, pendingRunAt: state.nextRunAt });
    }
  });
});

describe('settlePending', () => {
  async function pendingSchedule(): Promise<{ state: ScheduleState; occurrence: Date }> {
    const state = await inserted();
    const occurrence = state.nextRunAt!;
    clock.advance(MINUTE);
    const claimed = await schedules.claim({ name: state.name, timingRevision: 0, dueAt: occurrence, fire: occurrence, nextRunAt: minutesFrom(occurrence, 1), now: clock.now() });
    if (!claimed) throw new Error('the claim lost');
    return { state, occurrence };
  }

  it('clears a delivered occurrence with its job id; a repeat (or another occurrence) is a no-op', async () => {
    const { occurrence } = await pendingSchedule();
    clock.advance(1_000);
    const now = clock.now();
    await rawSchedules().updateOne({ _id: 'nightly' }, { $set: { lastError: { message: 'earlier', at: now } } });

    expect(await schedules.settlePending({ name: 'nightly', occurrence: minutesFrom(occurrence, 1), outcome: { jobId: 'job_x' }, now })).toBe(false);
    expect(await schedules.settlePending({ name: 'nightly', occurrence, outcome: { jobId: 'job_1' }, now })).toBe(true);
    expect(await stored('nightly')).toMatchObject({ pendingRunAt: null, lastRunAt: occurrence, lastJobId: 'job_1', lastError: null, updatedAt: now });
    expect(await schedules.settlePending({ name: 'nightly', occurrence, outcome: { jobId: 'job_2' }, now })).toBe(false);
    expect((await stored('nightly')).lastJobId).toBe('job_1');
  });

  it('clears an undeliverable occurrence with the error, keeping the last run', async () => {
    const { occurrence } = await pendingSchedule();
    const now = clock.now();
    const error = { code: 'payload_invalid', message: 'the payload no longer matches the type', at: now };
    expect(await schedules.settlePending({ name: 'nightly', occurrence, outcome: { error }, now })).toBe(true);
    expect(await stored('nightly')).toMatchObject({ pendingRunAt: null, lastRunAt: null, lastJobId: null, lastError: error });
    // Nothing pending any more: the next occurrence can be claimed.
    expect((await schedules.findDue({ now: minutesFrom(occurrence, 1), limit: 10 })).map((s) => s.name)).toEqual(['nightly']);
  });
});
