import type { Express } from 'express';
import pino from 'pino';

import { createApp } from '../../src/app';
import { wireApi, type ApiWiringParams } from '../../src/wiring';
import type { TestDatabase } from './database';
import { TEST_JWT_SECRET } from './tokens';

export const silentLogger = pino({ level: 'silent' });

/** The real app on the test file's database, with overridable wiring. */
export function buildTestApp(db: TestDatabase, overrides: Partial<ApiWiringParams> = {}): Express {
  return createApp(
    wireApi({
      connection: db.connection,
      logger: silentLogger,
      jwtSecret: TEST_JWT_SECRET,
      readyTimeoutMs: 1_000,
      ...overrides,
    }),
  );
}
