import { Router } from 'express';
import request from 'supertest';

import { createApp } from '../../src/app';
import { ROLES, type Role } from '../../src/model/principal';
import { type Permission } from '../../src/auth/roles';
import { requirePermission } from '../../src/http/auth';
import { silentLogger } from '../helpers/app';
import { bearer, TEST_JWT_SECRET } from '../helpers/tokens';

// A protected test route per permission, on the real app and middleware.
const routes: Record<string, Permission> = { '/t/admin': 'admin', '/t/enqueue': 'jobs:enqueue', '/t/work': 'jobs:work', '/t/read': 'jobs:read' };
const router = Router();
for (const [path, permission] of Object.entries(routes)) {
  router.get(path, requirePermission(permission), (_req, res) => {
    res.json({ ok: true });
  });
}
const app = createApp({ logger: silentLogger, jwtSecret: TEST_JWT_SECRET, isDatabaseReady: async () => true, routers: [router] });

const expected: Record<string, Record<Role, number>> = {
  '/t/admin': { admin: 200, service: 403, worker: 403, user: 403 },
  '/t/enqueue': { admin: 200, service: 200, worker: 403, user: 403 },
  '/t/work': { admin: 200, service: 403, worker: 200, user: 403 },
  '/t/read': { admin: 200, service: 200, worker: 403, user: 200 },
};

describe('authentication and roles', () => {
  it.each(Object.keys(routes).flatMap((path) => ROLES.map((role) => [path, role] as const)))('%s as %s', async (path, role) => {
    const res = await request(app).get(path).set(bearer(role));
    const status = expected[path]![role];
    expect(res.status).toBe(status);
    if (status === 403) expect(res.body.error.code).toBe('permission_denied');
  });

  it.each([
    ['no header', {}],
    ['a non-bearer scheme', { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
    ['a garbage token', { Authorization: 'Bearer not-a-jwt' }],
    ['the token in another header', { 'X-Access-Token': bearer('admin').Authorization.slice(7) }],
  ])('answers 401 unauthenticated for %s', async (_name, headers) => {
    const res = await request(app).get('/t/admin').set(headers);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: { code: 'unauthenticated', message: expect.any(String) } });
  });

  it.each(['bearer', 'BEARER', 'Bearer  '])('reads the scheme case-insensitively, with any spaces after it (%j)', async (scheme) => {
    const token = bearer('admin').Authorization.slice('Bearer '.length);
    const res = await request(app).get('/t/admin').set('Authorization', `${scheme.trimEnd()}${scheme.endsWith('  ') ? '  ' : ' '}${token}`);
    expect(res.status).toBe(200);
  });

  it('tells a caller who it is', async () => {
    const res = await request(app).get('/auth/whoami').set(bearer('service', 'billing'));
    expect(res.body).toEqual({ sub: 'billing', role: 'service' });
  });
});
