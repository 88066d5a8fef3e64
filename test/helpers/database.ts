import { randomBytes } from 'node:crypto';

import type { Connection } from 'mongoose';

import { connectDatabase } from '../../src/storage/connection';
import { ensureIndexes } from '../../src/storage/indexes';

export function testDatabaseUri(): string {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('MONGODB_URI is not set: the global setup should have started a database');
  return uri;
}

export interface TestDatabase {
  readonly connection: Connection;
  readonly dbName: string;
}

/**
 * A fresh database for the calling test file: connected before its tests, dropped after them.
 * Test files run in parallel without seeing each other's data.
 */
export function useTestDatabase(): TestDatabase {
  const dbName = `test_${randomBytes(6).toString('hex')}`;
  let connection: Connection | undefined;
  beforeAll(async () => {
    connection = await connectDatabase({
      uri: testDatabaseUri(),
      dbName,
      timeoutMs: 5_000,
      writeConcern: 'majority',
      readPreference: 'primary',
    });
    await ensureIndexes(connection);
  });
  afterAll(async () => {
    if (!connection) return;
    await connection.dropDatabase().catch(() => undefined);
    await connection.close();
  });
  return {
    dbName,
    get connection(): Connection {
      if (!connection) throw new Error('the test database is used before beforeAll ran');
      return connection;
    },
  };
}
