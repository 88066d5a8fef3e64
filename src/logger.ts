import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(params: { level: string; name: string }): Logger {
  return pino({
    name: params.name,
    level: params.level,
    // Never log credentials, even when a request object is logged whole.
    redact: ['req.headers.authorization', 'headers.authorization'],
  });
}
