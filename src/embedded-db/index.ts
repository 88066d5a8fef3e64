import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { startJavaServer } from './java-server';
import { startRealMongod } from './memory-server';
import type { EmbeddedDatabase } from './types';

export type { EmbeddedDatabase } from './types';

export interface EmbeddedDatabaseOptions {
  /** 0 picks a free port. */
  port: number;
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
  if (!options.javaOnly) {
    try {
      return await startRealMongod({
        port: options.port,
        ...(options.dataDir ? { dataDir: path.join(options.dataDir, 'mongod') } : {}),
      });
    } catch (err) {
      options.onFallback?.(err instanceof Error ? err.message.split('\n')[0]! : String(err));
    }
  }
  return startJavaServer({
    port: options.port,
    ...(options.dataDir ? { dataFile: path.join(options.dataDir, 'jobs-h2.mv.db') } : {}),
  });
}
