import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { mintToken } from '../../src/auth/tokens';
import { waitFor } from '../helpers/poll';
import { isRunning, processesInGroup, processesWithCommandLine, processGroupOf, ROOT, ServiceProcess } from '../helpers/processes';

// `npm start` exactly as a user runs it (npm, its shell, node, the embedded database), in its own
// process group as a terminal's foreground job, with its data in a temporary LOCAL_DATA_DIR and
// free ports so it never meets a developer's own `npm start`.
jest.setTimeout(180_000);

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'jobs-local-mode-'));
const started: ServiceProcess[] = [];

interface LocalRun {
  npm: ServiceProcess;
  baseUrl: string;
  banner: string[];
  /** The embedded database's process (found by its data file under dataDir). */
  databasePid: number;
  /** npm, its shell and node: the foreground job's processes. */
  groupPids: number[];
}

async function startLocal(env: Record<string, string> = {}): Promise<LocalRun> {
  const npm = new ServiceProcess({
    command: 'npm',
    args: ['start'],
    env: { PORT: '0', DB_PORT: '0', LOCAL_DATA_DIR: dataDir, npm_config_update_notifier: 'false', ...env },
    detached: true,
  });
  started.push(npm);
  const running = await npm.waitForLine(/^jobs is running on http:\/\/localhost:\d+/, 90_000);
  const port = /localhost:(\d+)/.exec(running)![1];
  await npm.waitForLine(/^Stop with Ctrl-C/);
  const banner = npm.lines.slice(npm.lines.indexOf(running));
  // Only the database's command line names a file under dataDir (node gets it through the environment).
  const databasePids = processesWithCommandLine(dataDir);
  expect(databasePids).toHaveLength(1);
  return { npm, baseUrl: `http://127.0.0.1:${port}`, banner, databasePid: databasePids[0]!, groupPids: processesInGroup(npm.pid) };
}

function adminToken(): string {
  const secret = readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8').trim();
  return mintToken({ secret, sub: 'local-mode-admin', role: 'admin' });
}

async function call<T>(run: LocalRun, method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${run.baseUrl}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken()}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

interface JobView {
  status: string;
  workerId: string | null;
  attempts: { outcome: string; workerId: string }[];
}

async function waitForJob(run: LocalRun, jobId: string, status: string): Promise<JobView> {
  return waitFor(
    async () => {
      const { body } = await call<JobView>(run, 'GET', `/jobs/${jobId}`);
      return body.status === status ? body : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 50, what: `job ${jobId} to be ${status}` },
  );
}

/** Lines a user would read as trouble: warnings and errors, stack traces, "Error" outside JSON logs. */
function troubleIn(lines: readonly string[]): string[] {
  return lines.filter((line) => {
    if (/^\s+at\s/.test(line) || line.includes('"stack"')) return true;
    if (line.startsWith('{')) return Number((JSON.parse(line) as { level?: number }).level ?? 0) >= 40;
    return /\bError\b/.test(line);
  });
}

/** Waits (with a deadline) until none of `pids` runs any more; returns those still running. */
async function leftovers(pids: readonly number[]): Promise<number[]> {
  try {
    await waitFor(() => (pids.some(isRunning) ? undefined : true), { timeoutMs: 5_000, intervalMs: 50 });
  } catch {
    // reported below
  }
  return pids.filter(isRunning);
}

let second: LocalRun | undefined;

