import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';

import mongoose from 'mongoose';

import { startEmbeddedDatabase } from '../../src/embedded-db';

const ROOT = path.resolve(__dirname, '../..');

describe('npm run db', () => {
  it('prints a usable MONGODB_URI once ready and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main-db.ts')], {
      cwd: ROOT,
      env: { ...process.env, DB_PORT: '0', MONGODB_URI: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const uri = await new Promise<string>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          const match = /^MONGODB_URI=(mongodb:\/\/127\.0\.0\.1:\d+\/)$/.exec(line);
          if (match) resolve(match[1]!);
        });
        child.once('exit', (code) => reject(new Error(`npm run db exited early (${String(code)})`)));
      });
      const connection = await mongoose.createConnection(uri, { dbName: 'embedded_check' }).asPromise();
      await connection.db!.collection('things').insertOne({ hello: 'world' });
      expect(await connection.db!.collection('things').countDocuments()).toBe(1);
      await connection.close();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

describe('the embedded database on a port that is taken', () => {
  it('moves to a free port when asked to (npm start\'s default), and says so', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = (squatter.address() as AddressInfo).port;
    const told: number[] = [];
    const db = await startEmbeddedDatabase({ port: taken, fallbackToFreePort: true, onPortTaken: (port) => told.push(port), javaOnly: true });
    try {
      expect(told).toEqual([taken]);
      expect(db.port).not.toBe(taken);
      const connection = await mongoose.createConnection(db.uri, { dbName: 'port_check' }).asPromise();
      expect((await connection.db!.command({ ping: 1 })).ok).toBe(1);
      await connection.close();
    } finally {
      await db.stop();
      squatter.close();
    }
  });
});
