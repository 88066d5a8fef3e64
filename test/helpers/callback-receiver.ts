import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedCallback {
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
  path: string;
}

/** What the receiver does with one request: answer with a status (and headers), or never answer. */
export type Reply = { status: number; headers?: Record<string, string> } | 'never';

/**
 * A callback receiver on 127.0.0.1: records every request it gets (raw body and headers) and answers
 * as `reply` says (by default 200). Requests it never answers are cut when it closes.
 */
export async function startReceiver(reply: (req: ReceivedCallback, index: number) => Reply = () => ({ status: 200 })): Promise<{
  url: string;
  host: string;
  port: number;
  received: ReceivedCallback[];
  setReply(next: (req: ReceivedCallback, index: number) => Reply): void;
  close(): Promise<void>;
}> {
  const received: ReceivedCallback[] = [];
  let current = reply;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const got: ReceivedCallback = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), path: req.url ?? '/' };
      received.push(got);
      const answer = current(got, received.length - 1);
      if (answer === 'never') return;
      res.writeHead(answer.status, { 'Content-Type': 'text/plain', ...answer.headers });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/jobs`,
    host: `127.0.0.1:${port}`,
    port,
    received,
    setReply: (next) => {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