afterAll(async () => {
  for (const p of started) {
    p.signalGroup('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p.exited, new Promise((resolve) => (timer = setTimeout(resolve, 15_000)))]);
    clearTimeout(timer);
    p.signalGroup('SIGKILL');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start (local mode)', () => {
  it('on Ctrl-C with a job running, the job finishes and reports, the database stops last, and all exits in seconds without errors', async () => {
    const run = await startLocal();
    expect(run.banner).toContain(`JWT secret: generated for local use in ${path.relative(ROOT, path.join(dataDir, 'jwt-secret'))}.`);
    // The database runs in a process group of its own, so the terminal's SIGINT does not reach it.
    expect(processGroupOf(run.databasePid)).not.toBe(run.npm.pid);
    expect(run.groupPids.length).toBeGreaterThanOrEqual(2);

    const enqueued = await call<{ jobId: string }>(run, 'POST', '/jobs', { type: 'noop', payload: { sleepMs: 3_000 } });
    expect(enqueued.status).toBe(201);
    await waitForJob(run, enqueued.body.jobId, 'leased');

    const signalledAt = Date.now();
    run.npm.signalGroup('SIGINT');
    await run.npm.exited;
    const exitMs = Date.now() - signalledAt;
    expect(await leftovers([...run.groupPids, run.databasePid])).toEqual([]);
    // The job had up to 3 s left; everything else takes well under a second (a busy machine: more).
    expect(exitMs).toBeLessThan(12_000);
    expect(troubleIn(run.npm.lines)).toEqual([]);
    const order = ['shutting down', 'schedules and retention stopped', 'worker stopped', 'API closed', 'embedded database stopped'].map((msg) =>
      run.npm.lines.findIndex((line) => line.includes(`"msg":"${msg}"`)),
    );
    expect(order.every((index) => index >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);

    // Started again on the same data: the job's report was recorded before the database stopped.
    second = await startLocal({ WORKER_TYPES: 'thumbnail.create' });
    expect(second.banner).toContain(`JWT secret: read from ${path.relative(ROOT, path.join(dataDir, 'jwt-secret'))}.`);
    const job = await call<JobView>(second, 'GET', `/jobs/${enqueued.body.jobId}`);
    expect(job.body.status).toBe('succeeded');
    expect(job.body.attempts.map((a) => a.outcome)).toEqual(['succeeded']);
  });

  it('prints a line that starts a second worker on the same API and database, and hands a SIGTERM of npm to the service', async () => {
    const run = second!;
    // This instance's own worker takes thumbnails only, so the other jobs can only go to the pasted one.
    const line = run.banner.find((l) => l.includes('npm run worker'))!.trim();
    expect(line).toMatch(/^JOBS_API_URL=\S+ WORKER_TOKEN=\S+ MONGODB_URI=\S+ npm run worker$/);
    const pasted = new ServiceProcess({ command: 'sh', args: ['-c', line], env: { npm_config_update_notifier: 'false' }, detached: true });
    started.push(pasted);
    // `npm run worker` runs the compiled code, building dist/ first when src/ changed.
    await pasted.waitForLine(/"msg":"worker started"/, 150_000);
    const pastedPids = processesInGroup(pasted.pid);

    const escrow = await call<{ escrowId: string }>(run, 'POST', '/escrows', { batchId: 'batch_local', amount: 1_500, currency: 'EUR', payee: 'acct_local_1' });
    expect(escrow.status).toBe(201);
    const payout = await call<{ jobId: string }>(run, 'POST', '/jobs', { type: 'payout.execute', payload: { batchId: 'batch_local', escrowId: escrow.body.escrowId } });
    const noop = await call<{ jobId: string }>(run, 'POST', '/jobs', { type: 'noop', payload: {} });
    // The payout reads and pays the escrow through the banner's MONGODB_URI.
    const paid = await waitForJob(run, payout.body.jobId, 'succeeded');
    const ran = await waitForJob(run, noop.body.jobId, 'succeeded');
    for (const job of [paid, ran]) expect(job.workerId).not.toMatch(/^local-worker/);
    const escrowAfter = await call<{ status: string }>(run, 'GET', `/escrows/${escrow.body.escrowId}`);
    expect(escrowAfter.body.status).toBe('paid');

    // Ctrl-C in its terminal: the shell and npm go, the worker drains and exits by itself.
    pasted.signalGroup('SIGINT');
    expect(await leftovers(pastedPids)).toEqual([]);
    expect(pasted.lines.some((l) => l.includes('"msg":"shutting down"'))).toBe(true);
    expect(troubleIn(pasted.lines)).toEqual([]);

    // `kill -TERM <npm>` (not the group): npm forwards it to node, which shuts everything down.
    run.npm.signal('SIGTERM');
    await run.npm.exited;
    expect(await leftovers([...run.groupPids, run.databasePid])).toEqual([]);
    expect(run.npm.lines.some((l) => l.includes('"signal":"SIGTERM"') && l.includes('"msg":"shutting down"'))).toBe(true);
    expect(run.npm.lines.some((l) => l.includes('"msg":"embedded database stopped"'))).toBe(true);
    expect(troubleIn(run.npm.lines)).toEqual([]);
  });
});
