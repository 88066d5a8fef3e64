import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

import type { Express } from 'express';
import request from 'supertest';

import { startApi, type RunningApi } from '../../src/api-server';
import { loadApiConfig } from '../../src/config';
import { buildTestApp, silentLogger } from '../helpers/app';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { startApiProcess, type ServiceProcess } from '../helpers/processes';
import { listen } from '../helpers/server';
import { bearer, TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * Issue 11 (B): authentication (401) and the role (403) are checked before a body is read or
 * validated (400/413/422), an unauthenticated body is never read, and slow clients cannot hold a
 * connection open: stalled bodies, dripped bodies and dripped headers are cut within their timeouts,
 * while long-polls (GET, no body) are not.
 */

const db = useTestDatabase();
let app: Express;
let server: { baseUrl: string; close(): Promise<void> };
let port: number;
const BODY_IDLE_MS = 400;

beforeAll(async () => {
  app = buildTestApp(db, { bodyIdleTimeoutMs: BODY_IDLE_MS });
  server = await listen(app);
  port = Number(new URL(server.baseUrl).port);
});
afterAll(async () => {
  await server?.close();
});

/** A raw TCP connection to the API: exactly the bytes a slow or hostile client sends, and what comes back. */
class RawClient {
  private readonly socket: net.Socket;
  private data = Buffer.alloc(0);
  private closedAt: number | undefined;
  readonly openedAt = Date.now();

  constructor(target: number) {
    this.socket = net.connect(target, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
    });
    // The server may reset a connection it closed with our bytes unread; what it answered is kept.
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closedAt = Date.now();
    });
  }

  write(bytes: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  get text(): string {
    return this.data.toString('latin1');
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  /** Milliseconds from opening the connection until the server closed it. */
  get openForMs(): number {
    return (this.closedAt ?? Date.now()) - this.openedAt;
  }

  /** The first response: status, headers and JSON body (once it has all arrived). */
  async response(timeoutMs = 5_000): Promise<{ status: number; headers: Record<string, string>; body: unknown }> {
    return waitFor(
      () => {
        const text = this.text;
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return undefined;
        const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        const length = Number(headers['content-length'] ?? 0);
        const body = this.data.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
        if (body.length < length) return undefined;
        return { status: Number(statusLine!.split(' ')[1]), headers, body: length > 0 ? (JSON.parse(body.subarray(0, length).toString('utf8')) as unknown) : undefined };
      },
      { timeoutMs, intervalMs: 10, what: 'the server to answer' },
    );
  }

  async serverClosed(timeoutMs = 5_000): Promise<void> {
    await waitFor(() => (this.closed ? true : undefined), { timeoutMs, intervalMs: 10, what: 'the server to close the connection' });
  }

  end(): void {
    this.socket.destroy();
  }
}

function head(params: { method: string; path: string; headers: Record<string, string> }): string {
  const lines = [`${params.method} ${params.path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(params.headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

const expectError = (res: request.Response, status: number, code: string): void => {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
};

describe('authentication and role before the body', () => {
  it('answers an unauthenticated POST /jobs with malformed JSON 401, not 400', async () => {
    const res = await request(app).post('/jobs').set('Content-Type', 'application/json').send('{"type":');
    expectError(res, 401, 'unauthenticated');
  });

  it('answers unauthenticated bodies that fail validation, or carry operator keys, with 401', async () => {
    expectError(await request(app).post('/jobs').send({ type: 42, payload: { $where: '1' } }), 401, 'unauthenticated');
    expectError(await request(app).post('/admin/schedules?$where=1').send({}), 401, 'unauthenticated');
    expectError(await request(app).post('/escrows').set('Authorization', 'Bearer not.a.token').send({ amount: 'x' }), 401, 'unauthenticated');
  });

  it('answers an unauthenticated 2 MB body 401 (not 413) at once, without reading it, and closes the connection', async () => {
    const client = new RawClient(port);
    try {
      client.write(head({ method: 'POST', path: '/jobs', headers: { 'Content-Type': 'application/json', 'Content-Length': String(2 * 1024 * 1024) } }));
      // Only the first kilobyte is ever sent: an answer now means the rest was not waited for.
      client.write(`{"type":"noop","payload":{"s":"${'x'.repeat(1_000)}`);
      const res = await client.response();
      expect(res).toMatchObject({ status: 401, headers: { connection: 'close' }, body: { error: { code: 'unauthenticated' } } });
      await client.serverClosed();
    } finally {
      client.end();
    }
  });

  it('answers an allowed caller that announces a body over 1 MB 413 at once, from the announced length, and closes the connection', async () => {
    for (const length of [String(2 * 1024 * 1024), '99999999999']) {
      const client = new RawClient(port);
      try {
        client.write(head({ method: 'POST', path: '/jobs', headers: { Authorization: `Bearer ${tokenFor('service')}`, 'Content-Type': 'application/json', 'Content-Length': length } }));
        // Nothing of the body is sent: without the early check the answer was the idle timeout's 408.
        const res = await client.response();
        expect(res).toMatchObject({ status: 413, headers: { connection: 'close' }, body: { error: { code: 'payload_too_large' } } });
        await client.serverClosed();
      } finally {
        client.end();
      }
    }
  });

  it('answers a wrong role 403 whatever its body: malformed, invalid, unsafe or oversized', async () => {
    expectError(await request(app).post('/jobs').set(bearer('worker')).set('Content-Type', 'application/json').send('{"type":'), 403, 'permission_denied');
    expectError(await request(app).post('/jobs/batch').set(bearer('user')).send({ jobs: 'nope', $set: 1 }), 403, 'permission_denied');
    expectError(await request(app).post('/escrows').set(bearer('service')).set('Content-Type', 'application/json').send('not json'), 403, 'permission_denied');
    expectError(await request(app).post('/admin/schedules').set(bearer('service')).send({ name: ' ', cron: 5 }), 403, 'permission_denied');
    expectError(await request(app).patch('/admin/schedules/x').set(bearer('worker')).set('Content-Type', 'application/json').send('{'), 403, 'permission_denied');
    expectError(await request(app).post('/jobs/job_0123456789abcdef01234567/succeed').set(bearer('service')).set('Content-Type', 'application/json').send('{'), 403, 'permission_denied');

    const client = new RawClient(port);
    try {
      client.write(head({ method: 'POST', path: '/escrows', headers: { Authorization: `Bearer ${tokenFor('user')}`, 'Content-Type': 'application/json', 'Content-Length': String(5 * 1024 * 1024) } }));
      client.write('{"amount":');
      expect(await client.response()).toMatchObject({ status: 403, headers: { connection: 'close' }, body: { error: { code: 'permission_denied' } } });
      await client.serverClosed();
    } finally {
      client.end();
    }
  });

  it('still validates the body of an allowed caller: 400, 413 and 422 as before', async () => {
    expectError(await request(app).post('/jobs').set(bearer('service')).set('Content-Type', 'application/json').send('{"type":'), 400, 'bad_request');
    expectError(await request(app).post('/jobs').set(bearer('service')).send({ type: 'noop', payload: { s: 'x'.repeat(1_100_000) } }), 413, 'payload_too_large');
    // An unsafe key in a payload is the payload's problem; anywhere else, the body's.
    expectError(await request(app).post('/jobs').set(bearer('service')).send({ type: 'noop', payload: { $gt: 1 } }), 422, 'payload_invalid');
    expectError(await request(app).post('/jobs').set(bearer('service')).send({ type: 'noop', payload: {}, $gt: 1 }), 422, 'validation_error');
    expect((await request(app).post('/jobs').set(bearer('service')).send({ type: 'noop', payload: {} })).status).toBe(201);
  });

  it('answers a JSON route a body of another media type, or of none stated, 415 (not a 422 for a missing body)', async () => {
    const json = '{"type":"noop","payload":{}}';
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      expectError(await request(app).post('/jobs').set(bearer('service')).set('Content-Type', type).send(json), 415, 'unsupported_media_type');
    }
    const client = new RawClient(port);
    try {
      client.write(head({ method: 'POST', path: '/jobs', headers: { Authorization: `Bearer ${tokenFor('service')}`, 'Content-Length': String(json.length) } }) + json);
      expect(await client.response()).toMatchObject({ status: 415, body: { error: { code: 'unsupported_media_type' } } });
    } finally {
      client.end();
    }
    // No body at all is still a missing body.
    expectError(await request(app).post('/jobs').set(bearer('service')), 422, 'validation_error');
  });

  it('answers malformed JSON sent to a route that takes no body 400 and any field 422, and does nothing; {} or a non-JSON body is ignored', async () => {
    const enqueued = await request(app).post('/jobs').set(bearer('service')).send({ type: 'noop', payload: {} });
    const jobId = enqueued.body.jobId as string;
    const cancel = () => request(app).post(`/jobs/${jobId}/cancel`).set(bearer('service'));
    expectError(await cancel().set('Content-Type', 'application/json').send('{x'), 400, 'bad_request');
    expect((await request(app).get(`/jobs/${jobId}`).set(bearer('service'))).body.status).toBe('queued');
    // A field it does not take is refused, as unknown body fields are everywhere; {} is no body.
    expectError(await cancel().send({ reason: 'x' }), 422, 'validation_error');
    expectError(await cancel().send({ $where: 'sleep(1000)' }), 422, 'validation_error');
    expectError(await cancel().set('Content-Type', 'application/json').send('[1,2]'), 422, 'validation_error');
    expect((await request(app).get(`/jobs/${jobId}`).set(bearer('service'))).body.status).toBe('queued');
    expect((await cancel().set('Content-Type', 'text/plain').send('{x')).status).toBe(200);
    expect((await cancel().send({})).status).toBe(200);
    expect((await request(app).get(`/jobs/${jobId}`).set(bearer('service'))).body.status).toBe('cancelled');
  });

  it('keeps the connection of a small unread body usable (drained, not closed)', async () => {
    const client = new RawClient(port);
    try {
      const body = '{"type":"noop","payload":{}}';
      client.write(head({ method: 'POST', path: '/jobs', headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } }) + body);
      const res = await client.response();
      expect(res.status).toBe(401);
      expect(res.headers.connection).not.toBe('close');
      expect(client.closed).toBe(false);
    } finally {
      client.end();
    }
  });
});

