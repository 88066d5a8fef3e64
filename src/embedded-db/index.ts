import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

import { startJavaServer } from './java-server';
import { startRealMongod } from './memory-server';
import type { EmbeddedDatabase } from './types';

export type { EmbeddedDatabase } from './types';

export interface EmbeddedDatabaseOptions {
  /** 0 picks a free port. */
  port: number;
  /** When `port` is taken, use a free one instead of failing (npm start's default port). */
  fallbackToFreePort?: boolean;
  /** Told when the fallback above happens. */
  onPortTaken?: (port: number) => void;
  /** Keep data on disk under this directory (npm start); omitted → in memory (tests). */
  dataDir?: string;
  /** Skip the mongod attempt (tests that need a fast, known server). */
  javaOnly?: boolean;
  onFallback?: (reason: string) => void;
}

/**
 * A MongoDB for local runs and tests: a real mongod when mongodb-memory-server can provide one,
 * otherwise mongo-java-server (these machines cannot download mongod).
 */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  let port = options.port;
  if (port !== 0 && options.fallbackToFreePort && !(await isPortFree(port))) {
    options.onPortTaken?.(port);
    port = 0;
  }
  if (!options.javaOnly) {
    try {
      return await startRealMongod({
        port,
        ...(options.dataDir ? { dataDir: path.join(options.dataDir, 'mongod') } : {}),
      });
    } catch (err) {
      options.onFallback?.(err instanceof Error ? err.message.split('\n')[0]! : String(err));
    }
  }
  return startJavaServer({
    port,
    ...(options.dataDir ? { dataFile: path.join(options.dataDir, 'jobs-h2.mv.db') } : {}),
  });
}

/** True when nothing listens on 127.0.0.1:`port` (checked by binding it for a moment). */
function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(true)));
  });
}
