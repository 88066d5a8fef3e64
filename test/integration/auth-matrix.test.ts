import { generateKeyPairSync, createHmac } from 'node:crypto';

import type { Express } from 'express';
import jwt from 'jsonwebtoken';
import request from 'supertest';

import { ROLES } from '../../src/model/principal';
import { makeImage } from '../fixtures/images';
import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { ACCESS_MATRIX as MATRIX } from '../helpers/access-matrix';
import { listAppRoutes } from '../helpers/route-table';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * The exact 401/403 matrix of API.md, table-driven: every route the app serves has a row of the
 * hand-written matrix (test/helpers/access-matrix.ts; a new route without one fails the first test),
 * every role is tried against every row, and every forged or misplaced token is tried against every
 * protected route.
 */

// Every token in this file names the same subject, so "own jobs" checks pass for the service (a user
// token with that sub is another principal, and gets 403 access_denied from the owner rule).
const SUB = 'matrix-owner';
const db = useTestDatabase();
let app: Express;
let jobId = '';
let assetId = '';
let escrowId = '';
let png: Buffer;

beforeAll(async () => {
  app = buildTestApp(db);
  png = await makeImage({ contentType: 'image/png', width: 16, height: 12 });
  const job = await request(app).post('/jobs').set('Authorization', `Bearer ${tokenFor('service', SUB)}`).send({ type: 'noop', payload: {} });
  expect(job.status).toBe(201);
  jobId = job.body.jobId as string;
  const asset = await request(app).post('/assets').set('Authorization', `Bearer ${tokenFor('service', SUB)}`).set('Content-Type', 'image/png').send(png);
  expect(asset.status).toBe(201);
  assetId = asset.body.assetId as string;
  const escrow = await request(app)
    .post('/escrows')
    .set('Authorization', `Bearer ${tokenFor('admin', SUB)}`)
    .send({ batchId: 'matrix', amount: 100, currency: 'EUR', payee: 'acct_matrix' });
  expect(escrow.status).toBe(201);
  escrowId = escrow.body.escrowId as string;
});

/** A request for a route with its placeholders filled in and a plausible body. */
function requestFor(route: string, headers: Record<string, string>): request.Test {
  const [method, pattern] = route.split(' ') as [string, string];
  const path = pattern
    .replace(':jobId', jobId)
    .replace(':assetId', assetId)
    .replace(':escrowId', escrowId)
    .replace(':name', 'matrix-schedule')
    .replace(':type', 'noop')
    .replace(':fileId', '0'.repeat(24));
  const agent = request(app);
  const base =
    method === 'GET'
      ? agent.get(path)
      : method === 'POST'
        ? agent.post(path)
        : method === 'PATCH'
          ? agent.patch(path)
          : method === 'DELETE'
            ? agent.delete(path)
            : undefined;
  if (!base) throw new Error(`no request builder for ${method}`);
  const test = base.set({ 'X-Worker-Id': 'matrix-worker', ...headers });
  if (route.startsWith('POST /assets')) return test.set('Content-Type', 'image/png').send(png);
  const bodies: Record<string, object> = {
    'POST /jobs': { type: 'noop', payload: {} },
    'POST /jobs/batch': { jobs: [{ type: 'noop', payload: {} }] },
    'POST /jobs/:jobId/heartbeat': { leaseId: 'lease_matrix' },
    'POST /jobs/:jobId/succeed': { leaseId: 'lease_matrix' },
    'POST /jobs/:jobId/fail': { leaseId: 'lease_matrix', error: { message: 'matrix' } },
    'POST /escrows': { batchId: 'matrix', amount: 100, currency: 'EUR', payee: 'acct_matrix' },
    'POST /admin/schedules': { name: 'matrix-schedule', type: 'noop', payload: {}, cron: '*/5 * * * *' },
    'PATCH /admin/schedules/:name': { paused: true },
    'POST /jobs/:jobId/snooze': { leaseId: 'lease_matrix', seconds: 5 },
    'POST /jobs/reports': { reports: [{ jobId, leaseId: 'lease_matrix', outcome: 'succeeded' }] },
    'PATCH /admin/types/:type': { paused: false },
    'POST /admin/jobs/bulk': { action: 'requeue', filter: { status: 'dlq' }, dryRun: true },
  };
  const body = bodies[route];
  return body ? test.send(body) : test;
}

