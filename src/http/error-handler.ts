import type { ErrorRequestHandler, RequestHandler, Response } from 'express';

import { AppError, NotFoundError, PayloadTooLargeError, RateLimitedError, BadRequestError, coerceError, UnsupportedMediaTypeError, type ErrorCode } from '../errors';
import { ERROR_CATALOG, ERROR_CODES } from '../error-catalog';
import { closeIfBodyPending } from './pending-body';

/** Error codes as HTTP statuses, read from the error catalog (the one table of codes). */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = Object.freeze(
  Object.fromEntries(ERROR_CODES.map((code) => [code, ERROR_CATALOG[code].status])) as Record<ErrorCode, number>,
);

/** Converts an error from outside the domain (a driver, a parser) into an AppError, if it knows it. */
export type ErrorTranslator = (err: Error) => AppError | undefined;

export const notFoundRoute: RequestHandler = (req) => {
  throw new NotFoundError('not_found', `no route for ${req.method} ${req.path}`);
};

/** body-parser marks its errors with a `type`; these are client errors, never 500s. */
function translateBodyParserError(err: Error): AppError | undefined {
  const type = (err as { type?: unknown }).type;
  switch (type) {
    case 'entity.parse.failed':
      return new BadRequestError('request body is not valid JSON');
    case 'entity.too.large':
      return new PayloadTooLargeError('request body exceeds the size limit');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new UnsupportedMediaTypeError('unsupported body encoding or charset');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
    case 'parameters.too.many':
      return new BadRequestError('request body could not be read');
    default:
      return undefined;
  }
}

/**
 * Errors from Express and its parsers that carry a 4xx `status` (http-errors style) are the
 * client's fault whatever their type: a path parameter that is not valid percent-encoding (the
 * router's URIError), a compressed body that does not inflate (zlib's errors, status 400 without a
 * body-parser `type`). They pass through as client errors, never as 500s (Fastify's rule).
 */
function translateClientStatusError(err: Error): AppError | undefined {
  const { status, statusCode } = err as { status?: unknown; statusCode?: unknown };
  const code = typeof status === 'number' ? status : statusCode;
  if (typeof code !== 'number' || code < 400 || code > 499) return undefined;
  if (code === 413) return new PayloadTooLargeError('request body exceeds the size limit');
  if (code === 415) return new UnsupportedMediaTypeError('unsupported body encoding or media type');
  if (err instanceof URIError) return new BadRequestError('the request path is not valid percent-encoding');
  return new BadRequestError('the request could not be read');
}

export function errorHandler(translators: readonly ErrorTranslator[]): ErrorRequestHandler {
  return (rawErr, req, res, _next) => {
    const err = coerceError(rawErr);
    if (res.headersSent) {
      // Mid-response (a streamed body failed): no error answer can follow; end the connection.
      req.log.warn({ err }, 'error after the response started');
      res.destroy();
      return;
    }
    const known =
      err instanceof AppError
        ? err
        : (translateBodyParserError(err) ?? translators.map((t) => t(err)).find((e) => e !== undefined) ?? translateClientStatusError(err));
    if (!known) {
      req.log.error({ err }, 'unhandled error');
      res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
      return;
    }
    if (STATUS_BY_CODE[known.code] >= 500) req.log.warn({ err, cause: err === known ? undefined : err.message }, known.message);
    // An early answer (401, 403, ...) to a request whose body was never read: do not read it now either.
    closeIfBodyPending(req, res);
    sendError(res, known);
  };
}

/** Answers with the error shape `{ error: { code, message, details? } }` and the status its code maps to. */
export function sendError(res: Response, known: AppError): void {
  if (known instanceof RateLimitedError) res.setHeader('Retry-After', String(known.retryAfterSeconds));
  const body: { code: string; message: string; details?: unknown } = { code: known.code, message: known.message };
  if (known.details !== undefined) body.details = known.details;
  res.status(STATUS_BY_CODE[known.code]).json({ error: body });
}
