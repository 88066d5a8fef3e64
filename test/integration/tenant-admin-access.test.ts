import type { Express } from 'express';
import request from 'supertest';

import { createApp } from '../../src/app';
import { scheduleRoutes } from '../../src/http/schedule-routes';
import { ScheduleService } from '../../src/schedules/schedule-service';
import type { ScheduleDocument } from '../../src/storage/schedule-model';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { HeldReadRepository } from '../helpers/held-read-repository';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * Issue 11 (A): an admin token with a `tenant` claim administers its tenant's schedules and escrows
 * only. Another tenant's answer 404 exactly like unknown ones, are left unchanged, and keep firing as
 * their own tenant; an admin without a tenant sees everything.
 */

const db = useTestDatabase();
const START = Date.parse('2030-01-01T00:00:00.000Z');
const MINUTE = 60_000;
let clock: TestClock;
let services: ApiServices;
let app: Express;

beforeEach(async () => {
  await Promise.all(['schedules', 'jobs', 'escrows'].map((name) => db.connection.collection(name).deleteMany({})));
  clock = new TestClock(START);
  const params: ApiWiringParams = { connection: db.connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, clock, reclaimIntervalMs: 0 };
  services = wireServices(params);
  app = createApp(wireApi(params, services));
});

const adminOf = (tenant: string | undefined, sub = `admin-${tenant ?? 'global'}`) => ({
  Authorization: `Bearer ${tokenFor('admin', sub, tenant === undefined ? undefined : { tenant })}`,
});
const acme = adminOf('acme');
const globex = adminOf('globex');
const globalAdmin = adminOf(undefined);

const schedule = (name: string, sleepMs: number, cron = '* * * * *'): Record<string, unknown> => ({ name, type: 'noop', payload: { sleepMs }, cron });

async function createSchedule(auth: { Authorization: string }, body: Record<string, unknown>, target: Express = app): Promise<Record<string, unknown>> {
  const res = await request(target).post('/admin/schedules').set(auth).send(body);
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Record<string, unknown>;
}

/** The error an unknown name gets, with the name put in place, to compare a hidden one against. */
async function unknownScheduleAnswer(method: 'get' | 'patch' | 'delete', name: string, auth: { Authorization: string }): Promise<unknown> {
  const probe = 'no-such-schedule';
  const res = await request(app)[method](`/admin/schedules/${probe}`).set(auth).send(method === 'patch' ? { paused: true } : undefined);
  return { status: res.status, body: JSON.parse(JSON.stringify(res.body).replaceAll(probe, name)) as unknown };
}

async function storedSchedule(name: string): Promise<ScheduleDocument | null> {
  return db.connection.collection<ScheduleDocument>('schedules').findOne({ _id: name });
}

