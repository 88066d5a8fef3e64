import http, { type RequestListener, type Server } from 'node:http';

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
  return http.createServer(
    {
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(5_000, Math.max(100, Math.floor(shortest / 4))),
    },
    app,
  );
}
