import { mkdirSync } from 'node:fs';

import type { EmbeddedDatabase } from './types';

export interface MemoryServerOptions {
  port: number;
  dataDir?: string;
}

/**
 * Starts a real mongod through mongodb-memory-server. Where no binary can be had (no internet,
 * no MONGOMS_SYSTEM_BINARY), it fails within milliseconds because retries are switched off.
 */
export async function startRealMongod(options: MemoryServerOptions): Promise<EmbeddedDatabase> {
  process.env.MONGOMS_MAX_RETRIES ??= '0';
  const { MongoMemoryServer } = await import('mongodb-memory-server');
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  // The library prints a multi-line stack on console.warn when it cannot start; the caller reports
  // the reason in one line instead, so the warning is muted for the duration of the attempt.
  const warn = console.warn;
  console.warn = () => undefined;
  const server = await MongoMemoryServer.create({
    // Its own process group, as for mongo-java-server (see java-server.ts): Ctrl-C must not stop it
    // before the API and worker; the library's watchdog still ends it if this process dies.
    spawn: { detached: true },
    instance: {
      ip: '127.0.0.1',
      port: options.port === 0 ? undefined : options.port,
      ...(options.dataDir ? { dbPath: options.dataDir, storageEngine: 'wiredTiger' as const } : {}),
    },
  }).finally(() => {
    console.warn = warn;
  });
  const uri = server.getUri();
  return {
    uri: uri.endsWith('/') ? uri : `${uri}/`,
    kind: 'mongod (mongodb-memory-server)',
    port: Number(new URL(uri).port),
    stop: async () => {
      await server.stop({ doCleanup: !options.dataDir, force: false });
    },
  };
}
