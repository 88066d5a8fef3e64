import 'dotenv/config';

import path from 'node:path';

import { startApi } from './api-server';
import { mintToken } from './auth/tokens';
import { loadApiConfig, loadWorkerConfig } from './config';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './embedded-db';
import { LOCAL_DATA_DIR, readOrCreateLocalSecret } from './local-secret';
import { createLogger } from './logger';
import { exitOnStartupError, onShutdownSignal } from './process-signals';
import { startWorker } from './worker/worker-process';

/**
 * `npm start`: everything for local work in one process — an embedded database (data kept under
 * .data/) when MONGODB_URI is unset, the API, and a worker.
 */
async function main(): Promise<void> {
  const env = { ...process.env };
  const logger = createLogger({ level: env.LOG_LEVEL ?? 'info', name: 'jobs-local' });
  let db: EmbeddedDatabase | undefined;
  if (!env.MONGODB_URI) {
    db = await startEmbeddedDatabase({
      port: Number(env.DB_PORT ?? 0),
      dataDir: LOCAL_DATA_DIR,
      onFallback: (reason) => logger.info({ reason }, 'no mongod available; using mongo-java-server'),
    });
    logger.info({ kind: db.kind, uri: db.uri }, 'embedded database started');
    env.MONGODB_URI = db.uri;
  }
  const generatedSecret = !env.JWT_SECRET;
  if (generatedSecret) env.JWT_SECRET = readOrCreateLocalSecret();

  const config = loadApiConfig(env);
  const api = await startApi({ config, logger });
  const worker = await startWorker({
    config: loadWorkerConfig({
      ...env,
      JOBS_API_URL: `http://127.0.0.1:${api.port}`,
      WORKER_TOKEN: env.WORKER_TOKEN || mintToken({ secret: config.JWT_SECRET, sub: 'local-worker', role: 'worker' }),
      WORKER_ID: env.WORKER_ID || `local-worker-${process.pid}`,
    }),
    logger: logger.child({ component: 'worker' }),
  });
  const tokenHint = generatedSecret
    ? `JWT secret generated for local use in ${path.relative(process.cwd(), LOCAL_DATA_DIR)}/jwt-secret.`
    : 'Using JWT_SECRET from the environment.';
  process.stdout.write(
    [
      '',
      `jobs is running on http://localhost:${api.port}`,
      tokenHint,
      'Mint a token:   npm run token -- --role admin --sub alice',
      `First call:     curl -H "Authorization: Bearer $TOKEN" http://localhost:${api.port}/auth/whoami`,
      '',
    ].join('\n'),
  );

  onShutdownSignal(logger, async () => {
    await worker.close();
    await api.close();
    await db?.stop();
  });
}

main().catch(exitOnStartupError);