describe("a tenant admin and another tenant's schedules", () => {
  it('lists only its own tenant\'s schedules; an admin without a tenant lists all', async () => {
    await createSchedule(acme, schedule('acme-a', 1));
    await createSchedule(globex, schedule('globex-b', 2));
    await createSchedule(globalAdmin, schedule('global-c', 3));
    const names = async (auth: { Authorization: string }) => ((await request(app).get('/admin/schedules').set(auth)).body.data as { name: string }[]).map((s) => s.name);
    expect(await names(acme)).toEqual(['acme-a']);
    expect(await names(globex)).toEqual(['globex-b']);
    expect(await names(globalAdmin)).toEqual(['acme-a', 'global-c', 'globex-b']);
  });

  it('answers GET, PATCH and DELETE with 404 not_found exactly like an unknown schedule, and leaves it unchanged', async () => {
    const created = await createSchedule(globex, schedule('globex-hourly', 7, '0 * * * *'));
    const before = await storedSchedule('globex-hourly');

    for (const method of ['get', 'patch', 'delete'] as const) {
      const res = await request(app)[method]('/admin/schedules/globex-hourly').set(acme).send(method === 'patch' ? { paused: true } : undefined);
      expect({ status: res.status, body: res.body as unknown }).toEqual(await unknownScheduleAnswer(method, 'globex-hourly', acme));
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    // The payload, the timing, the type and the priority: none of them changes for another tenant.
    for (const edit of [{ payload: { sleepMs: 666 } }, { cron: '* * * * *' }, { type: 'noop', payload: {} }, { priority: 99 }, { paused: false }, { catchUp: 'none' }]) {
      const res = await request(app).patch('/admin/schedules/globex-hourly').set(acme).send(edit);
      expect({ edit, status: res.status }).toEqual({ edit, status: 404 });
    }

    expect(await storedSchedule('globex-hourly')).toEqual(before);
    const read = await request(app).get('/admin/schedules/globex-hourly').set(globex);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created);
    // Its own tenant and an admin without a tenant reach it.
    expect((await request(app).get('/admin/schedules/globex-hourly').set(globalAdmin)).status).toBe(200);
  });

  it("keeps firing another tenant's schedule as that tenant, with its own payload", async () => {
    await createSchedule(globex, schedule('globex-minutely', 7));
    await request(app).patch('/admin/schedules/globex-minutely').set(acme).send({ payload: { sleepMs: 666 } });
    await request(app).delete('/admin/schedules/globex-minutely').set(acme);

    clock.advance(MINUTE);
    expect((await services.scheduler!.tick()).fired).toEqual(['globex-minutely@2030-01-01T00:01:00.000Z']);
    const jobs = await db.connection.collection('jobs').find({ createdBy: 'schedule:globex-minutely' }).toArray();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ tenant: 'globex', payload: { sleepMs: 7 } });
    // The tenant admin cannot read that job either.
    expect((await request(app).get(`/jobs/${String(jobs[0]!.jobId)}`).set(acme)).status).toBe(404);
  });

  it('lets a tenant admin edit and delete its own schedules, and stores who created them', async () => {
    await createSchedule(acme, schedule('acme-minutely', 1));
    expect(await storedSchedule('acme-minutely')).toMatchObject({ createdBy: 'admin-acme', createdByRole: 'admin', tenant: 'acme', timingRevision: 0 });
    const edited = await request(app).patch('/admin/schedules/acme-minutely').set(acme).send({ payload: { sleepMs: 2 } });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ payload: { sleepMs: 2 }, tenant: 'acme' });
    // An admin without a tenant administers every tenant's schedules.
    expect((await request(app).patch('/admin/schedules/acme-minutely').set(globalAdmin).send({ priority: 5 })).status).toBe(200);
    expect((await request(app).delete('/admin/schedules/acme-minutely').set(acme)).status).toBe(204);
    expect(await storedSchedule('acme-minutely')).toBeNull();
  });

  it('answers a name taken by another tenant with 409 conflict that reveals nothing of that schedule', async () => {
    await createSchedule(globex, schedule('shared-name', 7, '17 3 * * *'));
    const res = await request(app).post('/admin/schedules').set(acme).send(schedule('shared-name', 1));
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ error: { code: 'conflict', message: expect.any(String) } });
    // The same answer as a name taken within the tenant: nothing about globex, its cron or its payload.
    await createSchedule(acme, schedule('acme-taken', 1));
    const own = await request(app).post('/admin/schedules').set(acme).send(schedule('acme-taken', 1));
    expect(res.body.error.message).toBe(own.body.error.message.replace('acme-taken', 'shared-name'));
    expect(JSON.stringify(res.body)).not.toMatch(/globex|17 3|sleepMs/);
  });
});

describe('the tenant check is part of the conditional write', () => {
  let held: HeldReadRepository;
  let heldApp: Express;
  beforeEach(() => {
    held = new HeldReadRepository(db.connection);
    heldApp = createApp({
      logger: silentLogger,
      jwtSecret: TEST_JWT_SECRET,
      isDatabaseReady: async () => true,
      routers: [scheduleRoutes({ schedules: new ScheduleService({ schedules: held, registry: services.registry, clock }) })],
    });
  });

  /** Acme's schedule is read (and authorized), then replaced by globex's under the same name, then written. */
  async function replacedDuringRequest(send: () => request.Test): Promise<request.Response> {
    await createSchedule(acme, schedule('contested', 1));
    const hold = held.holdNextRead();
    const pending = send().then((res) => res);
    await hold.reached;
    expect((await request(app).delete('/admin/schedules/contested').set(acme)).status).toBe(204);
    await createSchedule(globex, schedule('contested', 2));
    hold.release();
    return pending;
  }

  it("an edit authorized on its tenant's schedule does not land on another tenant's that replaced it", async () => {
    const res = await replacedDuringRequest(() => request(heldApp).patch('/admin/schedules/contested').set(acme).send({ payload: { sleepMs: 666 } }));
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect(await storedSchedule('contested')).toMatchObject({ tenant: 'globex', payload: { sleepMs: 2 }, revision: 0 });
  });

  it("a delete authorized on its tenant's schedule does not delete another tenant's that replaced it", async () => {
    const res = await replacedDuringRequest(() => request(heldApp).delete('/admin/schedules/contested').set(acme));
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect(await storedSchedule('contested')).toMatchObject({ tenant: 'globex', payload: { sleepMs: 2 } });
  });

  it("racing clients: a tenant's edits and deletes never touch the other tenant's schedule of the same name", async () => {
    for (let round = 0; round < 8; round += 1) {
      await db.connection.collection('schedules').deleteMany({});
      await createSchedule(acme, schedule('contested', 1));
      // Acme edits and deletes its schedule while globex keeps trying to take the name.
      const acmeRequests = Array.from({ length: 12 }, (_, i) =>
        i % 4 === 3
          ? request(app).delete('/admin/schedules/contested').set(acme)
          : request(app).patch('/admin/schedules/contested').set(acme).send({ payload: { sleepMs: 1_000 + i } }),
      );
      const globexRequests = Array.from({ length: 6 }, () => request(app).post('/admin/schedules').set(globex).send(schedule('contested', 2)));
      const results = await Promise.all([...acmeRequests, ...globexRequests]);
      for (const res of results) expect([200, 201, 204, 404, 409]).toContain(res.status);
      const stored = await storedSchedule('contested');
      const globexCreated = results.slice(acmeRequests.length).some((res) => res.status === 201);
      if (globexCreated) expect(stored).toMatchObject({ tenant: 'globex', payload: { sleepMs: 2 }, revision: 0 });
      else expect(stored === null || stored.tenant === 'acme').toBe(true);
    }
  });
});

