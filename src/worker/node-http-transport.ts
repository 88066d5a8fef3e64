import http from 'node:http';
import https from 'node:https';

import type { JsonTransport, TransportAnswer } from '../client/json-transport';

/**
 * The worker runtime's JsonTransport: node:http with keep-alive connections. Node's fetch builds
 * web streams, abort signals and resource-timing entries for every call; for a worker, which makes
 * a lease or report call every few jobs, that was about 40 % of its CPU (profile in
 * docs/benchmarks.md). The client package itself stays on fetch. Free connections close before the
 * server's keep-alive timeout (Node's agent follows the server's Keep-Alive hint).
 */
export function nodeHttpTransport(): JsonTransport {
  const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };
  return (request) =>
    new Promise<TransportAnswer>((resolve, reject) => {
      const url = new URL(request.url);
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') return reject(new TypeError(`unsupported protocol ${url.protocol}`));
      if (request.signal?.aborted) return reject(abortError(request.signal));
      const headers: Record<string, string | number> = { ...request.headers };
      if (request.body !== undefined) headers['Content-Length'] = Buffer.byteLength(request.body);
      const req = (secure ? https : http).request(url, { method: request.method, headers, agent: agents[secure ? 'https:' : 'http:'] }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('error', fail);
        res.once('end', () => {
          done();
          const raw = res.headers;
          resolve({
            status: res.statusCode ?? 0,
            headers: { get: (name) => headerValue(raw[name.toLowerCase()]) },
            body: Buffer.concat(chunks),
          });
        });
      });
      const timer = setTimeout(() => fail(new Error(`no answer within ${request.timeoutMs} ms`)), request.timeoutMs);
      const onAbort = (): void => fail(abortError(request.signal!));
      request.signal?.addEventListener('abort', onAbort, { once: true });
      function done(): void {
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
      }
      function fail(err: Error): void {
        done();
        req.destroy(err);
        reject(err);
      }
      req.once('error', fail);
      req.end(request.body);
    });
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(', ') : value;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError');
}
