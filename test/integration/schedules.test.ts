import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Express } from 'express';
import request from 'supertest';

import { createApp } from '../../src/app';
import type { Role } from '../../src/model/principal';
import { buildOpenApiDocument } from '../../src/contract/openapi';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { thumbnailPayload } from '../helpers/jobs';
import { bearer, TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

const db = useTestDatabase();
const START = Date.parse('2030-01-01T00:00:00.000Z');
let clock: TestClock;
let services: ApiServices;
let app: Express;

beforeEach(async () => {
  await db.connection.collection('schedules').deleteMany({});
  await db.connection.collection('jobs').deleteMany({});
  clock = new TestClock(START);
  const params: ApiWiringParams = { connection: db.connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0 };
  services = wireServices(params);
  app = createApp(wireApi(params, services));
});

const admin = bearer('admin');
const iso = (ms: number): string => new Date(ms).toISOString();
const MINUTE = 60_000;

// Responses are checked against the OpenAPI document's Schedule schemas, so the two cannot drift.
const document = buildOpenApiDocument() as { components: { schemas: Record<string, object> } };
const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
addFormats(ajv);
ajv.addKeyword({ keyword: 'discriminator' });
for (const [name, schema] of Object.entries(document.components.schemas)) {
  ajv.addSchema(JSON.parse(JSON.stringify(schema).replace(/#\/components\/schemas\/([A-Za-z0-9]+)/g, '$1.json')) as object, `${name}.json`);
}
function expectSchema(name: string, body: unknown): void {
  const validate = ajv.getSchema(`${name}.json`)!;
  if (!validate(body)) throw new Error(`${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`);
}

function create(body: Record<string, unknown>, auth: { Authorization: string } = admin): request.Test {
  return request(app).post('/admin/schedules').set(auth).send(body);
}

const nightly = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'nightly-thumbnails',
  type: 'thumbnail.create',
  payload: thumbnailPayload(),
  cron: '0 3 * * *',
  ...overrides,
});

describe('POST /admin/schedules', () => {
  it('creates an active schedule with the defaults and its first run after now', async () => {
    const res = await create(nightly());
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      name: 'nightly-thumbnails',
      type: 'thumbnail.create',
      payload: thumbnailPayload(),
      cron: '0 3 * * *',
      timeZone: 'UTC',
      paused: false,
      catchUp: 'last',
      priority: null,
      nextRunAt: '2030-01-01T03:00:00.000Z',
      lastRunAt: null,
      lastJobId: null,
      lastError: null,
      createdBy: 'admin-1',
      tenant: null,
      createdAt: iso(START),
      updatedAt: iso(START),
    });
    expectSchema('Schedule', res.body);
  });

  it('reads the cron expression in the given time zone', async () => {
    const res = await create(nightly({ timeZone: 'America/New_York', catchUp: 'none', priority: 80 }));
    expect(res.status).toBe(201);
    // 03:00 in New York (EST, UTC-5) on 2030-01-01.
    expect(res.body).toMatchObject({ timeZone: 'America/New_York', catchUp: 'none', priority: 80, nextRunAt: '2030-01-01T08:00:00.000Z' });
  });

  it('creates a paused schedule without a next run', async () => {
    const res = await create(nightly({ paused: true }));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ paused: true, nextRunAt: null });
  });

  it('answers 409 conflict for a name in use', async () => {
    expect((await create(nightly())).status).toBe(201);
    const again = await create(nightly({ cron: '*/5 * * * *' }));
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('conflict');
  });

  it('validates the payload like POST /jobs: 404 for an unknown type, 422 payload_invalid for a bad payload', async () => {
    const unknown = await create(nightly({ type: 'nope.nothing' }));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('job_type_not_found');
    const bad = await create(nightly({ payload: { assetId: 'a', versionNumber: '1' } }));
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('payload_invalid');
    expect(bad.body.error.details).toEqual([{ field: 'payload.versionNumber', message: expect.any(String) }]);
    expect((await request(app).get('/admin/schedules').set(admin)).body.data).toEqual([]);
  });

  it.each([
    ['a cron field out of range', { cron: '61 * * * *' }, 'body.cron'],
    ['a cron expression that is words', { cron: 'every day at noon' }, 'body.cron'],
    ['a cron expression with three fields', { cron: '* * *' }, 'body.cron'],
    ['a cron expression with seven fields', { cron: '0 0 0 1 1 * 2030' }, 'body.cron'],
    ['an empty cron expression', { cron: '' }, 'body.cron'],
    ['a date that never exists', { cron: '0 0 30 2 *' }, 'body.cron'],
    ['an unknown predefined expression', { cron: '@fortnightly' }, 'body.cron'],
    ['a cron expression that is not a string', { cron: 5 }, 'body.cron'],
    ['an unknown time zone', { timeZone: 'Mars/Olympus_Mons' }, 'body.timeZone'],
    ['a UTC offset instead of a zone name', { timeZone: '+01:00' }, 'body.timeZone'],
    ['a name with a space', { name: 'nightly thumbnails' }, 'body.name'],
    ['a name starting with a dash', { name: '-x' }, 'body.name'],
    ['a name of 101 characters', { name: 'n'.repeat(101) }, 'body.name'],
    ['an unknown catch-up policy', { catchUp: 'all' }, 'body.catchUp'],
    ['a priority above 100', { priority: 101 }, 'body.priority'],
    ['paused as a string', { paused: 'yes' }, 'body.paused'],
    ['an unknown field', { every: '5m' }, 'body'],
  ])('answers 422 validation_error for %s', async (_name, overrides, field) => {
    const res = await create(nightly(overrides));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
    expect(res.body.error.details).toEqual([{ field, message: expect.any(String) }]);
  });

  it('names what is wrong with a time zone that is too long, not its type', async () => {
    const res = await create(nightly({ timeZone: 'x'.repeat(65) }));
    expect(res.status).toBe(422);
    expect(res.body.error.details).toContainEqual({ field: 'body.timeZone', message: expect.stringContaining('at most 64 characters') });
    expect(JSON.stringify(res.body.error.details)).not.toContain('must be a string');
  });

  it('answers 422 when required fields are missing', async () => {
    const res = await create({ type: 'thumbnail.create' });
    expect(res.status).toBe(422);
    expect(res.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['body.cron', 'body.name']);
  });

  it('accepts five fields, six with seconds, and predefined expressions', async () => {
    for (const [name, cron, next] of [
      ['five', '*/15 * * * *', '2030-01-01T00:15:00.000Z'],
      ['six', '30 */15 * * * *', '2030-01-01T00:00:30.000Z'],
      ['daily', '@daily', '2030-01-02T00:00:00.000Z'],
      ['last-day', '0 0 L * *', '2030-01-31T00:00:00.000Z'],
    ] as const) {
      const res = await create(nightly({ name, cron }));
      expect({ name, status: res.status, next: res.body.nextRunAt }).toEqual({ name, status: 201, next });
    }
  });
});

