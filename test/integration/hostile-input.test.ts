import type { Express } from 'express';
import fc from 'fast-check';
import mongoose from 'mongoose';
import request from 'supertest';

import type { ErrorCode } from '../../src/errors';
import { STATUS_BY_CODE } from '../../src/http/error-handler';
import { makeImage } from '../fixtures/images';
import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { fingerprintDatabase } from '../helpers/db-fingerprint';
import { closeRawHttpAgent, sendRaw, type RawRequest } from '../helpers/raw-http';
import { listAppRoutes } from '../helpers/route-table';
import { listen } from '../helpers/server';
import { tokenFor } from '../helpers/tokens';

/**
 * Property-based hostile input over every route the app serves (from its router stack): random
 * JSON, operator objects and dotted keys, __proto__/constructor keys, huge strings and deep nesting,
 * bytes that are not UTF-8, wrong content types and encodings, hostile path segments, query strings
 * and headers. Invariants: never a 5xx; every 4xx has the error shape and the status its code maps
 * to; Object.prototype stays clean; the database is byte-for-byte unchanged (every request here is
 * invalid by construction, or a read).
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20_240_607);
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);

// The one code → status table of the service, so the check follows it.
const STATUS_OF = STATUS_BY_CODE;

// ---- Arbitraries ------------------------------------------------------------------------------

/** Characters a header value may carry on the wire (Node refuses CR, LF, NUL and code points > 0xFF). */
const headerChar = fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c));
const headerValue = fc.string({ unit: headerChar, maxLength: 200 });

const SPECIAL_STRINGS = ['__proto__', 'constructor', 'prototype', '$where', '$gt', '$ne', 'a.b', '..', '\u0000', 'a\u0000b', 'null', 'NaN', 'Infinity', '-1', '1e309', '0x10', '[]', '{}', ' ', ''];
const shortString = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom(...SPECIAL_STRINGS), fc.string({ unit: 'grapheme-ascii', minLength: 129, maxLength: 300 }));
const hugeString = fc.integer({ min: 10_001, max: 120_000 }).map((n) => 'x'.repeat(n));

/** JSON built from text, so `__proto__` and `constructor` arrive as the own keys an attacker sends. */
const prototypeKeys = fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.parse(`{"__proto__":${JSON.stringify(v)},"constructor":{"prototype":{"polluted":"yes"}}}`) as unknown);
const operatorObject = fc.tuple(fc.constantFrom('$gt', '$ne', '$where', '$regex', '$expr', '$set', '$in'), fc.jsonValue({ maxDepth: 1 })).map(([op, v]) => ({ [op]: v }));
const dottedKeys = fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 })).map(([a, b, v]) => ({ [`${a}.${b}`]: v }));
const nulKeys = fc.tuple(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 })).map(([a, v]) => ({ [`${a}\u0000`]: v }));
const deepValue = fc.tuple(fc.integer({ min: 33, max: 400 }), fc.boolean()).map(([depth, arrays]) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i += 1) value = arrays ? [value] : { a: value };
  return value;
});
const badNumbers = fc.constantFrom(1e308, -1, 1.5, -0, 2 ** 53 + 1, 101, 0, -1e308);

/** A value no field of any request schema accepts (objects with hostile keys, wrong types, sizes). */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  prototypeKeys,
  operatorObject,
  dottedKeys,
  nulKeys,
  deepValue,
  hugeString,
  fc.string({ unit: 'binary', minLength: 2_001, maxLength: 3_000 }),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: 1, maxLength: 5 }),
  badNumbers,
);

/** Any JSON value, objects with random keys included; (nearly) never a valid request body. */
const randomJson = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 3, noUnicodeString: false }), hostileValue);

interface HostileBody {
  kind: string;
  bytes: Buffer;
  contentType?: string;
  contentEncoding?: string;
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value) ?? 'null');

