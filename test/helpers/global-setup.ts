import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/embedded-db';

declare global {
  var __JOBS_TEST_DB__: EmbeddedDatabase | undefined;
}

/** Uses MONGODB_URI when set; otherwise starts the embedded database for the whole run. */
export default async function globalSetup(): Promise<void> {
  if (process.env.MONGODB_URI) {
    process.env.JOBS_TEST_DB_KIND = 'MONGODB_URI';
    return;
  }
  const db = await startEmbeddedDatabase({ port: 0 });
  globalThis.__JOBS_TEST_DB__ = db;
  // Jest workers are forked after global setup, so they inherit these.
  process.env.MONGODB_URI = db.uri;
  process.env.JOBS_TEST_DB_KIND = db.kind;
  process.stderr.write(`\ntest database: ${db.kind} at ${db.uri}\n`);
}
