import type { BenchContext } from '../lib/context';
import { openDatabase, readOpcounters } from '../lib/database';
import { round, sleep } from '../lib/numbers';
import { stopAll, type BenchProcess } from '../lib/service-process';
import { startApiProcess, startWorkerFleet } from '../lib/services';
import { WireCountingProxy } from '../lib/wire-proxy';

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

// The driver's server monitoring and connection handshakes: what any connected client costs,
// whatever the service does.
const MONITORING = new Set(['ismaster', 'hello', 'saslstart', 'saslcontinue', 'authenticate', 'getnonce']);

/** host:port and a URI for the proxy in its place, when `uri` names one plain-TCP server. */
function proxyTarget(uri: string): { host: string; port: number; proxied: (port: number) => string } | null {
  const match = /^mongodb:\/\/(?:([^@/]*)@)?([^/?,]+)(\/[^?]*)?(\?.*)?$/.exec(uri);
  if (!match) return null;
  const [, credentials, hostPort, , query] = match;
  if (query && /[?&](tls|ssl)=true/i.test(query)) return null;
  const [host, port] = hostPort!.startsWith('[') ? [hostPort!.slice(1, hostPort!.indexOf(']')), hostPort!.split(']:')[1]] : hostPort!.split(':');
  const options = new URLSearchParams(query ? query.slice(1) : '');
  // Through the proxy, never on to the members a replica set would name.
  options.set('directConnection', 'true');
  return {
    host: host!,
    port: Number(port ?? 27017),
    proxied: (proxyPort) => `mongodb://${credentials ? `${credentials}@` : ''}127.0.0.1:${proxyPort}/?${options.toString()}`,
  };
}

/**
 * The API and `workers` idle workers (long-polling where the API supports it), every one of them
 * connected to the database through a counting TCP proxy; after they settle, counts every request
 * the database gets over `idleWindowMs`.
 */
export async function runIdle(ctx: BenchContext): Promise<IdleResult> {
  const { sizes } = ctx;
  const target = proxyTarget(ctx.mongoUri);
  const proxy = target ? new WireCountingProxy({ host: target.host, port: target.port }) : null;
  const mongoUri = proxy && target ? target.proxied(await proxy.start()) : ctx.mongoUri;
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
    const monitoring = Object.entries(counted.byCommand)
      .filter(([name]) => MONITORING.has(name.split(' ')[0]!.toLowerCase()))
      .reduce((sum, [, n]) => sum + n, 0);
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