describe('the API process (its own event loop, as in production)', () => {
  let api: ServiceProcess | undefined;
  let apiPort = 0;
  beforeAll(async () => {
    const started = await startApiProcess({ MONGODB_URI: testDatabaseUri(), MONGODB_DB_NAME: `${db.dbName}_process`, JWT_SECRET: TEST_JWT_SECRET, SCHEDULER_INTERVAL_MS: '0', RETENTION_INTERVAL_MS: '0' });
    api = started.api;
    apiPort = Number(new URL(started.baseUrl).port);
  });
  afterAll(async () => {
    await api?.stop();
  });

  // Closing at once with the upload still arriving would be a TCP reset, which loses the answer for
  // a client still writing (some in every 30 here); the connection lingers briefly instead.
  it('gets that early 401 to a client still sending a 20 MB upload, intact, every time (no reset)', async () => {
    const body = Buffer.alloc(20 * 1024 * 1024, 'x');
    const outcomes: string[] = [];
    for (let i = 0; i < 30; i += 1) {
      outcomes.push(
        await new Promise<string>((resolve) => {
          const req = http.request(
            { host: '127.0.0.1', port: apiPort, method: 'POST', path: '/assets', agent: false, headers: { 'Content-Type': 'image/png', 'Content-Length': String(body.length) } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (chunk: Buffer) => chunks.push(chunk));
              res.on('end', () => resolve(`${res.statusCode} ${(JSON.parse(Buffer.concat(chunks).toString()) as { error: { code: string } }).error.code}`));
            },
          );
          req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
          req.end(body);
        }),
      );
    }
    expect(outcomes).toEqual(Array<string>(30).fill('401 unauthenticated'));
  });

});