/** Counterexamples print a body as its kind, size and first bytes, not as a megabyte of numbers. */
function describedBody(body: HostileBody): HostileBody {
  return Object.assign(body, {
    [fc.toStringMethod]: () =>
      `${body.kind} (${body.bytes.length} bytes, ${body.contentType ?? 'no content type'}${body.contentEncoding ? `, ${body.contentEncoding}` : ''}): ${JSON.stringify(body.bytes.subarray(0, 160).toString('latin1'))}`,
  });
}

/** The base body of a mutating route with one field replaced by, or one key added with, a hostile value. */
function mutatedBody(base: Record<string, unknown>): fc.Arbitrary<HostileBody> {
  const keys = Object.keys(base);
  return fc
    .tuple(fc.constantFrom(...keys, '__extra__'), fc.oneof(fc.constantFrom('__proto__', 'constructor', '$set', 'a.b', 'x\u0000'), fc.string({ maxLength: 12 })), hostileValue)
    .map(([key, extraKey, value]) => {
      // Through text, so an added `__proto__` stays an own key.
      const text = JSON.stringify(key === '__extra__' ? base : { ...base, [key]: value });
      const bytes =
        key === '__extra__' ? Buffer.from(`${text.slice(0, -1)}${text.length > 2 ? ',' : ''}${JSON.stringify(extraKey)}:${JSON.stringify(value) ?? 'null'}}`) : Buffer.from(text);
      return { kind: `mutated ${key}`, bytes, contentType: 'application/json' };
    });
}

const WRONG_CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'image/png',
  'image/gif',
  'application/octet-stream',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json; charset=utf-7',
  'application/JSON',
  'application/vnd.api+json',
  'application/json; charset="',
  ';;;',
];

