import net from 'node:net';

/**
 * A TCP proxy in front of the database that counts the wire-protocol messages clients send, by
 * command name. It works for any MongoDB-compatible server and across processes: every process
 * of a scenario connects through it, and the counts are every request the server had to answer.
 */
export class WireCountingProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private counts = new Map<string, number>();
  private connectionsOpened = 0;

  constructor(private readonly upstream: { host: string; port: number }) {}

  /** Listens on a free localhost port; resolves with it. */
  async start(): Promise<number> {
    const server = net.createServer((client) => this.relay(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return (server.address() as net.AddressInfo).port;
  }

  reset(): void {
    this.counts = new Map();
    this.connectionsOpened = 0;
  }

  /** Messages counted since the last reset, by command (first key of the command document, and its collection). */
  snapshot(): { total: number; connectionsOpened: number; byCommand: Record<string, number> } {
    const byCommand = Object.fromEntries([...this.counts.entries()].sort((a, b) => b[1] - a[1]));
    const total = [...this.counts.values()].reduce((a, b) => a + b, 0);
    return { total, connectionsOpened: this.connectionsOpened, byCommand };
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private relay(client: net.Socket): void {
    this.connectionsOpened += 1;
    const upstream = net.connect(this.upstream.port, this.upstream.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
      socket.on('error', () => socket.destroy());
    }
    upstream.pipe(client);
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readInt32LE(0);
        if (length < 16 || pending.length < length) break;
        const name = commandName(pending.subarray(0, length));
        this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
        pending = pending.subarray(length);
      }
    });
  }
}

const OP_MSG = 2013;
const OP_QUERY = 2004;
const OP_COMPRESSED = 2012;

/** The command a request message carries: the first key of its command document. */
export function commandName(message: Buffer): string {
  const opCode = message.readInt32LE(12);
  if (opCode === OP_MSG) {
    // flagBits (4 bytes), then sections; the body (kind 0) comes first in what drivers send.
    const kind = message.readUInt8(20);
    return kind === 0 ? firstKey(message, 21) : 'OP_MSG(sequence)';
  }
  if (opCode === OP_QUERY) {
    // flags (4), fullCollectionName (cstring), numberToSkip (4), numberToReturn (4), query document.
    const nameEnd = message.indexOf(0, 20);
    return nameEnd < 0 ? 'OP_QUERY' : firstKey(message, nameEnd + 1 + 8);
  }
  if (opCode === OP_COMPRESSED) return 'OP_COMPRESSED';
  return `opCode ${opCode}`;
}

/** The first key of a BSON document, with its value when that is a string (the collection: `find jobs`). */
function firstKey(message: Buffer, documentStart: number): string {
  // int32 document length, then the first element: type byte, cstring key, value.
  const type = message[documentStart + 4];
  const keyStart = documentStart + 5;
  const keyEnd = message.indexOf(0, keyStart);
  if (keyEnd < 0 || keyStart >= message.length) return 'unknown';
  const key = message.toString('utf8', keyStart, keyEnd);
  const BSON_STRING = 0x02;
  if (type !== BSON_STRING || keyEnd + 5 > message.length) return key;
  const length = message.readInt32LE(keyEnd + 1);
  const valueStart = keyEnd + 5;
  if (length < 1 || valueStart + length - 1 > message.length) return key;
  return `${key} ${message.toString('utf8', valueStart, valueStart + length - 1)}`;
}

// The driver's server monitoring and connection handshakes: what any connected client costs,
// whatever the service does.
const MONITORING = new Set(['ismaster', 'hello', 'saslstart', 'saslcontinue', 'authenticate', 'getnonce']);

export function isMonitoring(command: string): boolean {
  return MONITORING.has(command.split(' ')[0]!.toLowerCase());
}

/** A snapshot without the driver's monitoring: the requests the service itself made. */
export function serviceRequests(snapshot: { byCommand: Record<string, number> }): { total: number; byCommand: Record<string, number>; monitoring: number } {
  const entries = Object.entries(snapshot.byCommand);
  const monitoring = entries.filter(([name]) => isMonitoring(name)).reduce((sum, [, n]) => sum + n, 0);
  const own = entries.filter(([name]) => !isMonitoring(name));
  return { total: own.reduce((sum, [, n]) => sum + n, 0), byCommand: Object.fromEntries(own), monitoring };
}

/** host:port and a URI for the proxy in its place, when `uri` names one plain-TCP server. */
export function proxyTarget(uri: string): { host: string; port: number; proxied: (port: number) => string } | null {
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
 * A counting proxy in front of the server `uri` names, and the URI to reach it through; the proxy is
 * null (and the URI `uri` itself) when it cannot be proxied (several hosts, SRV or TLS).
 */
export async function startCountingProxy(uri: string): Promise<{ uri: string; proxy: WireCountingProxy | null }> {
  const target = proxyTarget(uri);
  if (!target) return { uri, proxy: null };
  const proxy = new WireCountingProxy({ host: target.host, port: target.port });
  return { uri: target.proxied(await proxy.start()), proxy };
}

/** Requests per job by command (the service's own; monitoring apart), from a snapshot over `jobs` jobs. */
export function requestsPerJob(snapshot: { byCommand: Record<string, number> } | undefined, jobs: number): { total: number; byCommand: Record<string, number> } | null {
  if (!snapshot || jobs <= 0) return null;
  const own = serviceRequests(snapshot);
  const per = (n: number): number => Math.round((n / jobs) * 1000) / 1000;
  return { total: per(own.total), byCommand: Object.fromEntries(Object.entries(own.byCommand).map(([name, n]) => [name, per(n)])) };
}