describe('GET /admin/schedules', () => {
  it('lists every schedule by name with its next and last run', async () => {
    await create(nightly({ name: 'b-hourly', cron: '0 * * * *' }));
    await create(nightly({ name: 'a-daily', cron: '@daily', paused: true }));
    const res = await request(app).get('/admin/schedules').set(admin);
    expect(res.status).toBe(200);
    expectSchema('ScheduleList', res.body);
    expect(res.body.data.map((s: { name: string; nextRunAt: string | null }) => [s.name, s.nextRunAt])).toEqual([
      ['a-daily', null],
      ['b-hourly', '2030-01-01T01:00:00.000Z'],
    ]);
  });

  it('reads one schedule by name, and 404 not_found for an unknown one', async () => {
    await create(nightly());
    const one = await request(app).get('/admin/schedules/nightly-thumbnails').set(admin);
    expect(one.status).toBe(200);
    expect(one.body.name).toBe('nightly-thumbnails');
    const missing = await request(app).get('/admin/schedules/nothing-here').set(admin);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    const invalid = await request(app).get('/admin/schedules/bad%20name').set(admin);
    expect(invalid.status).toBe(422);
  });
});

describe('PATCH /admin/schedules/:name', () => {
  const patch = (name: string, body: unknown) => request(app).patch(`/admin/schedules/${name}`).set(admin).send(body as object);

  it('pauses (no next run, nothing fires) and resumes from now without catching up', async () => {
    await create(nightly({ cron: '0 * * * *' }));
    const paused = await patch('nightly-thumbnails', { paused: true });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ paused: true, nextRunAt: null });
    expectSchema('Schedule', paused.body);

    clock.advance(150 * MINUTE); // 02:30: the 01:00 and 02:00 occurrences pass while paused
    expect(await services.scheduler!.tick()).toEqual({ fired: [], skipped: [] });
    expect(await db.connection.collection('jobs').countDocuments()).toBe(0);

    const resumed = await patch('nightly-thumbnails', { paused: false });
    expect(resumed.body).toMatchObject({ paused: false, nextRunAt: '2030-01-01T03:00:00.000Z', updatedAt: '2030-01-01T02:30:00.000Z' });
    expect(await services.scheduler!.tick()).toEqual({ fired: [], skipped: [] });
    expect(await db.connection.collection('jobs').countDocuments()).toBe(0);
  });

  it('re-times an active schedule from now, and edits the payload and priority', async () => {
    await create(nightly());
    const res = await patch('nightly-thumbnails', { cron: '30 9 * * *', timeZone: 'Asia/Tokyo', payload: thumbnailPayload({ versionNumber: 2 }), priority: 10 });
    expect(res.status).toBe(200);
    // 09:30 in Tokyo (UTC+9) is 00:30 UTC.
    expect(res.body).toMatchObject({ cron: '30 9 * * *', timeZone: 'Asia/Tokyo', nextRunAt: '2030-01-01T00:30:00.000Z', priority: 10, payload: { versionNumber: 2 } });
    const cleared = await patch('nightly-thumbnails', { priority: null, catchUp: 'none' });
    expect(cleared.body).toMatchObject({ priority: null, catchUp: 'none', nextRunAt: '2030-01-01T00:30:00.000Z' });
  });

  it('an explicit paused:false on an active schedule keeps its next run', async () => {
    await create(nightly());
    clock.advance(MINUTE);
    expect((await patch('nightly-thumbnails', { paused: false })).body.nextRunAt).toBe('2030-01-01T03:00:00.000Z');
  });

  it.each([
    ['an empty body', {}, 'body'],
    ['a bad cron expression', { cron: '* * * * * * * *' }, 'body.cron'],
    ['an unknown time zone', { timeZone: 'Europe/Atlantis' }, 'body.timeZone'],
    ['the name (it cannot change)', { name: 'other' }, 'body'],
  ])('answers 422 validation_error for %s', async (_name, body, field) => {
    await create(nightly());
    const res = await patch('nightly-thumbnails', body);
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual([{ field, message: expect.any(String) }]);
  });

  it('validates a new payload against the type (422 payload_invalid) and leaves the schedule unchanged', async () => {
    await create(nightly());
    const res = await patch('nightly-thumbnails', { payload: { assetId: 'x' } });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('payload_invalid');
    const changedType = await patch('nightly-thumbnails', { type: 'payout.execute' });
    expect(changedType.status).toBe(422);
    expect((await request(app).get('/admin/schedules/nightly-thumbnails').set(admin)).body.payload).toEqual(thumbnailPayload());
  });

  it('answers 404 for an unknown schedule', async () => {
    const res = await patch('nothing-here', { paused: true });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });
});