describe("a tenant admin and another tenant's escrows", () => {
  const escrow = (escrowId: string): Record<string, unknown> => ({ escrowId, batchId: 'batch_t', amount: 100, currency: 'EUR', payee: 'acct_t' });

  async function createEscrow(auth: { Authorization: string }, escrowId: string): Promise<Record<string, unknown>> {
    const res = await request(app).post('/escrows').set(auth).send(escrow(escrowId));
    if (res.status !== 201) throw new Error(`escrow create failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as Record<string, unknown>;
  }

  it("stores the creator's tenant and role, and answers another tenant's escrow by id with 404 like an unknown one", async () => {
    const created = await createEscrow(globex, 'escrow_globex_1');
    expect(created).toMatchObject({ tenant: 'globex', createdBy: 'admin-globex' });
    expect(created).not.toHaveProperty('createdByRole');
    expect(await db.connection.collection('escrows').findOne({ _id: 'escrow_globex_1' as never })).toMatchObject({ tenant: 'globex', createdByRole: 'admin' });

    const hidden = await request(app).get('/escrows/escrow_globex_1').set(acme);
    const unknown = await request(app).get('/escrows/escrow_nobody').set(acme);
    expect({ status: hidden.status, body: hidden.body as unknown }).toEqual({ status: unknown.status, body: unknown.body as unknown });
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe('escrow_not_found');

    expect((await request(app).get('/escrows/escrow_globex_1').set(globex)).body).toEqual(created);
    expect((await request(app).get('/escrows/escrow_globex_1').set(globalAdmin)).body).toEqual(created);
    // An escrow made without a tenant is no tenant's.
    await createEscrow(globalAdmin, 'escrow_global_1');
    expect((await request(app).get('/escrows/escrow_global_1').set(acme)).status).toBe(404);
  });

  it('lists escrows newest first, paginated like /admin/jobs/queue, and scoped to the tenant', async () => {
    for (const id of ['escrow_a1', 'escrow_a2', 'escrow_a3']) await createEscrow(acme, id);
    await createEscrow(globex, 'escrow_g1');
    await createEscrow(globalAdmin, 'escrow_n1');

    const first = await request(app).get('/escrows?per_page=2').set(acme);
    expect(first.status).toBe(200);
    expect(first.body.meta).toEqual({ page: 1, per_page: 2, total: 3, total_pages: 2 });
    expect(first.body.data.map((e: { escrowId: string }) => e.escrowId)).toEqual(['escrow_a3', 'escrow_a2']);
    const second = await request(app).get('/escrows').query({ page: 2, per_page: 2 }).set(acme);
    expect(second.body.data.map((e: { escrowId: string }) => e.escrowId)).toEqual(['escrow_a1']);
    expect((await request(app).get('/escrows?page=3&per_page=2').set(acme)).body).toEqual({ meta: { page: 3, per_page: 2, total: 3, total_pages: 2 }, data: [] });

    const globexList = await request(app).get('/escrows').set(globex);
    expect(globexList.body.meta).toEqual({ page: 1, per_page: 20, total: 1, total_pages: 1 });
    expect(globexList.body.data.map((e: { escrowId: string }) => e.escrowId)).toEqual(['escrow_g1']);

    const all = await request(app).get('/escrows').set(globalAdmin);
    expect(all.body.data.map((e: { escrowId: string }) => e.escrowId)).toEqual(['escrow_n1', 'escrow_g1', 'escrow_a3', 'escrow_a2', 'escrow_a1']);
    expect(all.body.data[0]).not.toHaveProperty('createdByRole');
  });

  it.each([
    ['per_page=0', 'query.per_page'],
    ['per_page=101', 'query.per_page'],
    ['page=0', 'query.page'],
    ['page=x', 'query.page'],
  ])('answers GET /escrows?%s with 422 validation_error', async (query, field) => {
    const res = await request(app).get(`/escrows?${query}`).set(globalAdmin);
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'validation_error', details: [{ field, message: expect.any(String) }] });
  });
});
