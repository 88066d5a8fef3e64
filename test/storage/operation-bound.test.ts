import net from 'node:net';

import type { Connection } from 'mongoose';

import { UnavailableError } from '../../src/errors';
import { connectDatabase, operationBoundMs } from '../../src/storage/connection';
import { translateStorageError } from '../../src/storage/errors';
import { JobRepository } from '../../src/storage/job-repository';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { newJob } from '../helpers/storage';

const db = useTestDatabase();

const MONITOR_COMMAND = /(?:hello|isMaster|ismaster)\x00/;

/**
 * A TCP proxy in front of the test database that can go silent: it keeps every socket open but
 * passes nothing on but the driver's monitoring.
 */
async function startFreezableProxy(target: { host: string; port: number }): Promise<{ uri: string; freeze(): void; close(): Promise<void> }> {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    // The driver's monitor (its own sockets, a `hello`/`isMaster` every heartbeat) keeps getting
    // answers, so the server stays "known" and nothing interrupts the operation: only the socket
    // the operation went out on is silent, as one to a database that died under it can be.
    let monitoring = false;
    client.on('data', (chunk: Buffer) => {
      if (frozen) monitoring = MONITOR_COMMAND.test(chunk.toString('latin1'));
      if (!frozen || monitoring) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!frozen || monitoring) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    freeze: () => {
      frozen = true;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

it('an insert in flight when the database goes silent fails as unavailable within the operation bound, not the socket timeout', async () => {
  const target = new URL(testDatabaseUri());
  const proxy = await startFreezableProxy({ host: target.hostname, port: Number(target.port) });
  let connection: Connection | undefined;
  try {
    connection = await connectDatabase({ uri: proxy.uri, dbName: db.dbName, timeoutMs: 500, writeConcern: 'majority', readPreference: 'primary' });
    const bound = operationBoundMs(connection);
    expect(bound).toBe(1_000);
    const jobs = new JobRepository(connection);
    const now = new Date();
    expect((await jobs.insert(newJob({ now }))).created).toBe(true);

    proxy.freeze();
    const started = Date.now();
    const err = await jobs.insert(newJob({ now })).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    const tookMs = Date.now() - started;
    expect(err).toBeInstanceOf(Error);
    expect(translateStorageError(err!)).toBeInstanceOf(UnavailableError);
    // The socket timeout of this connection is 30 s (connectDatabase): the bound, not it, ended the wait.
    expect(tookMs).toBeLessThan(10_000);
  } finally {
    await connection?.close(true).catch(() => undefined);
    await proxy.close();
  }
}, 40_000);