function expectError(res: request.Response, status: number, code: string): void {
  expect({ status: res.status, body: res.body as unknown }).toEqual({ status, body: { error: { code, message: expect.any(String) } } });
}

describe('the access matrix', () => {
  it('has exactly one row for every route the app serves', () => {
    const served = listAppRoutes(app);
    expect(served.filter((route) => !(route in MATRIX))).toEqual([]);
    expect(Object.keys(MATRIX).filter((route) => !served.includes(route))).toEqual([]);
  });

  const cases = Object.entries(MATRIX).flatMap(([route, access]) => [
    [route, 'no token', access] as const,
    ...ROLES.map((role) => [route, role, access] as const),
  ]);

  it.each(cases)('%s as %s', async (route, caller, access) => {
    const headers: Record<string, string> = caller === 'no token' ? {} : { Authorization: `Bearer ${tokenFor(caller, SUB)}` };
    const res = await requestFor(route, headers);
    expect(res.status).toBeLessThan(500);
    if (access === 'public') {
      expect({ route, status: res.status }).toEqual({ route, status: 200 });
    } else if (caller === 'no token') {
      expectError(res, 401, 'unauthenticated');
    } else if (access === 'any-role' || access.includes(caller)) {
      // Allowed by role: whatever the route answers next (200, 404, 409, 422...), never 401 or 403
      // permission_denied. A 403 access_denied is the owner rule's verdict, not the role's: a user
      // token borrowing the service's sub is not the owner (ownership is sub, role and tenant).
      const refusedByRole = res.status === 401 || (res.status === 403 && (res.body as { error?: { code?: string } }).error?.code !== 'access_denied');
      const verdict = refusedByRole ? `${res.status} ${JSON.stringify(res.body)}` : 'allowed';
      expect({ route, caller, verdict }).toEqual({ route, caller, verdict: 'allowed' });
    } else {
      expectError(res, 403, 'permission_denied');
    }
  });
});

// ---- Forged and misplaced tokens --------------------------------------------------------------

