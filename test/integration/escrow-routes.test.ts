import request from 'supertest';
import type { Express } from 'express';

import { createApp } from '../../src/app';
import { escrowRoutes } from '../../src/http/escrow-routes';
import { createPayouts, ensurePayoutIndexes } from '../../src/payouts/create-payouts';
import { silentLogger } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { bearer, TEST_JWT_SECRET } from '../helpers/tokens';

const db = useTestDatabase();
let app: Express;
const admin = bearer('admin', 'alice');

beforeAll(async () => {
  await ensurePayoutIndexes(db.connection);
  const { payouts } = createPayouts({ connection: db.connection });
  app = createApp({ logger: silentLogger, jwtSecret: TEST_JWT_SECRET, isDatabaseReady: async () => true, routers: [escrowRoutes({ payouts })] });
});

const validEscrow = { batchId: 'batch_1', amount: 2_500, currency: 'EUR', payee: 'acct_123' };

describe('POST /escrows', () => {
  it('creates a held escrow with a generated id and answers 201', async () => {
    const res = await request(app).post('/escrows').set(admin).send(validEscrow);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      escrowId: expect.stringMatching(/^escrow_[0-9a-f]+$/),
      ...validEscrow,
      status: 'held',
      transferId: null,
      paidAt: null,
      createdBy: 'alice',
      tenant: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const read = await request(app).get(`/escrows/${res.body.escrowId as string}`).set(admin);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(res.body);
  });

  it('keeps a caller-chosen escrow id', async () => {
    const res = await request(app)
      .post('/escrows')
      .set(admin)
      .send({ ...validEscrow, escrowId: 'escrow_chosen_1' });
    expect(res.status).toBe(201);
    expect(res.body.escrowId).toBe('escrow_chosen_1');
  });

  it('answers a second escrow with the same id with 409 conflict and leaves the first untouched', async () => {
    const first = await request(app)
      .post('/escrows')
      .set(admin)
      .send({ ...validEscrow, escrowId: 'escrow_dup' });
    expect(first.status).toBe(201);
    const second = await request(app)
      .post('/escrows')
      .set(admin)
      .send({ ...validEscrow, escrowId: 'escrow_dup', amount: 99 });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('conflict');
    const read = await request(app).get('/escrows/escrow_dup').set(admin);
    expect(read.body.amount).toBe(validEscrow.amount);
  });

  it('creates exactly one escrow when 10 requests race for the same id', async () => {
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        request(app)
          .post('/escrows')
          .set(admin)
          .send({ ...validEscrow, escrowId: 'escrow_race' }),
      ),
    );
    expect(responses.map((r) => r.status).sort()).toEqual([201, ...Array<number>(9).fill(409)]);
  });

  it.each([
    ['a missing batchId', { batchId: undefined }, 'batchId'],
    ['an amount of 0', { amount: 0 }, 'amount'],
    ['a negative amount', { amount: -5 }, 'amount'],
    ['a fractional amount', { amount: 12.5 }, 'amount'],
    ['an amount given as a string', { amount: '100' }, 'amount'],
    ['a lowercase currency', { currency: 'eur' }, 'currency'],
    ['a four-letter currency', { currency: 'EURO' }, 'currency'],
    ['a missing payee', { payee: undefined }, 'payee'],
    ['a payee that is not a string', { payee: 42 }, 'payee'],
    ['an escrowId with spaces', { escrowId: 'has spaces' }, 'escrowId'],
    ['an unknown field', { note: 'hi' }, 'note'],
  ])('answers %s with 422 validation_error naming the field', async (_name, change, field) => {
    const res = await request(app)
      .post('/escrows')
      .set(admin)
      .send({ ...validEscrow, ...change });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
    expect(res.body.error.details).toEqual([{ field, message: expect.any(String) }]);
  });

  it('lists every failing field at once', async () => {
    const res = await request(app).post('/escrows').set(admin).send({ amount: 0, currency: 'x' });
    expect(res.status).toBe(422);
    const fields = (res.body.error.details as { field: string }[]).map((d) => d.field).sort();
    expect(fields).toEqual(['amount', 'batchId', 'currency', 'payee']);
  });

  it('answers a body that is not an object with 422', async () => {
    const res = await request(app).post('/escrows').set(admin).set('Content-Type', 'application/json').send('[1,2]');
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual([{ field: 'body', message: expect.any(String) }]);
  });
});

describe('GET /escrows/:escrowId', () => {
  it('answers an unknown escrow with 404 escrow_not_found', async () => {
    const res = await request(app).get('/escrows/escrow_nope').set(admin);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('escrow_not_found');
  });
});

describe('escrow permissions', () => {
  it.each([
    ['POST', '/escrows'],
    ['GET', '/escrows/escrow_chosen_1'],
  ])('%s %s needs a token (401)', async (method, path) => {
    const res = method === 'POST' ? await request(app).post(path).send(validEscrow) : await request(app).get(path);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });

  it.each(['service', 'worker', 'user'] as const)('refuses the %s role with 403 on both endpoints', async (role) => {
    const post = await request(app).post('/escrows').set(bearer(role)).send(validEscrow);
    expect(post.status).toBe(403);
    expect(post.body.error.code).toBe('permission_denied');
    const get = await request(app).get('/escrows/escrow_chosen_1').set(bearer(role));
    expect(get.status).toBe(403);
    expect(get.body.error.code).toBe('permission_denied');
  });
});