function bodyArbitrary(base: Record<string, unknown> | undefined): fc.Arbitrary<HostileBody | undefined> {
  const variants: fc.Arbitrary<HostileBody | undefined>[] = [
    fc.constant(undefined),
    randomJson.map((v) => ({ kind: 'random json', bytes: json(v), contentType: 'application/json' })),
    hostileValue.map((v) => ({ kind: 'hostile json', bytes: json(v), contentType: 'application/json' })),
    // Deeper than any parser should follow: 5,000 levels as text.
    fc.tuple(fc.integer({ min: 33, max: 5_000 }), fc.boolean()).map(([depth, arrays]) => ({
      kind: 'deep nesting',
      bytes: Buffer.from(arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
      contentType: 'application/json',
    })),
    // Around the 1 MB body limit and well over the 64 KiB payload limit.
    fc.integer({ min: 70_000, max: 1_200_000 }).map((n) => ({ kind: 'huge', bytes: json({ type: 'noop', payload: { s: 'x'.repeat(n) } }), contentType: 'application/json' })),
    // Bytes that are not UTF-8, bare or inside a JSON string.
    fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.boolean()).map(([raw, wrapped]) => ({
      kind: 'invalid utf-8',
      bytes: wrapped ? Buffer.concat([Buffer.from('{"type":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from(raw), Buffer.from('"}')]) : Buffer.from(raw),
      contentType: 'application/json',
    })),
    fc.tuple(fc.constantFrom(...WRONG_CONTENT_TYPES), fc.oneof(randomJson.map(json), fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)))).map(([contentType, bytes]) => ({
      kind: `content type ${contentType}`,
      bytes,
      contentType,
    })),
    fc.tuple(fc.constantFrom('gzip', 'deflate', 'br', 'x-unknown', 'gzip, gzip'), randomJson).map(([contentEncoding, v]) => ({
      kind: `content encoding ${contentEncoding}`,
      bytes: json(v),
      contentType: 'application/json',
      contentEncoding,
    })),
  ];
  if (base) variants.push(mutatedBody(base), mutatedBody(base));
  return fc.oneof(...variants).map((body) => (body ? describedBody(body) : undefined));
}

const INVALID_ESCAPES = ['%', '%ZZ', '%E0%A4%A', '%00', '%2e%2e', '%C0%AF', '%FF', '..'];
const pathSegment = fc.oneof(fc.constantFrom(...INVALID_ESCAPES), shortString.map(encodeURIComponent), hugeString.map((s) => s.slice(0, 3_000)));

/** A query string: the route's own parameters and random ones, with hostile values, sometimes not valid encoding. */
function queryArbitrary(known: readonly string[]): fc.Arbitrary<string> {
  // `wait` is left out: a valid one would hold a lease call open (long-poll) for up to 30 s.
  const key = fc.oneof(fc.constantFrom(...known, '__proto__', 'constructor', '$where', 'a.b', 'a[b]', 'a[__proto__][x]'), fc.string({ maxLength: 10 })).filter((k) => k !== 'wait');
  const pair = fc.tuple(key, fc.oneof(shortString, badNumbers.map(String))).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  const knownPair = fc.tuple(fc.constantFrom(...known, 'unknown'), fc.oneof(shortString, badNumbers.map(String))).map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
  const hostile = fc
    .tuple(fc.array(pair, { maxLength: 6 }), fc.option(fc.constantFrom(...INVALID_ESCAPES, '&&=&', 'wait=-1', 'wait=31', 'wait=abc', 'limit=1&limit=2'), { nil: undefined }))
    .map(([pairs, raw]) => [...pairs, ...(raw === undefined ? [] : [raw])].join('&'));
  // Often no query or only the route's own keys, so bodies and values reach the deeper layers too.
  return fc.oneof(fc.constant(''), fc.array(knownPair, { minLength: 1, maxLength: 3 }).map((pairs) => pairs.join('&')), hostile);
}

const headersArbitrary = fc.record(
  {
    'X-Worker-Id': fc.oneof({ weight: 3, arbitrary: fc.constant('fuzz-worker-1') }, { weight: 1, arbitrary: headerValue }),
    'X-Request-Id': headerValue,
    Accept: fc.oneof(fc.constant('application/json'), headerValue),
    'X-Fuzz': headerValue,
  },
  { requiredKeys: [] },
);

// ---- Fixtures ---------------------------------------------------------------------------------

const db = useTestDatabase();
let app: Express;
let baseUrl = '';
let close: (() => Promise<void>) | undefined;
const ids: Record<string, string> = {};
const ADMIN = `Bearer ${tokenFor('admin', 'fuzz-admin')}`;

beforeAll(async () => {
  app = buildTestApp(db);
  const service = `Bearer ${tokenFor('service', 'fuzz-owner')}`;
  const worker = `Bearer ${tokenFor('worker', 'fuzz-worker')}`;
  // One job run to completion (so nothing is left to lease, cancel or requeue), an asset, an escrow.
  const job = await request(app).post('/jobs').set('Authorization', service).send({ type: 'noop', payload: {} });
  const leased = await request(app).get('/jobs/lease').set('Authorization', worker).set('X-Worker-Id', 'fuzz-worker-1');
  const [lease] = leased.body.jobs as { jobId: string; leaseId: string }[];
  expect(lease?.jobId).toBe(job.body.jobId);
  const done = await request(app).post(`/jobs/${lease!.jobId}/succeed`).set('Authorization', worker).set('X-Worker-Id', 'fuzz-worker-1').send({ leaseId: lease!.leaseId });
  expect(done.status).toBe(200);
  const png = await makeImage({ contentType: 'image/png', width: 8, height: 8 });
  const asset = await request(app).post('/assets').set('Authorization', service).set('Content-Type', 'image/png').send(png);
  const escrow = await request(app).post('/escrows').set('Authorization', ADMIN).send({ batchId: 'fuzz', amount: 1, currency: 'EUR', payee: 'acct_fuzz' });
  expect([asset.status, escrow.status]).toEqual([201, 201]);
  ids.jobId = lease!.jobId;
  ids.assetId = asset.body.assetId as string;
  ids.escrowId = escrow.body.escrowId as string;
  const server = await listen(app);
  baseUrl = server.baseUrl;
  close = server.close;
  process.stdout.write(`hostile input: fast-check seed ${SEED}, ${RUNS} runs per route (FUZZ_SEED / FUZZ_RUNS to change)\n`);
});

afterAll(async () => {
  closeRawHttpAgent();
  await close?.();
});

/** Valid bodies of the mutating routes; hostile variants are derived from them. */
const BASE_BODIES: Record<string, Record<string, unknown>> = {
  'POST /jobs': { type: 'noop', payload: { sleepMs: 1 }, priority: 50, idempotencyKey: 'fuzz' },
  'POST /jobs/batch': { jobs: [{ type: 'noop', payload: {} }] },
  'POST /jobs/:jobId/heartbeat': { leaseId: 'lease_fuzz', progress: 5 },
  'POST /jobs/:jobId/succeed': { leaseId: 'lease_fuzz', result: { ok: true } },
  'POST /jobs/:jobId/fail': { leaseId: 'lease_fuzz', error: { message: 'x', retryable: true } },
  'POST /escrows': { batchId: 'fuzz', amount: 5, currency: 'EUR', payee: 'acct_fuzz' },
  'POST /admin/schedules': { name: 'fuzz-schedule', type: 'noop', payload: {}, cron: '*/5 * * * *', paused: true },
  'PATCH /admin/schedules/:name': { paused: true },
  'POST /jobs/:jobId/snooze': { leaseId: 'lease_fuzz', seconds: 60 },
  'POST /jobs/reports': { reports: [{ jobId: 'job_000000000000000000000000', leaseId: 'lease_fuzz', outcome: 'succeeded' }] },
  'PATCH /admin/types/:type': { paused: true },
  // A dry run: even a body the mutations left valid would change nothing.
  'POST /admin/jobs/bulk': { action: 'delete', filter: { status: 'succeeded', type: 'noop' }, dryRun: true },
};

/** Query parameters each route reads. */
const KNOWN_QUERY: Record<string, string[]> = {
  'GET /jobs/lease': ['limit', 'type'],
  'GET /jobs': ['status', 'type', 'tag', 'page', 'per_page'],
  'GET /admin/jobs/queue': ['status', 'type', 'tag', 'idempotencyKey', 'createdBy', 'createdFrom', 'createdTo', 'page', 'per_page'],
  'GET /admin/jobs/throughput': ['minutes'],
  'GET /escrows': ['page', 'per_page'],
  'POST /jobs/:jobId/files': ['name', 'leaseId'],
  'POST /assets': ['filename'],
  'POST /assets/:assetId': ['filename'],
};

interface Observed {
  status: number;
  kind: string;
}

function checkResponse(route: string, req: RawRequest, kind: string, res: { status: number; headers: Record<string, unknown>; text: string }): void {
  const where = `${route} (${kind}) → ${res.status}: ${req.method} ${req.path.slice(0, 300)}`;
  if (res.status >= 500) throw new Error(`5xx for hostile input: ${where}\n${res.text.slice(0, 500)}`);
  if (res.status < 400) return;
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    throw new Error(`error answer is not JSON: ${where}\n${res.text.slice(0, 300)}`);
  }
  const error = (body as { error?: unknown }).error as { code?: unknown; message?: unknown; details?: unknown } | undefined;
  const shapeOk =
    typeof body === 'object' &&
    body !== null &&
    Object.keys(body).join() === 'error' &&
    typeof error === 'object' &&
    error !== null &&
    Object.keys(error).every((k) => ['code', 'message', 'details'].includes(k)) &&
    typeof error.code === 'string' &&
    typeof error.message === 'string' &&
    error.code in STATUS_OF;
  if (!shapeOk) throw new Error(`error answer without the error shape: ${where}\n${res.text.slice(0, 300)}`);
  const expectedStatus = STATUS_OF[error.code as ErrorCode];
  if (expectedStatus !== res.status) throw new Error(`code ${String(error.code)} answered with ${res.status}, expected ${expectedStatus}: ${where}`);
}

