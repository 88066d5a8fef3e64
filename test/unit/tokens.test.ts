import { generateKeyPairSync } from 'node:crypto';

import jwt from 'jsonwebtoken';

import { createTokenVerifier, mintToken, verifyToken } from '../../src/auth/tokens';
import { UnauthenticatedError } from '../../src/errors';

const secret = 's'.repeat(40);

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('token verification', () => {
  it('accepts an HS256 token with sub and role', () => {
    expect(verifyToken(mintToken({ secret, sub: 'alice', role: 'admin' }), secret)).toEqual({ sub: 'alice', role: 'admin' });
  });

  const now = Math.floor(Date.now() / 1000);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  it.each<[string, () => string]>([
    ['alg none', () => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'a', role: 'admin' })}.`],
    ['a wrong secret', () => jwt.sign({ sub: 'a', role: 'admin' }, 'w'.repeat(40), { algorithm: 'HS256' })],
    ['HS512 with the right secret', () => jwt.sign({ sub: 'a', role: 'admin' }, secret, { algorithm: 'HS512' })],
    ['RS256', () => jwt.sign({ sub: 'a', role: 'admin' }, privateKey, { algorithm: 'RS256' })],
    ['an expired token', () => jwt.sign({ sub: 'a', role: 'admin', exp: now - 10 }, secret)],
    ['a not-yet-valid token', () => jwt.sign({ sub: 'a', role: 'admin', nbf: now + 3600 }, secret)],
    ['no sub', () => jwt.sign({ role: 'admin' }, secret)],
    ['an empty sub', () => jwt.sign({ sub: '', role: 'admin' }, secret)],
    ['no role', () => jwt.sign({ sub: 'a' }, secret)],
    ['an unknown role', () => jwt.sign({ sub: 'a', role: 'root' }, secret)],
    ['a string payload', () => jwt.sign('hello', secret)],
  ])('rejects %s', (_name, token) => {
    expect(() => verifyToken(token(), secret)).toThrow(UnauthenticatedError);
  });
});

describe('the reusable verifier (secret key object made once)', () => {
  const verify = createTokenVerifier(secret);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

  it('accepts what verifyToken accepts', () => {
    expect(verify(mintToken({ secret, sub: 'bob', role: 'worker', extraClaims: { tenant: 'acme' } }))).toEqual({ sub: 'bob', role: 'worker', tenant: 'acme' });
  });

  it.each<[string, () => string]>([
    ['alg none', () => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'a', role: 'admin' })}.`],
    ['RS256', () => jwt.sign({ sub: 'a', role: 'admin' }, privateKey, { algorithm: 'RS256' })],
    ['a wrong secret', () => jwt.sign({ sub: 'a', role: 'admin' }, 'w'.repeat(40), { algorithm: 'HS256' })],
  ])('rejects %s', (_name, token) => {
    expect(() => verify(token())).toThrow(UnauthenticatedError);
  });
});
