import type { IncomingMessage } from 'node:http';

/** Above this many unread bytes (or an unknown length), an early answer closes the connection instead of draining them. */
export const DRAIN_LIMIT_BYTES = 64 * 1024;

/** Whether the request announced a body that has not been received in full yet. */
export function hasPendingBody(req: IncomingMessage): boolean {
  if (req.complete) return false;
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = Number(req.headers['content-length'] ?? 0);
  return Number.isFinite(length) && length > 0;
}

/**
 * Before answering a request whose body was not read (401, 403, 404, ...): a small unread body is
 * drained by Node so the connection stays usable; a large one, or one of unknown length, is not
 * read at all — the answer carries `Connection: close` and Node closes the socket after it.
 */
export function closeIfBodyPending(req: IncomingMessage, res: { headersSent: boolean; setHeader(name: string, value: string): unknown }): void {
  if (res.headersSent || !hasPendingBody(req)) return;
  const length = Number(req.headers['content-length']);
  if (req.headers['transfer-encoding'] !== undefined || !Number.isFinite(length) || length > DRAIN_LIMIT_BYTES) {
    res.setHeader('Connection', 'close');
  }
}