describe('DELETE /admin/schedules/:name', () => {
  it('deletes the schedule (204) and keeps the jobs it enqueued', async () => {
    await create(nightly({ cron: '* * * * *' }));
    clock.advance(MINUTE);
    await services.scheduler!.tick();
    const res = await request(app).delete('/admin/schedules/nightly-thumbnails').set(admin);
    expect(res.status).toBe(204);
    expect((await request(app).get('/admin/schedules/nightly-thumbnails').set(admin)).status).toBe(404);
    expect((await request(app).delete('/admin/schedules/nightly-thumbnails').set(admin)).status).toBe(404);
    expect(await db.connection.collection('jobs').countDocuments({ createdBy: 'schedule:nightly-thumbnails' })).toBe(1);
    clock.advance(MINUTE);
    expect((await services.scheduler!.tick()).fired).toEqual([]);
  });
});

describe('firing over HTTP', () => {
  it('enqueues each occurrence once, as schedule:<name>, with the payload and priority, and records the run', async () => {
    const created = await create(nightly({ cron: '*/5 * * * *', priority: 70 }));
    expect(created.body.nextRunAt).toBe('2030-01-01T00:05:00.000Z');
    clock.advance(4 * MINUTE);
    expect((await services.scheduler!.tick()).fired).toEqual([]);

    clock.advance(MINUTE + 250); // 00:05:00.250, the tick is a little late
    expect((await services.scheduler!.tick()).fired).toEqual(['nightly-thumbnails@2030-01-01T00:05:00.000Z']);
    expect((await services.scheduler!.tick()).fired).toEqual([]);

    const schedule = (await request(app).get('/admin/schedules/nightly-thumbnails').set(admin)).body;
    expect(schedule).toMatchObject({ lastRunAt: '2030-01-01T00:05:00.000Z', nextRunAt: '2030-01-01T00:10:00.000Z', lastError: null });
    const job = await request(app).get(`/jobs/${schedule.lastJobId}`).set(admin);
    expect(job.status).toBe(200);
    expect(job.body).toMatchObject({
      type: 'thumbnail.create',
      status: 'queued',
      payload: thumbnailPayload(),
      priority: 70,
      createdBy: 'schedule:nightly-thumbnails',
      idempotencyKey: 'schedule:nightly-thumbnails:2030-01-01T00:05:00.000Z',
    });
    const listed = await request(app).get('/admin/jobs/queue').query({ createdBy: 'schedule:nightly-thumbnails' }).set(admin);
    expect(listed.body.meta.total).toBe(1);
  });

  it("gives the jobs the tenant of the token that created the schedule", async () => {
    const tenantAdmin = { Authorization: `Bearer ${tokenFor('admin', 'acme-admin', { tenant: 'acme' })}` };
    const created = await create(nightly({ cron: '* * * * *' }), tenantAdmin);
    expect(created.body).toMatchObject({ createdBy: 'acme-admin', tenant: 'acme' });
    clock.advance(MINUTE);
    await services.scheduler!.tick();
    const job = await db.connection.collection('jobs').findOne({ createdBy: 'schedule:nightly-thumbnails' });
    expect(job).toMatchObject({ tenant: 'acme' });
  });

  it('skips an occurrence whose payload no longer matches its type, shows why, and keeps the schedule going', async () => {
    await create(nightly({ cron: '* * * * *' }));
    // A deploy changed the type's schema under a stored schedule.
    await db.connection.collection('schedules').updateOne({ _id: 'nightly-thumbnails' as never }, { $set: { payload: { assetId: 42 } } });
    clock.advance(MINUTE);
    expect(await services.scheduler!.tick()).toEqual({ fired: [], skipped: [] });
    const schedule = (await request(app).get('/admin/schedules/nightly-thumbnails').set(admin)).body;
    expect(schedule).toMatchObject({ lastRunAt: null, nextRunAt: '2030-01-01T00:02:00.000Z', lastError: { code: 'payload_invalid', at: iso(START + MINUTE) } });
    expect(await db.connection.collection('jobs').countDocuments()).toBe(0);

    await request(app).patch('/admin/schedules/nightly-thumbnails').set(admin).send({ payload: thumbnailPayload() });
    clock.advance(MINUTE);
    expect((await services.scheduler!.tick()).fired).toEqual(['nightly-thumbnails@2030-01-01T00:02:00.000Z']);
    expect((await request(app).get('/admin/schedules/nightly-thumbnails').set(admin)).body.lastError).toBeNull();
  });
});

