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
    ['a critical header parameter it does not support', () => jwt.sign({ sub: 'a', role: 'admin' }, secret, { algorithm: 'HS256', header: { alg: 'HS256', crit: ['exp'] } as jwt.JwtHeader })],
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

describe('the verifier remembers tokens that verified', () => {
  afterEach(() => jest.restoreAllMocks());

  it('refuses a remembered token once it expires (the same second as jsonwebtoken)', () => {
    const verify = createTokenVerifier(secret);
    const start = Date.now();
    const exp = Math.floor(start / 1000) + 60;
    const token = jwt.sign({ sub: 'carol', role: 'service', exp }, secret);
    expect(verify(token)).toEqual({ sub: 'carol', role: 'service' });
    jest.spyOn(Date, 'now').mockReturnValue(exp * 1000 - 1);
    expect(verify(token)).toEqual({ sub: 'carol', role: 'service' });
    jest.spyOn(Date, 'now').mockReturnValue(exp * 1000);
    expect(() => verify(token)).toThrow('token has expired');
    // Still refused after: the expired token is not remembered as valid again.
    expect(() => verify(token)).toThrow('token has expired');
  });

  it('answers a remembered token without verifying it again, with a principal no request can change', () => {
    const verify = createTokenVerifier(secret);
    const token = mintToken({ secret, sub: 'dave', role: 'worker', extraClaims: { tenant: 'acme' } });
    const first = verify(token);
    const spy = jest.spyOn(jwt, 'verify');
    expect(verify(token)).toBe(first);
    expect(spy).not.toHaveBeenCalled();
    expect(Object.isFrozen(first)).toBe(true);
  });

  it('never remembers a refused token, and keeps a bounded number of tokens', () => {
    const verify = createTokenVerifier(secret);
    const bad = jwt.sign({ sub: 'a', role: 'admin' }, 'w'.repeat(40), { algorithm: 'HS256' });
    expect(() => verify(bad)).toThrow(UnauthenticatedError);
    expect(() => verify(bad)).toThrow(UnauthenticatedError);
    const tokens = Array.from({ length: 1_001 }, (_, i) => mintToken({ secret, sub: `svc-${i}`, role: 'service' }));
    for (const token of tokens) verify(token);
    // The oldest was let go to make room, so it is verified again; the newest is not.
    const spy = jest.spyOn(jwt, 'verify');
    expect(verify(tokens[1_000]!)).toEqual({ sub: 'svc-1000', role: 'service' });
    expect(spy).not.toHaveBeenCalled();
    expect(verify(tokens[0]!)).toEqual({ sub: 'svc-0', role: 'service' });
    expect(spy).toHaveBeenCalledTimes(1);
  });
});
