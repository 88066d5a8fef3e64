import { readFileSync } from 'node:fs';
import path from 'node:path';

import { mintToken } from '../../src/auth/tokens';
import { BenchProcess, ROOT, stopAll } from './service-process';

export interface ServiceSettings {
  /** Server address without a database name. */
  mongoUri: string;
  dbName: string;
  jwtSecret: string;
}

export interface WorkerFleetSettings {
  workers: number;
  concurrency: number;
  /** WORKER_LEASE_WAIT_SECONDS: long-poll wait the workers ask the API for (ignored by an API without it). */
  leaseWaitSeconds: number;
}

const START_TIMEOUT_MS = 60_000;

/**
 * The node flags `npm run api` starts the API with (package.json's `api` script: the V8 heap
 * settings that bound its memory), so the bench measures the API as production runs it.
 */
export function apiNodeFlags(): string[] {
  const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const match = /exec node((?: --[\w-]+(?:=\S+)?)*) dist\/main-api\.js/.exec(scripts.api ?? '');
  if (!match) throw new Error(`package.json's api script does not run "exec node [flags] dist/main-api.js": ${scripts.api}`);
  return match[1]!.trim().split(' ').filter(Boolean);
}

/** Starts `npm run api`'s entry point on a free port; resolves once it listens. */
export async function startApiProcess(
  settings: ServiceSettings,
  options: { nodeArgs?: readonly string[] } = {},
): Promise<{ api: BenchProcess; baseUrl: string }> {
  const api = new BenchProcess('API', {
    entry: 'src/main-api.ts',
    nodeArgs: [...apiNodeFlags(), ...(options.nodeArgs ?? [])],
    env: {
      PORT: '0',
      MONGODB_URI: settings.mongoUri,
      MONGODB_DB_NAME: settings.dbName,
      JWT_SECRET: settings.jwtSecret,
      // The production default: requests at 2xx are logged at debug, so this costs no per-request line.
      LOG_LEVEL: 'info',
    },
  });
  try {
    const line = await api.waitForLine(/"msg":"API listening"/, START_TIMEOUT_MS);
    const port = (JSON.parse(line) as { port: number }).port;
    return { api, baseUrl: `http://127.0.0.1:${port}` };
  } catch (err) {
    await api.stop();
    throw err;
  }
}

/** Starts `workers` worker processes (`npm run worker`) that take noop jobs; resolves once all run. */
export async function startWorkerFleet(params: { settings: ServiceSettings; fleet: WorkerFleetSettings; apiUrl: string; firstIndex?: number }): Promise<BenchProcess[]> {
  const { settings, fleet, apiUrl } = params;
  const first = params.firstIndex ?? 0;
  const token = mintToken({ secret: settings.jwtSecret, sub: 'bench-worker', role: 'worker' });
  const workers = Array.from(
    { length: fleet.workers },
    (_, i) =>
      new BenchProcess(`worker ${first + i + 1}`, {
        entry: 'src/main-worker.ts',
        env: {
          JOBS_API_URL: apiUrl,
          WORKER_TOKEN: token,
          WORKER_ID: `bench-worker-${first + i + 1}`,
          WORKER_TYPES: 'noop',
          WORKER_CONCURRENCY: String(fleet.concurrency),
          WORKER_LEASE_WAIT_SECONDS: String(fleet.leaseWaitSeconds),
          MONGODB_URI: settings.mongoUri,
          MONGODB_DB_NAME: settings.dbName,
          LOG_LEVEL: 'info',
        },
      }),
  );
  try {
    await Promise.all(workers.map((w) => w.waitForLine(/"msg":"worker started"/, START_TIMEOUT_MS)));
    return workers;
  } catch (err) {
    await stopAll(workers);
    throw err;
  }
}
