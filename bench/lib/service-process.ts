import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = path.resolve(__dirname, '../..');

const KEPT_LINES = 200;

/**
 * Compiles src/ to dist/ once (when stale), so the services run as in production: compiled
 * JavaScript, no TypeScript loader in the process (`npm run api` / `npm run worker` do the same).
 */
export function buildServices(): void {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--if-stale'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`npm run build failed (exit ${String(result.status)})`);
}

/**
 * A service process the bench starts: the compiled entry point (`src/x.ts` → `dist/x.js`, see
 * buildServices), run by node directly, so the pid is the service's own (signals, /proc and
 * --cpu-prof all reach it). Keeps the last lines of its output for error messages.
 */
export class BenchProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private readonly listeners = new Set<(line: string) => void>();

  constructor(
    readonly name: string,
    params: { entry: string; env: Record<string, string>; nodeArgs?: readonly string[] },
  ) {
    // The service's own entry points run compiled; the bench's helpers (Agenda's worker) through tsx.
    const entry = params.entry.startsWith('src/')
      ? [path.join(ROOT, params.entry.replace(/^src\//, 'dist/').replace(/\.ts$/, '.js'))]
      : ['--import', 'tsx', path.join(ROOT, params.entry)];
    this.child = spawn(process.execPath, [...(params.nodeArgs ?? []), ...entry], {
      cwd: ROOT,
      // Only what the bench sets: nothing from the developer's shell, and no .env file (dotenv reads
      // DOTENV_CONFIG_PATH), so every run measures the same configuration.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DOTENV_CONFIG_PATH: '/dev/null', ...params.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        if (this.lines.length > KEPT_LINES) this.lines.shift();
        for (const listener of this.listeners) listener(line);
      });
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Calls `listener` for every future output line until the returned function is called. */
  onLine(listener: (line: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first output line (past or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.lines.find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        stopListening();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no line matching ${pattern} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      const stopListening = this.onLine((line) => {
        if (!pattern.test(line)) return;
        done();
        resolve(line);
      });
      void this.exited.then(({ code, signal }) => {
        done();
        reject(new Error(`${this.name} exited (${String(code ?? signal)}) before printing ${pattern}\n${this.tail()}`));
      });
    });
  }

  tail(count = 20): string {
    return this.lines.slice(-count).join('\n');
  }

  /** Peak and current resident set size in MB, from /proc (Linux); null elsewhere or once exited. */
  memory(): { hwmMb: number; rssMb: number } | null {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      const hwm = kb('VmHWM');
      const rss = kb('VmRSS');
      return Number.isFinite(hwm) && Number.isFinite(rss) ? { hwmMb: hwm / 1024, rssMb: rss / 1024 } : null;
    } catch {
      return null;
    }
  }

  /** SIGTERM (a graceful stop; --cpu-prof writes its file on that exit), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Stops every process given, in parallel; never throws (used in finally blocks). */
export async function stopAll(processes: readonly (BenchProcess | undefined)[]): Promise<void> {
  await Promise.all(processes.map((p) => p?.stop().catch(() => undefined)));
}
