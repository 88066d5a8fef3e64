/**
 * What flow control costs the lease path: one API instance (in this process) and a few HTTP workers
 * lease and report (batch reports) the same number of noop jobs four times: with no limit, with a
 * keyConcurrencyLimit that never binds (every job its own key: the cost of the key slots alone), with
 * a rateLimit that never binds (the cost of the window alone), and with both. Database commands are
 * counted on the wire. Absolute numbers on the test server say little (it scans); the ratios matter.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';

import pino from 'pino';

import { createApp } from '../../src/app';
import { mintToken } from '../../src/auth/tokens';
import { connectDatabase, DRIVER_MONITORING_COMMANDS } from '../../src/storage/connection';
import { ensureIndexes } from '../../src/storage/indexes';
import { wireApi, wireServices } from '../../src/wiring';

const WORKERS = 4;
const LEASE_LIMIT = 25;

interface Variant {
  name: string;
  settings: Record<string, unknown>;
  keyed: boolean;
}

export const FLOW_VARIANTS: Variant[] = [
  { name: 'no limit', settings: {}, keyed: false },
  { name: 'keyConcurrencyLimit (never binding)', settings: { keyConcurrencyLimit: 1 }, keyed: true },
  { name: 'rateLimit (never binding)', settings: { rateLimit: { jobs: 1_000, perSeconds: 1 } }, keyed: false },
  { name: 'both', settings: { keyConcurrencyLimit: 1, rateLimit: { jobs: 1_000, perSeconds: 1 } }, keyed: true },
];

export async function runFlowVariant(params: { uri: string; variant: Variant; jobs: number; secret: string }): Promise<{ jobsPerSecond: number; commandsPerLease: number; commandsPerJob: number }> {
  const { variant, jobs, secret } = params;
  const dbName = `bench_flow_${randomBytes(3).toString('hex')}`;
  const connection = await connectDatabase({ uri: params.uri, dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary', monitorCommands: true });
  await ensureIndexes(connection);
  let commands = 0;
  connection.getClient().on('commandStarted', (event) => {
    if (!DRIVER_MONITORING_COMMANDS.has(event.commandName)) commands += 1;
  });
  const wiring = { connection, logger: pino({ level: 'silent' }), jwtSecret: secret, readyTimeoutMs: 1_000 };
  const services = wireServices(wiring);
  const server = await new Promise<Server>((resolve) => {
    const s = createApp(wireApi(wiring, services)).listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  const baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const token = (role: 'admin' | 'service' | 'worker') => mintToken({ secret, sub: `bench-${role}`, role });
  const send = async (path: string, init: { method?: string; body?: unknown; role: 'admin' | 'service' | 'worker'; workerId?: string }): Promise<Record<string, unknown>> => {
    const res = await fetch(`${baseUrl}${path}`, {
      method: init.method ?? 'GET',
      headers: { Authorization: `Bearer ${token(init.role)}`, 'Content-Type': 'application/json', ...(init.workerId ? { 'X-Worker-Id': init.workerId } : {}) },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    return (await res.json()) as Record<string, unknown>;
  };
  try {
    if (Object.keys(variant.settings).length > 0) await send('/admin/types/noop', { method: 'PATCH', role: 'admin', body: variant.settings });
    for (let i = 0; i < jobs; i += 1_000) {
      const chunk = Array.from({ length: Math.min(1_000, jobs - i) }, (_, j) => ({ type: 'noop', payload: {}, ...(variant.keyed ? { concurrencyKey: `key-${i + j}` } : {}) }));
      await send('/jobs/batch', { method: 'POST', role: 'service', body: { jobs: chunk } });
    }
    let done = 0;
    let leaseCalls = 0;
    let leaseCommands = 0;
    commands = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        const workerId = `bench-worker-${w}`;
        while (done < jobs) {
          const before = commands;
          const lease = (await send(`/jobs/lease?type=noop&limit=${LEASE_LIMIT}`, { role: 'worker', workerId })) as { jobs: { jobId: string; leaseId: string }[] };
          leaseCalls += 1;
          leaseCommands += commands - before;
          if (lease.jobs.length === 0) {
            if (done >= jobs) break;
            await new Promise((resolve) => setTimeout(resolve, 5));
            continue;
          }
          await send('/jobs/reports', { method: 'POST', role: 'worker', workerId, body: { reports: lease.jobs.map((j) => ({ jobId: j.jobId, leaseId: j.leaseId, outcome: 'succeeded' })) } });
          done += lease.jobs.length;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return { jobsPerSecond: jobs / seconds, commandsPerLease: leaseCommands / leaseCalls, commandsPerJob: commands / jobs };
  } finally {
    services.jobs.close();
    await new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    await connection.dropDatabase().catch(() => undefined);
    await connection.close();
  }
}


export interface FlowLimitRow {
  variant: string;
  jobsPerSecond: number;
  /** Against the run without a limit. */
  vsNoLimit: number;
  commandsPerLease: number;
  commandsPerJob: number;
}

/** Every variant in turn on the same server; the first (no limit) is the base of the ratios. */
export async function runFlowLimits(params: { uri: string; jobs: number; secret: string; log?: (line: string) => void }): Promise<FlowLimitRow[]> {
  const rows: FlowLimitRow[] = [];
  for (const variant of FLOW_VARIANTS) {
    const result = await runFlowVariant({ uri: params.uri, variant, jobs: params.jobs, secret: params.secret });
    const base = rows[0]?.jobsPerSecond ?? result.jobsPerSecond;
    rows.push({ variant: variant.name, jobsPerSecond: Math.round(result.jobsPerSecond), vsNoLimit: Math.round((result.jobsPerSecond / base) * 100) / 100, commandsPerLease: Math.round(result.commandsPerLease * 10) / 10, commandsPerJob: Math.round(result.commandsPerJob * 100) / 100 });
    params.log?.(`  ${variant.name}: ${result.jobsPerSecond.toFixed(0)} jobs/s`);
  }
  return rows;
}
