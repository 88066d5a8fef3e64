import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** Above this many unread bytes (or an unknown length), an early answer closes the connection instead of draining them. */
export const DRAIN_LIMIT_BYTES = 64 * 1024;

/** After such an answer, what still arrives is discarded (not parsed) for at most this long, then the socket is closed. */
export const LINGER_MS = 1_000;

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
 * read — the answer carries `Connection: close` and the connection is closed after it.
 */
export function closeIfBodyPending(req: IncomingMessage, res: { headersSent: boolean; setHeader(name: string, value: string): unknown }): void {
  if (res.headersSent || !hasPendingBody(req)) return;
  const length = Number(req.headers['content-length']);
  if (req.headers['transfer-encoding'] !== undefined || !Number.isFinite(length) || length > DRAIN_LIMIT_BYTES) {
    res.setHeader('Connection', 'close');
    lingerBeforeClosing(req.socket);
  }
}

/**
 * Node closes a `Connection: close` socket (destroySoon) as soon as the answer is written. With the
 * client's unread bytes still arriving, that close is a TCP reset, and a client that is still sending
 * often gets the reset instead of the answer (measured: 9 of 30 early 401s to 20 MB uploads lost).
 * So, like nginx's lingering close, the socket is half-closed after the answer (the client sees the
 * end and stops sending), and what still arrives is discarded until the client closes its side or
 * LINGER_MS have passed (bounded by time, not bytes: a byte bound would reset fast clients again).
 */
function lingerBeforeClosing(socket: Socket): void {
  socket.destroySoon = function destroyAfterLingering(this: Socket): void {
    if (this.destroyed) return;
    const close = (): void => {
      clearTimeout(timer);
      this.destroy();
    };
    const timer = setTimeout(close, LINGER_MS);
    timer.unref();
    this.once('end', close);
    this.once('close', () => clearTimeout(timer));
    this.end();
  };
}
