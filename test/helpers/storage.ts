import { randomBytes } from 'node:crypto';

import type { Connection } from 'mongoose';

import { connectDatabase } from '../../src/storage/connection';
import type { NewJob } from '../../src/storage/job-repository';
import { testDatabaseUri, type TestDatabase } from './database';

/**
 * A second connection (its own connection pool) to the calling file's database: two repositories on
 * two connections race like two API instances do, not like two calls sharing one socket pool.
 */
export function useSecondConnection(db: TestDatabase): { readonly connection: Connection } {
  let connection: Connection | undefined;
  beforeAll(async () => {
    connection = await connectDatabase({ uri: testDatabaseUri(), dbName: db.dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary' });
  });
  afterAll(async () => {
    await connection?.close();
  });
  return {
    get connection(): Connection {
      if (!connection) throw new Error('the second connection is used before beforeAll ran');
      return connection;
    },
  };
}

export function uniqueId(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

/** A job as the enqueue use case hands it to the repository: queued, due at `now`, no key, no tenant. */
export function newJob(params: Partial<NewJob> & { now: Date }): NewJob {
  return {
    jobId: uniqueId('job'),
    type: 'thumbnail.create',
    priority: 50,
    payload: { assetId: 'asset_0123456789abcdef01234567', versionNumber: 1 },
    maxAttempts: 3,
    nextRunAt: params.now,
    idempotencyKey: null,
    tenant: null,
    createdBy: 'service-1',
    createdByRole: 'service',
    ...params,
  };
}

/** Deletes every document of the named collections (test files share one database across their tests). */
export async function clearCollections(connection: Connection, names: readonly string[]): Promise<void> {
  await Promise.all(names.map((name) => connection.collection(name).deleteMany({})));
}
