import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

import type { EmbeddedDatabase } from './types';

const TOOL_DIR = path.resolve(__dirname, '../../tools/mongo-java-server');
const LIB_DIR = path.join(TOOL_DIR, 'target', 'lib');
const LAUNCHER = path.join(TOOL_DIR, 'Launcher.java');

export interface JavaServerOptions {
  port: number;
  /** H2 file for data that survives restarts; omitted → in memory. */
  dataFile?: string;
  /** Keep an oplog, so change streams work (each write costs a little more). */
  oplog?: boolean;
  startTimeoutMs?: number;
}

/** Fetches the server's jars through Maven when they are not there yet (first run on a machine). */
export function ensureJavaServerJars(): void {
  if (existsSync(LIB_DIR) && readdirSync(LIB_DIR).some((f) => f.startsWith('mongo-java-server-core'))) return;
  const result = spawnSync('mvn', ['-q', '-B', '-f', path.join(TOOL_DIR, 'pom.xml'), 'package'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) {
    throw new Error(`could not fetch mongo-java-server through Maven (mvn exited ${String(result.status)})`);
  }
}

/** Starts mongo-java-server through its launcher and resolves once it accepts connections. */
export async function startJavaServer(options: JavaServerOptions): Promise<EmbeddedDatabase> {
  ensureJavaServerJars();
  const args = ['-cp', path.join(LIB_DIR, '*'), LAUNCHER, '--port', String(options.port), '--exit-on-stdin-eof'];
  if (options.dataFile) args.push('--h2', options.dataFile);
  if (options.oplog) args.push('--oplog');
  // stdin stays open as a pipe: when this process dies, the pipe closes and the server exits too.
  // Its own process group (detached): Ctrl-C signals the terminal's foreground group, and the
  // database must outlive the API and worker that are still finishing and reporting jobs; stop()
  // ends it last, explicitly.
  const child = spawn('java', ['-XX:TieredStopAtLevel=1', '-Xss1m', ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const port = await waitForListening(child, options.startTimeoutMs ?? 30_000);
  const kind = options.dataFile ? 'mongo-java-server (H2 file)' : 'mongo-java-server (in memory)';
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    kind,
    port,
    stop: () => stopChild(child),
  };
}

function waitForListening(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => fail(new Error(`mongo-java-server did not start within ${timeoutMs} ms`)), timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`mongo-java-server exited (${String(code)}) before listening: ${stderr.trim()}`)));
    lines.on('line', (line) => {
      const match = /^LISTENING (\d+)$/.exec(line.trim());
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve(Number(match[1]));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    // SIGTERM runs the launcher's shutdown hook, which commits the H2 file.
    child.kill('SIGTERM');
  });
}
