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