/**
 * A lease call or heartbeat records that its worker was seen (GET /admin/workers): a read's side
 * effect by design, like an access log, so the `workers` collection is left out of the comparison.
 */
function withoutSightings(fingerprint: Awaited<ReturnType<typeof fingerprintDatabase>>): Awaited<ReturnType<typeof fingerprintDatabase>> {
  const { workers: _sightings, ...rest } = fingerprint;
  return rest;
}

const prototypeNames = (): string[] => [Object.prototype, Array.prototype, Function.prototype, String.prototype].flatMap((p) => Object.getOwnPropertyNames(p)).sort();
const cleanPrototypes = prototypeNames();

function expectNoPrototypePollution(): void {
  expect(prototypeNames()).toEqual(cleanPrototypes);
  const probe: Record<string, unknown> = {};
  expect([probe.polluted, probe.x, probe.type]).toEqual([undefined, undefined, undefined]);
}

describe('hostile input', () => {
  it('covers every route the app serves', () => {
    expect(listAppRoutesOnce()).toEqual(listAppRoutes(app));
    expect(listAppRoutes(app).length).toBeGreaterThanOrEqual(25);
  });

  it.each(listAppRoutesOnce())('%s: never a 5xx, always the error shape, no pollution, the database unchanged', async (route) => {
    const [method, pattern] = route.split(' ') as [string, string];
    const placeholders = [...pattern.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
    const before = withoutSightings(await fingerprintDatabase(db.connection));
    const observed: Observed[] = [];

    const arbitrary = fc.record({
      // Placeholders: the real id (to get past lookups) or a hostile segment.
      segments: fc.tuple(...placeholders.map((name) => fc.oneof(fc.constant(ids[name] ?? 'fuzz-schedule-missing'), pathSegment))),
      query: queryArbitrary(KNOWN_QUERY[route] ?? []),
      headers: headersArbitrary,
      body: bodyArbitrary(BASE_BODIES[route]),
    });

    await fc.assert(
      fc.asyncProperty(arbitrary, async ({ segments, query, headers, body }) => {
        let path = pattern;
        placeholders.forEach((name, i) => {
          path = path.replace(`:${name}`, segments[i]!);
        });
        if (query) path += `?${query}`;
        const req: RawRequest = {
          method,
          path,
          headers: {
            Authorization: ADMIN,
            ...headers,
            ...(body?.contentType ? { 'Content-Type': body.contentType } : {}),
            ...(body?.contentEncoding ? { 'Content-Encoding': body.contentEncoding } : {}),
          },
          ...(body ? { body: body.bytes } : {}),
        };
        const res = await sendRaw(baseUrl, req);
        observed.push({ status: res.status, kind: body?.kind ?? 'no body' });
        checkResponse(route, req, body?.kind ?? 'no body', res);
        expectNoPrototypePollution();
      }),
      { seed: SEED, numRuns: RUNS },
    );

    expect(withoutSightings(await fingerprintDatabase(db.connection))).toEqual(before);
    expect(observed).toHaveLength(RUNS);
    if (process.env.FUZZ_VERBOSE) {
      const histogram = new Map<string, number>();
      for (const o of observed) histogram.set(`${o.status} ${o.kind.split(' ')[0]!}`, (histogram.get(`${o.status} ${o.kind.split(' ')[0]!}`) ?? 0) + 1);
      process.stdout.write(`${route}: ${[...histogram].sort().map(([k, n]) => `${k}×${n}`).join(', ')}\n`);
    }
  });
});

/**
 * The route table, read when the file loads (test names need it before beforeAll): an app wired on
 * a connection that never opens, used for nothing but its router stack.
 */
function listAppRoutesOnce(): string[] {
  const unopened = mongoose.createConnection();
  return listAppRoutes(buildTestApp({ dbName: 'route-table', connection: unopened }));
}
