import mongoose from 'mongoose';

import { UnavailableError, type AppError } from '../errors';

const {
  MongoError,
  MongoNetworkError,
  MongoServerSelectionError,
  MongoNotConnectedError,
  MongoTopologyClosedError,
  MongoServerClosedError,
  MongoWriteConcernError,
  MongoOperationTimeoutError,
} = mongoose.mongo;

/** Duplicate key: recognised by code only (the test server sends no keyValue/keyPattern). */
export function isDuplicateKeyError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}

/**
 * Server error codes that mean "this node cannot serve the operation right now" (a replica set
 * electing a primary, a node shutting down, a write concern that timed out, an operation out of
 * time). The driver retries most of them once; what is left is the caller's to retry later.
 */
const TRANSIENT_SERVER_CODES: ReadonlySet<number> = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  50, // MaxTimeMSExpired
  64, // WriteConcernFailed (wtimeout)
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/**
 * Socket errors raised by Node itself. The driver lets one through unwrapped: a command written to a
 * socket the server has just closed fails with a plain Error, code EPIPE ("This socket has been
 * ended by the other party"), from Connection.writeCommand (seen when the database stops mid-request).
 */
const NETWORK_SYSCALL_CODES: ReadonlySet<string> = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'EAI_AGAIN']);

/** Labels the driver puts on errors whose operation may succeed when tried again. */
const TRANSIENT_LABELS = ['RetryableWriteError', 'ResetPool', 'SystemOverloadedError'];

function isUnavailable(err: unknown): boolean {
  if (
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNetworkError || // includes timeouts and "pool cleared by the monitor"
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError ||
    err instanceof MongoServerClosedError ||
    err instanceof MongoWriteConcernError ||
    err instanceof MongoOperationTimeoutError
  ) {
    return true;
  }
  if (err instanceof mongoose.Error && err.name === 'MongooseServerSelectionError') return true;
  const { code } = err as { code?: unknown };
  if (typeof code === 'string' && NETWORK_SYSCALL_CODES.has(code)) return true;
  if (err instanceof MongoError) {
    if (typeof err.code === 'number' && TRANSIENT_SERVER_CODES.has(err.code)) return true;
    if (TRANSIENT_LABELS.some((label) => err.hasErrorLabel(label))) return true;
  }
  return false;
}

/**
 * The error inside a wrapper: `cause` (services wrap driver errors in their own), or the driver's
 * own wrapping, e.g. a bulk write (insertMany, bulkWrite) that never reached the server is a
 * MongoBulkWriteError with no write errors whose `errorResponse` is the server selection error.
 */
function innerError(err: Error): unknown {
  if (err.cause instanceof Error) return err.cause;
  const { errorResponse } = err as { errorResponse?: unknown };
  return errorResponse instanceof Error && errorResponse !== err ? errorResponse : undefined;
}

/**
 * Maps "the database is not reachable (or cannot serve us now)" driver errors to 503 `unavailable`,
 * looking through a few levels of wrapping. Recognised by class, code and label, never by message.
 */
export function translateStorageError(err: Error): AppError | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    if (isUnavailable(current)) return new UnavailableError();
    current = innerError(current);
  }
  return undefined;
}