describe('a body that stops arriving', () => {
  it(`is cut with 408 request_timeout once it has sent nothing for the idle timeout (${BODY_IDLE_MS} ms here)`, async () => {
    const client = new RawClient(port);
    try {
      client.write(head({ method: 'POST', path: '/jobs', headers: { Authorization: `Bearer ${tokenFor('service')}`, 'Content-Type': 'application/json', 'Content-Length': '100' } }));
      client.write('{"type":"noop",');
      const res = await client.response();
      expect(res).toMatchObject({ status: 408, headers: { connection: 'close' }, body: { error: { code: 'request_timeout', message: expect.any(String) } } });
      await client.serverClosed();
      expect(client.openForMs).toBeGreaterThanOrEqual(BODY_IDLE_MS - 50);
      expect(client.openForMs).toBeLessThan(BODY_IDLE_MS + 2_000);
    } finally {
      client.end();
    }
  });

  it('is not cut while it keeps sending, however slowly, within the idle timeout', async () => {
    const client = new RawClient(port);
    const body = JSON.stringify({ type: 'noop', payload: { sleepMs: 1 } });
    try {
      client.write(head({ method: 'POST', path: '/jobs', headers: { Authorization: `Bearer ${tokenFor('service')}`, 'Content-Type': 'application/json', 'Content-Length': String(body.length) } }));
      // Three pieces, each well within the idle timeout, the whole well beyond it.
      const pieces = [body.slice(0, 10), body.slice(10, 20), body.slice(20)];
      for (const piece of pieces) {
        client.write(piece);
        if (piece !== pieces.at(-1)) await new Promise((resolve) => setTimeout(resolve, BODY_IDLE_MS / 2));
      }
      expect((await client.response()).status).toBe(201);
    } finally {
      client.end();
    }
  });
});

