import type { ErrorRequestHandler, Request, RequestHandler } from 'express';

import { BadRequestError, PayloadTooLargeError, RateLimitedError, UnsupportedMediaTypeError } from '../errors';

/** Default for ASSET_UPLOAD_CONCURRENCY. */
export const DEFAULT_UPLOAD_CONCURRENCY = 4;

/**
 * 413 from the headers alone, before a byte of the body is read: a declared Content-Length over the
 * limit (a chunked body is cut off by the reader once it passes the limit). A compressed body is
 * refused (415) too: its stored bytes would not be the upload's, and inflating it would lift the bound.
 * `what` names the upload in the answers ("an image", "a result file").
 */
export function refuseOversizedBody(maxBytes: number, what: string): RequestHandler {
  return (req, _res, next) => {
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity') throw new UnsupportedMediaTypeError(`Content-Encoding must be identity: send the bytes of ${what} as they are`);
    const declared = req.headers['content-length'];
    // Node's parser has already refused a Content-Length that is not a number.
    if (declared !== undefined && Number(declared) > maxBytes) {
      throw new PayloadTooLargeError(`the body is ${declared} bytes; ${what} may be at most ${maxBytes}`);
    }
    next();
  };
}

/**
 * At most `max` uploads stream at once in this process (each holds a socket, a GridFS chunk buffer
 * and database writes); one more is answered 429 `rate_limited` with Retry-After at once, before
 * its body is read, rather than queued: a client retries sooner than a queue would drain.
 */
export function limitConcurrentUploads(max: number): RequestHandler {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`upload concurrency must be a whole number >= 1, got ${String(max)}`);
  let active = 0;
  return (_req, res, next) => {
    if (active >= max) throw new RateLimitedError(1, `${max} uploads are already in progress on this API instance; retry later`);
    active += 1;
    // 'close' comes once per response, answered or cut off, so the slot is always given back.
    res.once('close', () => {
      active -= 1;
    });
    next();
  };
}

/**
 * The request body as the chunks arrive, for a domain service to stream into storage. Stopping
 * early (an error, a limit) leaves the request undestroyed, so an error answer can still be sent;
 * a client that hangs up mid-body is a 400, not a 500.
 */
export async function* requestBody(req: Request): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
  } catch {
    throw new BadRequestError('the request body could not be read (the client hung up mid-upload?)');
  }
}

/**
 * An upload refused before its body was read whole closes the connection after the answer, so the
 * server neither reads the rest (the body may be huge or endless) nor leaves it to be taken for the
 * next request on a kept-alive connection.
 */
export const closeConnectionOnUnreadBody: ErrorRequestHandler = (err, req, res, next) => {
  if (!req.complete && !res.headersSent) res.setHeader('Connection', 'close');
  next(err);
};
