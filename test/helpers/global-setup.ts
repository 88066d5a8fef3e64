import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/embedded-db';
import { databaseNameInUri, uriWithDatabase } from '../../src/mongo-uri';
import { ensureChromium, runMayNeedChromium } from './chromium';

declare global {
  var __JOBS_TEST_DB__: EmbeddedDatabase | undefined;
}

/**
 * Once per run: a Chromium for the browser tests (found, or installed; see chromium.ts), and the
 * database — MONGODB_URI when set, otherwise the embedded one, for the whole run.
 */
export default async function globalSetup(globalConfig: { testPathPattern?: string }): Promise<void> {
  if (runMayNeedChromium(globalConfig.testPathPattern)) {
    const browser = ensureChromium();
    // Jest workers are forked after global setup, so they inherit these.
    if ('path' in browser) process.env.JOBS_TEST_CHROMIUM = browser.path;
    else process.env.JOBS_TEST_CHROMIUM_PROBLEM = browser.problem;
  }
  if (process.env.MONGODB_URI) {
    process.env.JOBS_TEST_DB_KIND = 'MONGODB_URI';
    // Each test file makes its own database; a database named in the URI would win over the ones
    // given to the processes the tests start (MONGODB_DB_NAME), so it is taken out.
    if (databaseNameInUri(process.env.MONGODB_URI) !== undefined) {
      process.env.MONGODB_URI = uriWithDatabase(process.env.MONGODB_URI, '');
      process.stderr.write('\ntest database: the database named in MONGODB_URI is not used; each test file makes its own\n');
    }
    return;
  }
  const db = await startEmbeddedDatabase({ port: 0 });
  globalThis.__JOBS_TEST_DB__ = db;
  // Jest workers are forked after global setup, so they inherit these.
  process.env.MONGODB_URI = db.uri;
  process.env.JOBS_TEST_DB_KIND = db.kind;
  process.stderr.write(`\ntest database: ${db.kind} at ${db.uri}\n`);
}
