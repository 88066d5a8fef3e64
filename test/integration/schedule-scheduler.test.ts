import type { Express } from 'express';
import type { Connection } from 'mongoose';
import request from 'supertest';

import { createApp } from '../../src/app';
import type { JobService } from '../../src/jobs/job-service';
import { Scheduler } from '../../src/schedules/scheduler';
import { connectDatabase } from '../../src/storage/connection';
import { ScheduleRepository } from '../../src/storage/schedule-repository';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { thumbnailPayload } from '../helpers/jobs';
import { waitFor } from '../helpers/poll';
import { bearer, TEST_JWT_SECRET } from '../helpers/tokens';

const db = useTestDatabase();
const admin = bearer('admin');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A second connection to the same database: what a second API process has. */
let otherConnection: Connection;
beforeAll(async () => {
  otherConnection = await connectDatabase({ uri: testDatabaseUri(), dbName: db.dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary' });
});
afterAll(async () => {
  await otherConnection?.close();
});
beforeEach(async () => {
  await db.connection.collection('schedules').deleteMany({});
  await db.connection.collection('jobs').deleteMany({});
});

interface Instance {
  services: ApiServices;
  app: Express;
  scheduler: Scheduler;
}

/** One API instance (its own services, scheduler and app) on `connection`, reading `clock`. */
function apiInstance(clock: TestClock, connection: Connection = db.connection, overrides: Partial<ApiWiringParams> = {}): Instance {
  const params: ApiWiringParams = { connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0, ...overrides };
  const services = wireServices(params);
  return { services, app: createApp(wireApi(params, services)), scheduler: services.scheduler! };
}

async function createSchedule(app: Express, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await request(app)
    .post('/admin/schedules')
    .set(admin)
    .send({ type: 'thumbnail.create', payload: thumbnailPayload(), ...body });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Record<string, unknown>;
}

async function getSchedule(app: Express, name: string): Promise<Record<string, unknown>> {
  return (await request(app).get(`/admin/schedules/${name}`).set(admin)).body as Record<string, unknown>;
}

/** Every job enqueued by schedules, as `name@occurrence` from its idempotency key. */
async function scheduledOccurrences(): Promise<string[]> {
  const jobs = await db.connection.collection('jobs').find({ createdBy: /^schedule:/ }).toArray();
  return jobs.map((j) => String(j.idempotencyKey).replace(/^schedule:(.+):(\d{4}-.+)$/, '$1@$2')).sort();
}

/** A scheduler on its own connection whose enqueue is wrapped, to stand in for a process that dies mid-way. */
function crashingScheduler(clock: TestClock, jobs: JobService, crash: 'before-enqueue' | 'after-enqueue'): Scheduler {
  return new Scheduler({
    schedules: new ScheduleRepository(otherConnection),
    jobs: {
      enqueue: async (principal, input) => {
        if (crash === 'after-enqueue') await jobs.enqueue(principal, input);
        throw new Error(`the process died ${crash}`);
      },
    },
    clock,
    logger: silentLogger,
    intervalMs: 0,
    misfireGraceMs: MINUTE,
  });
}

/** Counts the claims it wins: exactly one per (schedule, occurrence) however many instances race. */
class CountingRepository extends ScheduleRepository {
  wins = 0;
  attempts = 0;

  override async claim(params: Parameters<ScheduleRepository['claim']>[0]): ReturnType<ScheduleRepository['claim']> {
    this.attempts += 1;
    const won = await super.claim(params);
    if (won) this.wins += 1;
    return won;
  }
}

describe('two API instances', () => {
  it('firing the same occurrences concurrently create exactly one job per occurrence', async () => {
    const clock = new TestClock();
    const a = apiInstance(clock);
    const b = apiInstance(clock, otherConnection);
    const repositories = [new CountingRepository(db.connection), new CountingRepository(otherConnection)];
    const [schedulerA, schedulerB] = [a, b].map(
      (instance, i) => new Scheduler({ schedules: repositories[i]!, jobs: instance.services.jobs, clock, logger: silentLogger, intervalMs: 0, misfireGraceMs: MINUTE }),
    );
    const names = Array.from({ length: 12 }, (_, i) => `every-minute-${String(i).padStart(2, '0')}`);
    for (const name of names) await createSchedule(a.app, { name, cron: '* * * * *' });

    const expected: string[] = [];
    for (let minute = 1; minute <= 5; minute += 1) {
      clock.advance(MINUTE);
      const at = clock.now().toISOString();
      expected.push(...names.map((n) => `${n}@${at}`));
      // Both instances tick at once, several times, as their timers would.
      const reports = await Promise.all([schedulerA!.tick(), schedulerB!.tick(), schedulerA!.tick(), schedulerB!.tick()]);
      const firedNow = reports.flatMap((r) => r.fired);
      expect(new Set(firedNow)).toEqual(new Set(names.map((n) => `${n}@${at}`)));
    }
    expect(await scheduledOccurrences()).toEqual(expected.sort());
    // The compare-and-set let exactly one claim win per occurrence, whichever instance made it.
    expect(repositories[0]!.wins + repositories[1]!.wins).toBe(expected.length);
    // ...and the instances really raced: some claims read the same revision and lost.
    expect(repositories[0]!.attempts + repositories[1]!.attempts).toBeGreaterThan(expected.length);
    for (const name of names) {
      expect(await getSchedule(b.app, name)).toMatchObject({ lastRunAt: clock.now().toISOString(), nextRunAt: new Date(clock.now().getTime() + MINUTE).toISOString() });
    }
  });

  it('a read that hands back a schedule already moved past now (updated after it matched) fires nothing early', async () => {
    const clock = new TestClock();
    const a = apiInstance(clock);
    await createSchedule(a.app, { name: 'every-minute', cron: '* * * * *' });
    clock.advance(MINUTE);
    expect((await a.scheduler.tick()).fired).toEqual(['every-minute@2030-01-01T00:01:00.000Z']);

    // The read as a racing instance can get it: the document as another instance's claim left it
    // (next run 00:02), returned to a query for what is due at 00:01.
    const lateReads = new (class extends ScheduleRepository {
      override findDue(params: { now: Date; limit: number }) {
        return super.findDue({ ...params, now: new Date(params.now.getTime() + MINUTE) });
      }
    })(db.connection);
    const racing = new Scheduler({ schedules: lateReads, jobs: a.services.jobs, clock, logger: silentLogger, intervalMs: 0, misfireGraceMs: MINUTE });
    expect(await racing.tick()).toEqual({ fired: [], skipped: [] });
    expect(await scheduledOccurrences()).toEqual(['every-minute@2030-01-01T00:01:00.000Z']);
    expect(await getSchedule(a.app, 'every-minute')).toMatchObject({ nextRunAt: '2030-01-01T00:02:00.000Z', lastRunAt: '2030-01-01T00:01:00.000Z' });
  });

  it('when one dies between claiming an occurrence and enqueueing it, the other delivers it: one job', async () => {
    const clock = new TestClock();
    const a = apiInstance(clock);
    await createSchedule(a.app, { name: 'hourly', cron: '0 * * * *' });
    clock.advance(HOUR);

    const dying = crashingScheduler(clock, a.services.jobs, 'before-enqueue');
    expect(await dying.tick()).toEqual({ fired: [], skipped: [] });
    // The claim happened (nextRunAt moved on), the job does not exist yet.
    expect(await getSchedule(a.app, 'hourly')).toMatchObject({ nextRunAt: '2030-01-01T02:00:00.000Z', lastRunAt: null });
    expect(await scheduledOccurrences()).toEqual([]);

    expect((await a.scheduler.tick()).fired).toEqual(['hourly@2030-01-01T01:00:00.000Z']);
    expect(await a.scheduler.tick()).toEqual({ fired: [], skipped: [] });
    expect(await scheduledOccurrences()).toEqual(['hourly@2030-01-01T01:00:00.000Z']);
    expect(await getSchedule(a.app, 'hourly')).toMatchObject({ lastRunAt: '2030-01-01T01:00:00.000Z', nextRunAt: '2030-01-01T02:00:00.000Z' });
  });

  it('when one dies after enqueueing but before recording it, the re-delivery finds the same job: one job', async () => {
    const clock = new TestClock();
    const a = apiInstance(clock);
    await createSchedule(a.app, { name: 'hourly', cron: '0 * * * *' });
    clock.advance(HOUR);

    await crashingScheduler(clock, a.services.jobs, 'after-enqueue').tick();
    const [job] = await db.connection.collection('jobs').find({}).toArray();
    expect(job).toBeDefined();

    // Both instances recover the pending occurrence at once.
    const b = apiInstance(clock, otherConnection);
    await Promise.all([a.scheduler.tick(), b.scheduler.tick()]);
    expect(await scheduledOccurrences()).toEqual(['hourly@2030-01-01T01:00:00.000Z']);
    expect(await getSchedule(a.app, 'hourly')).toMatchObject({ lastJobId: job!._id, lastRunAt: '2030-01-01T01:00:00.000Z' });
  });

  it('a running scheduler (start/stop) fires due occurrences on its own', async () => {
    const clock = new TestClock();
    const a = apiInstance(clock, db.connection, { scheduler: { intervalMs: 20 } });
    await createSchedule(a.app, { name: 'every-minute', cron: '* * * * *' });
    clock.advance(MINUTE);
    a.scheduler.start();
    try {
      await waitFor(async () => ((await scheduledOccurrences()).length === 1 ? true : undefined), { what: 'the started scheduler to fire', timeoutMs: 5_000 });
    } finally {
      await a.scheduler.stop();
    }
    expect(await scheduledOccurrences()).toEqual(['every-minute@2030-01-01T00:01:00.000Z']);
  });
});

describe('a restart that missed occurrences', () => {
  it('catch-up none skips them all and waits for the next one; catch-up last enqueues the most recent one once', async () => {
    const clock = new TestClock();
    const before = apiInstance(clock);
    await createSchedule(before.app, { name: 'hourly-none', cron: '0 * * * *', catchUp: 'none' });
    await createSchedule(before.app, { name: 'hourly-last', cron: '0 * * * *', catchUp: 'last' });

    // The API is down from 00:00 to 04:30: the 01:00-04:00 occurrences pass unseen.
    clock.advance(4 * HOUR + 30 * MINUTE);
    const after = apiInstance(clock);
    expect(await after.scheduler.tick()).toEqual({ fired: ['hourly-last@2030-01-01T04:00:00.000Z'], skipped: ['hourly-none@2030-01-01T01:00:00.000Z'] });
    expect(await after.scheduler.tick()).toEqual({ fired: [], skipped: [] });
    expect(await scheduledOccurrences()).toEqual(['hourly-last@2030-01-01T04:00:00.000Z']);
    expect(await getSchedule(after.app, 'hourly-none')).toMatchObject({ lastRunAt: null, nextRunAt: '2030-01-01T05:00:00.000Z' });
    expect(await getSchedule(after.app, 'hourly-last')).toMatchObject({ lastRunAt: '2030-01-01T04:00:00.000Z', nextRunAt: '2030-01-01T05:00:00.000Z' });

    // Back to normal: both fire the next occurrence on time.
    clock.advance(30 * MINUTE + 2_000);
    expect((await after.scheduler.tick()).fired.sort()).toEqual(['hourly-last@2030-01-01T05:00:00.000Z', 'hourly-none@2030-01-01T05:00:00.000Z']);
  });

  it('an occurrence only a little late (within the misfire grace) fires under catch-up none too', async () => {
    const clock = new TestClock();
    const before = apiInstance(clock);
    await createSchedule(before.app, { name: 'hourly-none', cron: '0 * * * *', catchUp: 'none' });
    clock.advance(HOUR + 45_000); // restarted 45 s after 01:00, within the 60 s grace
    const after = apiInstance(clock, db.connection, { scheduler: { misfireGraceMs: MINUTE } });
    expect((await after.scheduler.tick()).fired).toEqual(['hourly-none@2030-01-01T01:00:00.000Z']);

    clock.advance(HOUR + 30_000); // 02:01:15: 75 s late, beyond the grace
    expect(await after.scheduler.tick()).toEqual({ fired: [], skipped: ['hourly-none@2030-01-01T02:00:00.000Z'] });
    expect(await scheduledOccurrences()).toEqual(['hourly-none@2030-01-01T01:00:00.000Z']);
  });

  it('two instances restarting together after an outage still enqueue the caught-up occurrence once', async () => {
    const clock = new TestClock();
    const a = apiInstance(clock);
    await createSchedule(a.app, { name: 'daily', cron: '0 3 * * *', catchUp: 'last' });
    clock.advance(3 * 24 * HOUR);
    const b = apiInstance(clock, otherConnection);
    await Promise.all([a.scheduler.tick(), b.scheduler.tick()]);
    expect(await scheduledOccurrences()).toEqual(['daily@2030-01-03T03:00:00.000Z']);
  });
});

describe('time zones and DST (Europe/Berlin)', () => {
  /** Ticks at each next run until `until`, returning the occurrences fired, as ISO instants. */
  async function runUntil(instance: Instance, clock: TestClock, name: string, until: string): Promise<string[]> {
    const fired: string[] = [];
    for (;;) {
      const next = (await getSchedule(instance.app, name)).nextRunAt as string;
      if (Date.parse(next) > Date.parse(until)) return fired;
      clock.advance(Date.parse(next) - clock.now().getTime());
      fired.push(...(await instance.scheduler.tick()).fired.map((f) => f.split('@')[1]!));
    }
  }

  it('a daily 09:00 run moves from 08:00Z to 07:00Z across the spring transition', async () => {
    const clock = new TestClock(Date.parse('2030-03-29T12:00:00Z'));
    const a = apiInstance(clock);
    await createSchedule(a.app, { name: 'morning', cron: '0 9 * * *', timeZone: 'Europe/Berlin' });
    expect(await runUntil(a, clock, 'morning', '2030-04-01T12:00:00Z')).toEqual([
      '2030-03-30T08:00:00.000Z',
      '2030-03-31T07:00:00.000Z',
      '2030-04-01T07:00:00.000Z',
    ]);
  });

  it('a daily 02:30 runs once on the spring-forward day (02:30 does not exist: at 03:30 CEST) and once on the fall-back day (02:30 happens twice)', async () => {
    const clock = new TestClock(Date.parse('2030-03-30T12:00:00Z'));
    const a = apiInstance(clock);
    await createSchedule(a.app, { name: 'night', cron: '30 2 * * *', timeZone: 'Europe/Berlin' });
    expect(await runUntil(a, clock, 'night', '2030-04-01T12:00:00Z')).toEqual(['2030-03-31T01:30:00.000Z', '2030-04-01T00:30:00.000Z']);

    clock.advance(Date.parse('2030-10-26T12:00:00Z') - clock.now().getTime());
    await request(a.app).patch('/admin/schedules/night').set(admin).send({ paused: true });
    await request(a.app).patch('/admin/schedules/night').set(admin).send({ paused: false });
    expect(await runUntil(a, clock, 'night', '2030-10-28T12:00:00Z')).toEqual(['2030-10-27T00:30:00.000Z', '2030-10-28T01:30:00.000Z']);
    // The repeated 02:30 (01:30Z on the fall-back day) came and went without a job.
    expect((await scheduledOccurrences()).filter((o) => o.includes('2030-10-27T01:30'))).toEqual([]);
  });

  it('an hourly schedule runs every real hour through the fall-back night (02:00 local twice)', async () => {
    const clock = new TestClock(Date.parse('2030-10-26T23:30:00Z'));
    const a = apiInstance(clock);
    await createSchedule(a.app, { name: 'hourly', cron: '0 * * * *', timeZone: 'Europe/Berlin' });
    expect(await runUntil(a, clock, 'hourly', '2030-10-27T03:00:00Z')).toEqual([
      '2030-10-27T00:00:00.000Z', // 02:00 CEST
      '2030-10-27T01:00:00.000Z', // 02:00 CET
      '2030-10-27T02:00:00.000Z',
      '2030-10-27T03:00:00.000Z',
    ]);
  });

  it('every instance computes the same instants for a hashed (H) field', async () => {
    const clock = new TestClock();
    const a = apiInstance(clock);
    const created = await createSchedule(a.app, { name: 'spread-out', cron: 'H * * * *' });
    const b = apiInstance(clock, otherConnection);
    await request(b.app).patch('/admin/schedules/spread-out').set(admin).send({ paused: true });
    const resumed = (await request(b.app).patch('/admin/schedules/spread-out').set(admin).send({ paused: false })).body;
    expect(resumed.nextRunAt).toBe(created.nextRunAt);
  });
});
