import 'dotenv/config';

import { z } from 'zod';

import { startEmbeddedDatabase } from './embedded-db';
import { createLogger } from './logger';
import { exitOnStartupError, onShutdownSignal } from './process-signals';

/** `npm run db`: an embedded MongoDB in the foreground; prints its URI once it accepts connections. */
async function main(): Promise<void> {
  const portSetting = z.coerce.number().int().min(0).max(65_535).safeParse(process.env.DB_PORT ?? '27017');
  if (!portSetting.success) throw new Error('invalid configuration: DB_PORT must be a port number (0-65535)');
  const db = await startEmbeddedDatabase({
    port: portSetting.data,
    onFallback: (reason) => process.stderr.write(`no mongod available (${reason}); using mongo-java-server\n`),
  });
  process.stderr.write(`started ${db.kind}\n`);
  process.stdout.write(`MONGODB_URI=${db.uri}\n`);
  // The database runs in its own process group (see java-server.ts): it stops when this process says so.
  onShutdownSignal(createLogger({ level: 'warn', name: 'jobs-db' }), () => db.stop());
}

main().catch(exitOnStartupError);