const b64url = (value: object | string): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A token with an arbitrary header and claims, HMAC-signed with `secret` (or unsigned). */
function forge(header: object, claims: object, secret?: string, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  const unsigned = `${b64url(header)}.${b64url(claims)}`;
  const signature = secret === undefined ? '' : createHmac(algorithm, secret).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

const now = Math.floor(Date.now() / 1000);
const adminClaims = { sub: SUB, role: 'admin' };
const HS256 = { alg: 'HS256', typ: 'JWT' };
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const userToken = tokenFor('user', SUB);
const [userHeader, , userSignature] = userToken.split('.');

const ATTACKS: [name: string, headers: Record<string, string>][] = [
  ['alg "none", unsigned', { Authorization: `Bearer ${forge({ alg: 'none', typ: 'JWT' }, adminClaims)}` }],
  ['alg "none" with a signature', { Authorization: `Bearer ${forge({ alg: 'none', typ: 'JWT' }, adminClaims, TEST_JWT_SECRET)}` }],
  ['alg "NONE"', { Authorization: `Bearer ${forge({ alg: 'NONE' }, adminClaims)}` }],
  ['RS256 signed with a private key', { Authorization: `Bearer ${jwt.sign(adminClaims, privateKey, { algorithm: 'RS256' })}` }],
  ['HS256 signed with the RSA public key as secret (HS/RS confusion)', { Authorization: `Bearer ${forge(HS256, adminClaims, publicPem)}` }],
  ['RS256 header over an HS256 signature with the secret', { Authorization: `Bearer ${forge({ alg: 'RS256', typ: 'JWT' }, adminClaims, TEST_JWT_SECRET)}` }],
  ['HS512 with the right secret (algorithm pinned)', { Authorization: `Bearer ${forge({ alg: 'HS512', typ: 'JWT' }, adminClaims, TEST_JWT_SECRET, 'sha512')}` }],
  ['a wrong secret', { Authorization: `Bearer ${forge(HS256, adminClaims, `${TEST_JWT_SECRET}-not`)}` }],
  ['an expired token', { Authorization: `Bearer ${forge(HS256, { ...adminClaims, exp: now - 60 }, TEST_JWT_SECRET)}` }],
  ['a not-yet-valid token (nbf)', { Authorization: `Bearer ${forge(HS256, { ...adminClaims, nbf: now + 3_600 }, TEST_JWT_SECRET)}` }],
  ['a malformed exp', { Authorization: `Bearer ${forge(HS256, { ...adminClaims, exp: 'tomorrow' }, TEST_JWT_SECRET)}` }],
  ['no sub', { Authorization: `Bearer ${forge(HS256, { role: 'admin' }, TEST_JWT_SECRET)}` }],
  ['an empty sub', { Authorization: `Bearer ${forge(HS256, { sub: '', role: 'admin' }, TEST_JWT_SECRET)}` }],
  ['a numeric sub', { Authorization: `Bearer ${forge(HS256, { sub: 42, role: 'admin' }, TEST_JWT_SECRET)}` }],
  ['no role', { Authorization: `Bearer ${forge(HS256, { sub: SUB }, TEST_JWT_SECRET)}` }],
  ['an unknown role', { Authorization: `Bearer ${forge(HS256, { sub: SUB, role: 'root' }, TEST_JWT_SECRET)}` }],
  ['a role list', { Authorization: `Bearer ${forge(HS256, { sub: SUB, role: ['admin'] }, TEST_JWT_SECRET)}` }],
  ['claims that are not an object', { Authorization: `Bearer ${forge(HS256, '"admin"' as unknown as object, TEST_JWT_SECRET)}` }],
  ['a user token with its claims swapped for admin ones', { Authorization: `Bearer ${userHeader}.${b64url(adminClaims)}.${userSignature}` }],
  ['a valid token in X-Access-Token', { 'X-Access-Token': tokenFor('admin', SUB) }],
  ['a valid token in a cookie', { Cookie: `token=${tokenFor('admin', SUB)}; access_token=${tokenFor('admin', SUB)}` }],
  ['a valid token without the Bearer scheme', { Authorization: tokenFor('admin', SUB) }],
  ['a valid token under the Basic scheme', { Authorization: `Basic ${tokenFor('admin', SUB)}` }],
  ['two tokens in one header', { Authorization: `Bearer ${tokenFor('admin', SUB)} ${tokenFor('admin', SUB)}` }],
  ['an empty bearer', { Authorization: 'Bearer ' }],
];

const protectedRoutes = Object.entries(MATRIX)
  .filter(([, access]) => access !== 'public')
  .map(([route]) => route);

describe('forged and misplaced tokens', () => {
  it.each(ATTACKS)('%s: every protected route answers 401 unauthenticated', async (_name, headers) => {
    for (const route of protectedRoutes) {
      const res = await requestFor(route, headers);
      expect({ route, status: res.status, body: res.body as unknown }).toEqual({
        route,
        status: 401,
        body: { error: { code: 'unauthenticated', message: expect.any(String) } },
      });
    }
  });

  it('also refuses a valid token passed in the query string', async () => {
    const res = await request(app).get(`/admin/jobs/stats?access_token=${tokenFor('admin', SUB)}`);
    expectError(res, 401, 'unauthenticated');
  });
});