describe('server timeouts from the configuration', () => {
  let api: RunningApi;
  const REQUEST_TIMEOUT_MS = 1_200;
  const HEADERS_TIMEOUT_MS = 600;

  beforeAll(async () => {
    const config = loadApiConfig({
      MONGODB_URI: testDatabaseUri(),
      MONGODB_DB_NAME: `${db.dbName}_api`,
      JWT_SECRET: TEST_JWT_SECRET,
      PORT: '0',
      SCHEDULER_INTERVAL_MS: '0',
      RETENTION_INTERVAL_MS: '0',
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      HTTP_BODY_IDLE_TIMEOUT_MS: '10000',
    });
    api = await startApi({ config, logger: silentLogger });
  });
  afterAll(async () => {
    await api?.connection.dropDatabase().catch(() => undefined);
    await api?.close();
  });

  it('cuts a body dripped a byte at a time (never idle) once the request timeout has passed', async () => {
    const client = new RawClient(api.port);
    const drip = setInterval(() => client.write('x'), 100);
    try {
      client.write(head({ method: 'POST', path: '/jobs', headers: { Authorization: `Bearer ${tokenFor('service')}`, 'Content-Type': 'application/json', 'Content-Length': '100000' } }));
      await client.serverClosed(REQUEST_TIMEOUT_MS + 5_000);
      expect(client.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(client.openForMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
      // Node checks the timeouts every quarter of the shorter one.
      expect(client.openForMs).toBeLessThan(REQUEST_TIMEOUT_MS + 1_500);
    } finally {
      clearInterval(drip);
      client.end();
    }
  });

  it('cuts headers dripped slowly once the headers timeout has passed', async () => {
    const client = new RawClient(api.port);
    const drip = setInterval(() => client.write(`X-Slow-${randomBytes(2).toString('hex')}: 1\r\n`), 100);
    try {
      client.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      await client.serverClosed(HEADERS_TIMEOUT_MS + 5_000);
      expect(client.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(await client.response()).toMatchObject({ status: 408, body: { error: { code: 'request_timeout' } } });
      expect(client.openForMs).toBeLessThan(HEADERS_TIMEOUT_MS + 1_500);
    } finally {
      clearInterval(drip);
      client.end();
    }
  });

  it("answers what Node's parser refuses with its status and the contract's error body, and closes the connection", async () => {
    const auth = `Authorization: Bearer ${tokenFor('service')}\r\n`;
    const cases: [string, string, number, string][] = [
      ['a length and chunked', `POST /jobs HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`, 400, 'bad_request'],
      ['two lengths', `POST /jobs HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 5\r\nContent-Length: 6\r\n\r\n`, 400, 'bad_request'],
      ['a negative length', `POST /jobs HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: -1\r\n\r\n`, 400, 'bad_request'],
      ['a header name with a space', `GET /jobs HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n`, 400, 'bad_request'],
      ['a garbage request line', 'NOT HTTP AT ALL\r\n\r\n', 400, 'bad_request'],
      ['headers over the limit', `GET /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
    ];
    for (const [what, bytes, status, code] of cases) {
      const client = new RawClient(api.port);
      try {
        client.write(bytes);
        const res = await client.response();
        expect({ what, status: res.status, body: res.body }).toEqual({ what, status, body: { error: { code, message: expect.any(String) } } });
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        await client.serverClosed();
      } finally {
        client.end();
      }
    }
  });

  it('lets a long-poll lease wait longer than the request timeout (a GET without a body is complete with its headers)', async () => {
    const started = Date.now();
    const res = await fetch(`http://127.0.0.1:${api.port}/jobs/lease?wait=2`, {
      headers: { Authorization: `Bearer ${tokenFor('worker')}`, 'X-Worker-Id': 'long-poll-worker' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ jobs: [] });
    expect(Date.now() - started).toBeGreaterThan(REQUEST_TIMEOUT_MS);
  });

  it('serves ordinary requests as before', async () => {
    const res = await fetch(`http://127.0.0.1:${api.port}/jobs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokenFor('service')}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'noop', payload: {} }),
    });
    expect(res.status).toBe(201);
    expect((await fetch(`http://127.0.0.1:${api.port}/healthz`)).status).toBe(200);
  });
});
