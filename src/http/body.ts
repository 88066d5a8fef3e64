import type { IncomingMessage } from 'node:http';

import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

import { JSON_BODY_LIMIT_BYTES } from '../contract/jobs';
import type { JsonBody } from '../contract/route';
import { PayloadTooLargeError, RequestTimeoutError, UnsupportedMediaTypeError, ValidationError } from '../errors';
import { sendError } from './error-handler';
import { hasPendingBody } from './pending-body';
import { unsafeKeyError } from './sanitize';

/**
 * Request bodies are read only once the caller is known to be allowed (API.md: 401 and 403 come
 * before a body is read or validated). So nothing parses bodies app-wide: each route that takes a
 * JSON body lists `readJsonBody` after its permission check, and an unauthenticated request's body
 * is never read (see src/http/pending-body.ts).
 */

/** The largest JSON body, in bytes (the contract's 1 MB). */
export const BODY_LIMIT = JSON_BODY_LIMIT_BYTES;

/** A body that sends nothing for this long is cut (408); Node's requestTimeout bounds the whole request. */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 10_000;

/**
 * Cuts a request whose body stops arriving: when the socket has been silent for `idleMs` while the
 * body is still incomplete, answers 408 `request_timeout` (Node then closes the connection). Armed
 * only for authenticated requests with a body, so a long-poll GET (no body) is never affected.
 */
export function limitBodyIdleTime(idleMs: number): RequestHandler {
  return (req, res, next) => {
    if (idleMs <= 0 || !hasPendingBody(req)) {
      next();
      return;
    }
    // The socket's inactivity timer: any bytes received reset it, so a slow but steady body passes
    // (Node's requestTimeout bounds that one). Listened to on the response, which Node notifies
    // whether or not the body is complete, so an unhandled timeout never destroys the socket.
    const disarm = (): void => {
      res.off('timeout', onTimeout);
      // 0 is Node's own value while a request runs (the server has no `timeout`); once the answer is
      // finished, Node has set its keep-alive timeout, which must stay.
      if (!res.writableFinished && !req.socket.destroyed) req.socket.setTimeout(0);
    };
    const onTimeout = (): void => {
      if (!hasPendingBody(req)) {
        disarm();
        return;
      }
      req.log.info({ idleMs }, 'request body sent nothing for too long; cut');
      res.off('timeout', onTimeout);
      if (res.headersSent) {
        req.socket.destroy();
        return;
      }
      res.setHeader('Connection', 'close');
      sendError(res, new RequestTimeoutError(`the request body sent nothing for ${idleMs} ms`));
    };
    res.setTimeout(idleMs, onTimeout);
    req.once('end', disarm);
    next();
  };
}

const parseJson = express.json({ limit: BODY_LIMIT, strict: false });

/**
 * Parses a JSON body (at most BODY_LIMIT, else 413; malformed: 400) and refuses unsafe keys in it
 * (422). One handler rather than a list, so route handlers after it keep their inferred types.
 */
export const readJsonBody: RequestHandler = readJsonBodyWith({});

/** The body reader a route's contract asks for (its batch items judged alone, or the whole body). */
export function jsonBodyReader(body: JsonBody): RequestHandler {
  return body.itemsJudgedAlone === undefined ? readJsonBody : readJsonBodyWith({ itemsJudgedAlone: body.itemsJudgedAlone });
}

/** Requests whose body has been read and checked: a guard that read it first spares the route a second key walk. */
const checkedBodies = new WeakSet<IncomingMessage>();

/**
 * The same, leaving the items of the top-level array `itemsJudgedAlone` to the route, which checks
 * each with `unsafeKeyError` on its own (one bad item of a batch never fails the others).
 */
function readJsonBodyWith(options: { itemsJudgedAlone?: string }): RequestHandler {
  return (req, res, next) => {
    if (checkedBodies.has(req)) {
      next();
      return;
    }
    // A body of another media type would be left unread and answered as a missing body (422).
    if (announcesBody(req) && req.is('application/json') === false) {
      const stated = req.headers['content-type'];
      next(new UnsupportedMediaTypeError(`the body must be application/json, not ${stated === undefined ? 'of no stated type' : JSON.stringify(stated.slice(0, 80))}`));
      return;
    }
    parseJsonBody(req, res, next, () => {
      checkedBodies.add(req);
      return unsafeKeyError(req.body, 'body', options);
    });
  };
}

/**
 * For routes that take no body: one sent as JSON is still read, so that malformed JSON is the 400
 * API.md gives any request, and a request with it does nothing. Only `{}` (or `null`) is accepted:
 * anything else is a field the route does not take (422, as unknown body fields are everywhere).
 * Bodies of other media types are left unread (Node drains or closes them after the answer).
 */
export const refuseMalformedJsonBody: RequestHandler = (req, res, next) => {
  if (!announcesBody(req) || req.readableEnded) {
    next();
    return;
  }
  parseJsonBody(req, res, next, () => {
    const body: unknown = req.body;
    req.body = undefined;
    const empty = body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);
    return empty ? undefined : new ValidationError('this route takes no body (send none, or {})', [{ field: 'body', message: 'this route takes no body' }]);
  });
};

/**
 * body-parser's JSON read, after refusing a declared length over the limit before a byte is read
 * (body-parser would read and drop the whole announced body first, so a client that announces much
 * and sends little waited for the idle timeout's 408 instead of the 413). `judge` sees the parsed body.
 */
function parseJsonBody(req: Request, res: Response, next: NextFunction, judge: () => Error | undefined): void {
  if (declaredLengthOverLimit(req)) {
    next(new PayloadTooLargeError('request body exceeds the size limit'));
    return;
  }
  parseJson(req, res, (err?: unknown) => {
    next(err !== undefined ? err : judge());
  });
}

/** Whether the request has a body, arrived yet or not (a small one comes with the headers). */
function announcesBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** A Content-Length above BODY_LIMIT on an uncompressed body (a compressed one's limit is on what it inflates to). */
function declaredLengthOverLimit(req: IncomingMessage): boolean {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
  const length = Number(req.headers['content-length']);
  return Number.isFinite(length) && length > BODY_LIMIT;
}
