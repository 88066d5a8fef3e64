import type { Connection } from 'mongoose';

import { connectDatabase } from '../../src/storage/connection';

/** A connection of the bench's own, with the service's settings (same write concern as the API's). */
export function openDatabase(uri: string, dbName: string): Promise<Connection> {
  return connectDatabase({ uri, dbName, timeoutMs: 10_000, writeConcern: 'majority', readPreference: 'primary' });
}

/** What the server says it is (buildInfo), and whether it counts operations (serverStatus opcounters). */
export async function describeServer(uri: string): Promise<{ version: string; hasOpcounters: boolean }> {
  const connection = await openDatabase(uri, 'admin');
  try {
    const admin = connection.db!.admin();
    const info = await admin.buildInfo();
    const status = await admin.serverStatus().catch(() => ({}) as Record<string, unknown>);
    return { version: String(info.version), hasOpcounters: typeof status.opcounters === 'object' && status.opcounters !== null };
  } finally {
    await connection.close();
  }
}

/** serverStatus opcounters summed over kinds (insert, query, update, delete, getmore, command); null when absent. */
export async function readOpcounters(connection: Connection): Promise<number | null> {
  const status = await connection.db!.admin().serverStatus().catch(() => null);
  const counters: unknown = status?.opcounters;
  if (typeof counters !== 'object' || counters === null) return null;
  return Object.values(counters as Record<string, unknown>).reduce<number>((sum, v) => sum + (typeof v === 'number' ? v : Number(v) || 0), 0);
}

export async function dropDatabases(uri: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const connection = await openDatabase(uri, name).catch(() => null);
    if (!connection) continue;
    await connection.dropDatabase().catch(() => undefined);
    await connection.close();
  }
}
