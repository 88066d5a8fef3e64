import type { Connection } from 'mongoose';

import type { AppDeps } from './app';
import type { Logger } from './logger';
import { pingDatabase } from './storage/connection';
import { translateStorageError } from './storage/errors';

export interface ApiWiringParams {
  connection: Connection;
  logger: Logger;
  jwtSecret: string;
  /** Upper bound for the readiness ping. */
  readyTimeoutMs: number;
}

/** Builds every dependency of the HTTP app from one database connection (used by main and tests). */
export function wireApi(params: ApiWiringParams): AppDeps {
  const { connection } = params;
  return {
    logger: params.logger,
    jwtSecret: params.jwtSecret,
    isDatabaseReady: () => pingDatabase(connection, params.readyTimeoutMs),
    errorTranslators: [translateStorageError],
  };
}