describe('permissions', () => {
  const routes: [string, (auth: { Authorization: string }) => request.Test][] = [
    ['POST /admin/schedules', (auth) => create(nightly(), auth)],
    ['GET /admin/schedules', (auth) => request(app).get('/admin/schedules').set(auth)],
    ['GET /admin/schedules/:name', (auth) => request(app).get('/admin/schedules/nightly-thumbnails').set(auth)],
    ['PATCH /admin/schedules/:name', (auth) => request(app).patch('/admin/schedules/nightly-thumbnails').set(auth).send({ paused: true })],
    ['DELETE /admin/schedules/:name', (auth) => request(app).delete('/admin/schedules/nightly-thumbnails').set(auth)],
  ];

  it.each(routes)('%s answers 403 permission_denied to service, worker and user tokens, and 401 without a token', async (_route, send) => {
    await create(nightly());
    for (const role of ['service', 'worker', 'user'] as Role[]) {
      const res = await send(bearer(role));
      expect({ role, status: res.status, code: res.body.error?.code }).toEqual({ role, status: 403, code: 'permission_denied' });
    }
    expect((await send({ Authorization: '' })).status).toBe(401);
    // Nothing changed.
    const schedule = (await request(app).get('/admin/schedules/nightly-thumbnails').set(admin)).body;
    expect(schedule).toMatchObject({ paused: false, createdBy: 'admin-1' });
  });
});
