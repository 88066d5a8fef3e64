import { Writable } from 'node:stream';

import pino from 'pino';
import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();

function capturingLogger(level: string): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

describe('request logging', () => {
  it('one line per request at the end: 2xx at debug (none at info), 4xx at info, with the request id, route and status; no headers', async () => {
    const { logger, lines } = capturingLogger('info');
    const app = buildTestApp(db, { logger });
    await request(app).get('/healthz').set('X-Request-Id', 'ok-1').expect(200);
    await request(app).get('/jobs/job_000000000000000000000000').set('X-Request-Id', 'missing-1').set(bearer('admin')).expect(404);
    await request(app).get('/jobs').set('X-Request-Id', 'anon-1').expect(401);
    const requestLines = lines.filter((l) => l.msg === 'request completed');
    expect(requestLines.map((l) => l.reqId)).toEqual(['missing-1', 'anon-1']);
    expect(requestLines[0]).toMatchObject({ level: 30, req: { method: 'GET', url: '/jobs/job_000000000000000000000000' }, res: { statusCode: 404 } });
    expect(typeof requestLines[0]!.responseTime).toBe('number');
    // The bearer token never reaches the log.
    expect(JSON.stringify(lines)).not.toContain('Bearer');
  });

  it('at debug every request is logged, and a generated request id is sent back', async () => {
    const { logger, lines } = capturingLogger('debug');
    const app = buildTestApp(db, { logger });
    const res = await request(app).get('/healthz').expect(200);
    const id = res.headers['x-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines.filter((l) => l.msg === 'request completed')).toEqual([expect.objectContaining({ level: 20, reqId: id, res: { statusCode: 200 } })]);
  });

  it("a handler's own lines (req.log) carry the request id", async () => {
    const { logger, lines } = capturingLogger('info');
    const app = buildTestApp(db, { logger, bodyIdleTimeoutMs: 50 });
    // A body that never arrives: the idle cut logs through req.log.
    const { createServer } = await import('node:http');
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as { port: number }).port;
    const { connect } = await import('node:net');
    const socket = connect(port, '127.0.0.1');
    const token = bearer('service').Authorization;
    socket.write(`POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\nX-Request-Id: slow-1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{`);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
      socket.on('close', () => resolve(text));
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(answer).toContain('408');
    const cut = lines.find((l) => typeof l.msg === 'string' && (l.msg as string).includes('sent nothing for too long'));
    expect(cut).toMatchObject({ reqId: 'slow-1' });
  });
});
