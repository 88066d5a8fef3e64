import 'dotenv/config';

import path from 'node:path';

import { z } from 'zod';

import { startApi } from './api-server';
import { mintToken } from './auth/tokens';
import { ConfigError, loadApiConfig, loadWorkerConfig } from './config';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './embedded-db';
import { localDataDir, readOrCreateLocalSecret, removeLocalDatabaseUri, writeLocalDatabaseUri } from './local-secret';
import { createLogger } from './logger';
import { uriWithDatabase } from './mongo-uri';
import { exitOnStartupError, onShutdownSignal } from './process-signals';
import { startTracing } from './tracing/tracing';
import { startWorker } from './worker/worker-process';

/** npm start's embedded database listens here unless DB_PORT says otherwise (a free port if it is taken). */
const DEFAULT_DB_PORT = 27017;
/** The token printed for a second worker: a working day and then some. */
const PASTED_WORKER_TOKEN_LIFETIME = '24h';

/**
 * `npm start`: everything for local work in one process — an embedded database (data kept under
 * .data/) when MONGODB_URI is unset, the API, and a worker.
 *
 * Shutdown (SIGINT/SIGTERM) runs in dependency order: schedules and retention stop, the worker stops
 * leasing and lets running jobs finish and report (WORKER_SHUTDOWN_GRACE_MS), the API closes, and the
 * database — in its own process group, so Ctrl-C does not reach it — stops last.
 */
async function main(): Promise<void> {
  const env = { ...process.env };
  const logger = createLogger({ level: env.LOG_LEVEL ?? 'info', name: 'jobs-local' });
  const dataDir = localDataDir(env.LOCAL_DATA_DIR);
  let db: EmbeddedDatabase | undefined;
  if (!env.MONGODB_URI) {
    const portSetting = env.DB_PORT ? z.coerce.number().int().min(0).max(65_535).safeParse(env.DB_PORT) : undefined;
    if (portSetting && !portSetting.success) throw new ConfigError('DB_PORT', 'must be a port number (0-65535)');
    db = await startEmbeddedDatabase({
      port: portSetting?.data ?? DEFAULT_DB_PORT,
      // Only the default moves aside; a port the user asked for fails loudly when taken.
      fallbackToFreePort: portSetting === undefined,
      onPortTaken: (port) => logger.info({ port }, 'port taken; the embedded database uses a free one'),
      dataDir,
      onFallback: (reason) => logger.info({ reason }, 'no mongod available; using mongo-java-server'),
    });
    env.MONGODB_URI = db.uri;
  }
  const secretFromEnv = Boolean(env.JWT_SECRET);
  let secretGenerated = false;
  if (!secretFromEnv) {
    const local = readOrCreateLocalSecret(dataDir);
    env.JWT_SECRET = local.secret;
    secretGenerated = local.generated;
  }

  const config = loadApiConfig(env);
  // The URI with its database spelled out: what a second worker or a script must be given.
  const databaseUri = uriWithDatabase(config.MONGODB_URI, config.MONGODB_DB_NAME);
  if (db) {
    writeLocalDatabaseUri(dataDir, databaseUri);
    logger.info({ kind: db.kind, uri: databaseUri }, 'embedded database started');
  }
  // One tracer for both (only with OTEL_EXPORTER_OTLP_ENDPOINT set): a job's trace runs from POST /jobs to job.run.
  const tracing = await startTracing({ env, serviceName: 'jobs' });
  const api = await startApi({ config, logger, tracing });
  const worker = await startWorker({
    config: loadWorkerConfig({
      ...env,
      JOBS_API_URL: `http://127.0.0.1:${api.port}`,
      WORKER_TOKEN: env.WORKER_TOKEN || mintToken({ secret: config.JWT_SECRET, sub: 'local-worker', role: 'worker' }),
      WORKER_ID: env.WORKER_ID || `local-worker-${process.pid}`,
    }),
    logger: logger.child({ component: 'worker' }),
    tracing,
  });

  let stopped = false;
  onShutdownSignal(logger, async () => {
    await api.stopBackgroundTasks();
    logger.info('schedules and retention stopped');
    await worker.close();
    logger.info('worker stopped');
    await api.close();
    logger.info('API closed');
    await tracing.shutdown();
    if (db) {
      await db.stop();
      removeLocalDatabaseUri(dataDir);
      logger.info('embedded database stopped');
    }
    stopped = true;
  });
  // Whatever ends this process, the URI file must not name a database that is gone.
  process.once('exit', () => {
    if (db && !stopped) removeLocalDatabaseUri(dataDir);
  });

  const apiUrl = `http://localhost:${api.port}`;
  const secretFile = path.relative(process.cwd(), path.join(dataDir, 'jwt-secret'));
  const secretLine = secretFromEnv
    ? 'JWT secret: JWT_SECRET from the environment.'
    : secretGenerated
      ? `JWT secret: generated for local use in ${secretFile}.`
      : `JWT secret: read from ${secretFile}.`;
  const secondWorker = [
    `JOBS_API_URL=${shellWord(apiUrl)}`,
    `WORKER_TOKEN=${mintToken({ secret: config.JWT_SECRET, sub: 'local-worker-2', role: 'worker', expiresIn: PASTED_WORKER_TOKEN_LIFETIME })}`,
    `MONGODB_URI=${shellWord(databaseUri)}`,
    'npm run worker',
  ].join(' ');
  process.stdout.write(
    [
      '',
      `jobs is running on ${apiUrl} (dashboard: ${apiUrl}/dashboard, API reference: ${apiUrl}/docs)`,
      `Database: ${db ? `${db.kind}, ` : ''}${databaseUri}`,
      secretLine,
      `Mint a token:   export TOKEN=$(npm run -s token -- --role admin --sub alice)`,
      `First call:     curl -H "Authorization: Bearer $TOKEN" ${apiUrl}/auth/whoami`,
      `Another worker (paste into a second terminal; its token is valid for ${PASTED_WORKER_TOKEN_LIFETIME}):`,
      `  ${secondWorker}`,
      'Stop with Ctrl-C: running jobs finish and report first.',
      '',
    ].join('\n'),
  );
}

/** A value as one shell word: as is when it is plain, else single-quoted. */
function shellWord(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

main().catch(exitOnStartupError);
