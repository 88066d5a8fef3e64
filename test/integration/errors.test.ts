import { Router } from 'express';
import request from 'supertest';

import { createApp } from '../../src/app';
import { readJsonBody } from '../../src/http/body';
import { silentLogger } from '../helpers/app';
import { bearer, TEST_JWT_SECRET } from '../helpers/tokens';

const router = Router();
// Bodies are read by the routes that take one (after their permission check), not app-wide.
router.post('/t/echo', readJsonBody, (req, res) => {
  res.json({ body: req.body as unknown });
});
router.get('/t/boom', () => {
  throw new Error('database password is hunter2 at /srv/secret.ts:12');
});
const app = createApp({ logger: silentLogger, jwtSecret: TEST_JWT_SECRET, isDatabaseReady: async () => true, routers: [router] });
const admin = bearer('admin');

function expectErrorShape(body: unknown, code: string): void {
  expect(body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
}

describe('error shape and input hygiene', () => {
  it('answers malformed JSON with 400 bad_request', async () => {
    const res = await request(app).post('/t/echo').set(admin).set('Content-Type', 'application/json').send('{"a":');
    expect(res.status).toBe(400);
    expectErrorShape(res.body, 'bad_request');
  });

  it('answers an unknown route with 404 not_found', async () => {
    const res = await request(app).get('/nowhere').set(admin);
    expect(res.status).toBe(404);
    expectErrorShape(res.body, 'not_found');
  });

  it('answers a body over 1 MB with 413', async () => {
    const res = await request(app).post('/t/echo').set(admin).send({ big: 'x'.repeat(1_100_000) });
    expect(res.status).toBe(413);
    expectErrorShape(res.body, 'payload_too_large');
  });

  it.each([
    ['a $-prefixed key', { filter: { $gt: '' } }],
    ['a dotted key', { 'a.b': 1 }],
    ['a __proto__ key', JSON.parse('{"__proto__":{"polluted":true}}') as unknown],
    ['nesting deeper than 32 levels', JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) as unknown],
  ])('rejects %s with 422 before any handler', async (_name, body) => {
    const res = await request(app).post('/t/echo').set(admin).send(body as object);
    expect(res.status).toBe(422);
    expectErrorShape(res.body, 'validation_error');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects operator keys in the query string', async () => {
    const res = await request(app).post('/t/echo?$where=1').set(admin).send({});
    expect(res.status).toBe(422);
  });

  it('answers an unexpected error with a generic 500 that leaks nothing', async () => {
    const res = await request(app).get('/t/boom').set(admin);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
    expect(res.text).not.toContain('hunter2');
    expect(res.text).not.toContain('.ts');
  });

  it('tags every response with a request id, keeping a caller-supplied one', async () => {
    const res = await request(app).get('/healthz').set('X-Request-Id', 'abc-123');
    expect(res.headers['x-request-id']).toBe('abc-123');
    const generated = await request(app).get('/healthz');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
