import mongoose from 'mongoose';

import { UnavailableError, type AppError } from '../errors';

const { MongoNetworkError, MongoServerSelectionError, MongoNotConnectedError, MongoTopologyClosedError, MongoNetworkTimeoutError } =
  mongoose.mongo;

/** Duplicate key: recognised by code only (the test server sends no keyValue/keyPattern). */
export function isDuplicateKeyError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}

/** Maps "the database is not reachable" driver errors to 503 `unavailable`. */
export function translateStorageError(err: Error): AppError | undefined {
  if (
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNetworkError ||
    err instanceof MongoNetworkTimeoutError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError ||
    (err instanceof mongoose.Error && err.name === 'MongooseServerSelectionError')
  ) {
    return new UnavailableError();
  }
  return undefined;
}
