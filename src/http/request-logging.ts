import { randomUUID } from 'node:crypto';

import type { Express, Request, RequestHandler } from 'express';

import type { Logger } from '../logger';

declare module 'express-serve-static-core' {
  interface Request {
    /** The request's id: the caller's `X-Request-Id` when it is a sane one, else a new UUID. */
    id: string;
    /** A logger bound to the request id (made on first use). */
    log: Logger;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

type Level = 'debug' | 'info' | 'error';

/** 2xx and 3xx at debug (no line in production), 4xx at info, 5xx at error. */
function levelOf(statusCode: number): Level {
  return statusCode >= 500 ? 'error' : statusCode >= 400 ? 'info' : 'debug';
}

/**
 * Request ids and one log line per request, on pino directly. pino-http built a child logger and
 * its serializers for every request before knowing whether the line would be written (a 2xx is at
 * debug, so in production it is not): a tenth of the API's allocations in the bench's profile. Here a
 * request that logs nothing costs its id, a header and a listener; `req.log` is bound on first use.
 */
export function requestLogging(app: Express, logger: Logger): RequestHandler {
  // `req.log` on the app's request prototype: nothing is made for a request that never logs.
  const bound = new WeakMap<object, Logger>();
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request): Logger {
      let log = bound.get(this);
      if (!log) bound.set(this, (log = logger.child({ reqId: this.id })));
      return log;
    },
  });
  return (req, res, next) => {
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', id);
    req.id = id;
    const startedAt = Date.now();
    res.once('close', () => {
      const level = levelOf(res.statusCode);
      if (!logger.isLevelEnabled(level)) return;
      const completed = res.writableFinished;
      const workerId = req.headers['x-worker-id'];
      logger[completed ? level : 'info'](
        {
          reqId: id,
          // No headers: they carry bearer tokens (pino-http logged them with every line).
          req: { method: req.method, url: req.originalUrl, ...(typeof workerId === 'string' ? { workerId } : {}) },
          res: { statusCode: res.statusCode },
          responseTime: Date.now() - startedAt,
        },
        completed ? 'request completed' : 'request aborted',
      );
    });
    next();
  };
}
