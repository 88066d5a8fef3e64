import http from 'node:http';
import net from 'node:net';

export interface UploadAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Body bytes handed to the socket before the answer came (what the server read is at most this). */
  bytesSent: number;
}

/**
 * Sends only the request head (method, path, headers, blank line) on a fresh socket and reads the
 * answer, without ever sending a body byte. Resolves once the server has answered and closed the
 * socket; `closed` is false when it answered but left the socket open past `closeWithinMs`.
 */
export function sendHeadOnly(params: { baseUrl: string; head: string; timeoutMs?: number; closeWithinMs?: number }): Promise<{ status: number; headers: Record<string, string>; body: string; closed: boolean }> {
  const url = new URL(params.baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    const parts: Buffer[] = [];
    let answeredAt: number | undefined;
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      clearInterval(watcher);
      socket.destroy();
      const raw = Buffer.concat(parts).toString('latin1');
      const [head = '', body = ''] = raw.split('\r\n\r\n', 2);
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body, closed });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the request head within ${params.timeoutMs ?? 10_000} ms`));
    }, params.timeoutMs ?? 10_000);
    // Once an answer is in, the server has `closeWithinMs` to close the connection.
    const watcher = setInterval(() => {
      if (answeredAt !== undefined && Date.now() - answeredAt > (params.closeWithinMs ?? 2_000)) finish(false);
    }, 20);
    socket.on('data', (data: Buffer) => {
      parts.push(data);
      answeredAt ??= Date.now();
    });
    socket.on('end', () => (answeredAt === undefined ? reject(new Error('the server closed the socket without answering')) : finish(true)));
    socket.on('error', reject);
    socket.write(params.head);
  });
}

/**
 * POSTs a body of `totalBytes` (starting with `head`, then filler) as fast as the server takes it,
 * with a Content-Length or, when `chunked`, without one. Stops sending as soon as the answer arrives,
 * so a server that answers early (a limit, a wrong type) is seen answering early; errors from
 * writing into a connection the server closed after answering are expected and ignored.
 */
export function streamUpload(params: {
  baseUrl: string;
  path: string;
  headers: Record<string, string>;
  head: Buffer;
  totalBytes: number;
  chunked?: boolean;
  /** Resolves when the test lets the rest of the body go (after `holdAfterBytes` were sent). */
  hold?: { afterBytes: number; release: Promise<void> };
  signal?: AbortSignal;
}): Promise<UploadAnswer> {
  const url = new URL(params.baseUrl);
  const filler = Buffer.alloc(256 * 1024, 0x42);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: params.path,
      agent: false,
      headers: { ...params.headers, ...(params.chunked ? {} : { 'Content-Length': String(params.totalBytes) }) },
    });
    let sent = 0;
    let answered = false;
    let held = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), bytesSent: sent });
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    params.signal?.addEventListener('abort', () => req.destroy(new Error('aborted by the test')));
    const next = (): Buffer => {
      const room = Math.min(filler.length, params.totalBytes - sent);
      return sent === 0 ? Buffer.concat([params.head, filler]).subarray(0, room) : filler.subarray(0, room);
    };
    const pump = (): void => {
      while (!answered && sent < params.totalBytes) {
        if (params.hold && !held && sent >= params.hold.afterBytes) {
          held = true;
          void params.hold.release.then(pump);
          return;
        }
        const piece = next();
        sent += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    pump();
  });
}
