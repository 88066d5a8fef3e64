import http, { STATUS_CODES, type RequestListener, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { ERROR_CATALOG, type ErrorCode } from '../error-catalog';

/** How long a client may take to send its request; answers (long-polls) are not counted. */
export interface HttpTimeouts {
  /** Until the request's headers are complete (Node's `headersTimeout`). */
  headersTimeoutMs: number;
  /**
   * Until the whole request, headers and body, is received (Node's `requestTimeout`); a request
   * without a body is complete with its headers, so a long-poll GET may wait any time for its answer.
   * Uploads (assets, result files) must arrive within it too.
   */
  requestTimeoutMs: number;
  /** How long a body may send nothing (the app's `limitBodyIdleTime`, src/http/body.ts). */
  bodyIdleTimeoutMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: Readonly<HttpTimeouts> = Object.freeze({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, bodyIdleTimeoutMs: 10_000 });

/**
 * An HTTP server for the app with the slow-client timeouts. Node checks the first two only every
 * `connectionsCheckingInterval` (default 30 s, which would let a client overstay by that much), so
 * the check runs four times per the shorter timeout (at most once per 100 ms, at least every 5 s).
 * Over either, Node answers 408 and closes the connection.
 */
export function createHttpServer(app: RequestListener, timeouts: Pick<HttpTimeouts, 'headersTimeoutMs' | 'requestTimeoutMs'>): Server {
  const shortest = Math.min(timeouts.headersTimeoutMs, timeouts.requestTimeoutMs);
  const server = http.createServer(
    {
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(5_000, Math.max(100, Math.floor(shortest / 4))),
    },
    app,
  );
  server.on('clientError', answerUnreadableRequest);
  return server;
}

/** What Node's parser refuses (or times out), as the error code it answers with; Node's own statuses. */
function codeOfClientError(err: Error & { code?: string }): { code: ErrorCode; message: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'headers_too_large', message: 'the request line and headers are over the size limit' };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { code: 'payload_too_large', message: 'the chunk extensions are over the size limit' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'request_timeout', message: 'the request did not arrive in full in time' };
    default:
      return { code: 'bad_request', message: 'the request is not valid HTTP/1.1 and could not be read' };
  }
}

/**
 * Node answers a request its parser refuses (conflicting or bad lengths, a malformed header or
 * request line, headers over the limit) or one that timed out with a bare status line. This answers
 * with the same status and the contract's error body, then closes the connection (the parser
 * cannot go on after such an error).
 */
function answerUnreadableRequest(err: Error & { code?: string }, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const { code, message } = codeOfClientError(err);
  const status = ERROR_CATALOG[code].status;
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
