import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = path.resolve(__dirname, '../..');

/** A real service process (API or worker) started from its entry point, with its output captured. */
export class ServiceProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  constructor(entry: string, env: Record<string, string>) {
    // tsx as a loader in this very process (not its CLI wrapper), so signals reach the service itself.
    this.child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', entry)], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
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
