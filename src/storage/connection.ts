import mongoose, { type Connection } from 'mongoose';

export interface DatabaseSettings {
  uri: string;
  dbName: string;
  /** Bounds server selection and socket waits, so requests fail with 503 instead of hanging. */
  timeoutMs: number;
  writeConcern: 'majority' | number;
  readPreference: 'primary' | 'primaryPreferred';
  /** Emit the driver's command events on the client (tests that inspect what goes on the wire). */
  monitorCommands?: boolean;
}

/**
 * Opens a dedicated connection (never the global mongoose one). No `serverApi`: the MongoDB-compatible
 * test server has no `hello` command (see TESTING.md).
 */
export async function connectDatabase(settings: DatabaseSettings): Promise<Connection> {
  const connection = mongoose.createConnection(settings.uri, {
    dbName: settings.dbName,
    serverSelectionTimeoutMS: settings.timeoutMs,
    connectTimeoutMS: settings.timeoutMs,
    socketTimeoutMS: Math.max(settings.timeoutMs * 6, 30_000),
    heartbeatFrequencyMS: 2_000,
    // Every write on this connection (job state changes included) waits for `w` nodes. wtimeout
    // bounds that wait: on a replica set that cannot reach a majority, a write answers 503
    // (outcome unknown: it may be applied on the primary) instead of hanging the request.
    writeConcern: { w: settings.writeConcern, wtimeoutMS: settings.timeoutMs },
    // Every read, the ones that decide a lease included, goes to the primary unless configured
    // otherwise; leases stay exclusive either way, as each claim and report is a conditional write.
    readPreference: settings.readPreference,
    monitorCommands: settings.monitorCommands ?? false,
    // Fail at once when disconnected instead of queueing operations in memory.
    bufferCommands: false,
    autoIndex: false,
    autoCreate: false,
  });
  await connection.asPromise();
  return connection;
}

/**
 * The longest one write or read of the queue's hot path may take on this connection, all of it
 * (server selection, connection checkout, socket write and read): twice DB_TIMEOUT_MS. The driver's
 * socket timeout alone does not bound it: an operation in flight when the database stopped has been
 * seen to wait on its socket past every other bound (an enqueue held 15 s and more, and every
 * enqueue group-committed after it waited behind it). Given as the driver's `timeoutMS`.
 */
export function operationBoundMs(connection: Connection): number {
  return 2 * connection.getClient().options.serverSelectionTimeoutMS;
}

/** True when the database answers a ping within `timeoutMs`. */
export async function pingDatabase(connection: Connection, timeoutMs: number): Promise<boolean> {
  const db = connection.db;
  if (!db) return false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([
      db
        .command({ ping: 1 })
        .then(() => true)
        .catch(() => false),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Commands the driver sends on its own (server monitoring, session ends): left out when counting what a caller costs. */
export const DRIVER_MONITORING_COMMANDS: ReadonlySet<string> = new Set(['isMaster', 'ismaster', 'hello', 'ping', 'endSessions']);
