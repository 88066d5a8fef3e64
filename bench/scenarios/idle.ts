import type { BenchContext } from '../lib/context';
import { openDatabase, readOpcounters } from '../lib/database';
import { round, sleep } from '../lib/numbers';
import { stopAll, type BenchProcess } from '../lib/service-process';
import { startApiProcess, startWorkerFleet } from '../lib/services';
import { serviceRequests, startCountingProxy } from '../lib/wire-proxy';

export interface IdleResult {
  /** Requests the database answered per second, less connection monitoring (isMaster/hello). */
  dbOpsPerSec: number;
  /** Every request message per second, monitoring included. */
  wireMessagesPerSec: number;
  monitoringPerSec: number;
  /** Requests per second by command name. */
  byCommand: Record<string, number>;
  /** serverStatus opcounters per second, where the server keeps them (real MongoDB; all clients). */
  serverOpcountersPerSec: number | null;
  windowMs: number;
  method: string;
}

/**
 * The API and `workers` idle workers (long-polling where the API supports it), every one of them
 * connected to the database through a counting TCP proxy; after they settle, counts every request
 * the database gets over `idleWindowMs`.
 */
export async function runIdle(ctx: BenchContext): Promise<IdleResult> {
  const { sizes } = ctx;
  const { uri: mongoUri, proxy } = await startCountingProxy(ctx.mongoUri);
  const settings = { mongoUri, dbName: ctx.dbName('idle'), jwtSecret: ctx.jwtSecret };
  const direct = await openDatabase(ctx.mongoUri, 'admin');
  let api: BenchProcess | undefined;
  let workers: BenchProcess[] = [];
  try {
    const started = await startApiProcess(settings);
    api = started.api;
    workers = await startWorkerFleet({ settings, fleet: sizes, apiUrl: started.baseUrl });
    // Start-up (indexes, first lease calls) is not idling.
    await sleep(ctx.quick ? 1_000 : 3_000);
    proxy?.reset();
    const opsBefore = await readOpcounters(direct);
    const windowStart = performance.now();
    await sleep(sizes.idleWindowMs);
    const seconds = (performance.now() - windowStart) / 1000;
    const counted = proxy?.snapshot();
    const opsAfter = await readOpcounters(direct);
    const serverOpcountersPerSec = opsBefore !== null && opsAfter !== null ? round((opsAfter - opsBefore) / seconds, 2) : null;
    if (!counted) {
      return {
        dbOpsPerSec: serverOpcountersPerSec ?? Number.NaN,
        wireMessagesPerSec: Number.NaN,
        monitoringPerSec: Number.NaN,
        byCommand: {},
        serverOpcountersPerSec,
        windowMs: Math.round(seconds * 1000),
        method: 'serverStatus opcounters (the URI cannot be proxied: several hosts, SRV or TLS)',
      };
    }
    const { monitoring } = serviceRequests(counted);
    return {
      dbOpsPerSec: round((counted.total - monitoring) / seconds, 2),
      wireMessagesPerSec: round(counted.total / seconds, 2),
      monitoringPerSec: round(monitoring / seconds, 2),
      byCommand: Object.fromEntries(Object.entries(counted.byCommand).map(([name, n]) => [name, round(n / seconds, 2)])),
      serverOpcountersPerSec,
      windowMs: Math.round(seconds * 1000),
      method: 'wire-protocol messages counted by a TCP proxy in front of the database',
    };
  } finally {
    await stopAll([...workers, api]);
    await direct.close();
    await proxy?.close();
  }
}
