import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = path.resolve(__dirname, '../..');

export interface CommandSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Its own process group, as a shell's foreground job: signal it all with signalGroup(). */
  detached?: boolean;
}

/** A real service process (API or worker) started from its entry point, with its output captured. */
export class ServiceProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  constructor(entry: string | CommandSpec, env: Record<string, string> = {}) {
    // tsx as a loader in this very process (not its CLI wrapper), so signals reach the service itself.
    const spec: CommandSpec = typeof entry === 'string' ? { command: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'src', entry)], env } : entry;
    this.child = spawn(spec.command, spec.args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: spec.detached ?? false,
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        for (const waiter of [...this.waiters]) {
          if (waiter.pattern.test(line)) {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      });
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first output line (past or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const seen = this.lines.find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${this.lines.slice(-20).join('\n')}`)), timeoutMs);
      this.waiters.push({
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`process exited (${String(code ?? signal)}) before printing ${pattern}:\n${this.lines.slice(-20).join('\n')}`));
      });
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** To the whole process group (a detached one), as a terminal's Ctrl-C reaches a foreground job. */
  signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // the group is gone already
    }
  }

  async stop(): Promise<void> {
    // A frozen (SIGSTOP) process would not handle SIGTERM until woken.
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts `npm run api`'s entry point on a free port and resolves once it listens. */
export async function startApiProcess(env: Record<string, string>): Promise<{ api: ServiceProcess; baseUrl: string }> {
  const api = new ServiceProcess('main-api.ts', { PORT: '0', ...env });
  const line = await api.waitForLine(/"msg":"API listening"/);
  const port = (JSON.parse(line) as { port: number }).port;
  return { api, baseUrl: `http://127.0.0.1:${port}` };
}

export function startWorkerProcess(env: Record<string, string>): ServiceProcess {
  return new ServiceProcess('main-worker.ts', env);
}

// ---- Processes by /proc (Linux), to prove what a shutdown leaves behind ----------------------

/** The process group of `pid`, or undefined when it is gone. */
export function processGroupOf(pid: number): number | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : Number(fields[2]);
  } catch {
    return undefined;
  }
}

export function isRunning(pid: number): boolean {
  return processGroupOf(pid) !== undefined;
}

/** Live processes whose command line contains `fragment`. */
export function processesWithCommandLine(fragment: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(fragment) && isRunning(Number(entry))) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** Live processes in process group `pgid`. */
export function processesInGroup(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => processGroupOf(pid) === pgid);
}
