import os from 'node:os';

import type { AgendaResult } from '../scenarios/agenda';
import type { EndToEndResult } from '../scenarios/end-to-end';
import type { EnqueueResult } from '../scenarios/enqueue';
import type { FlowLimitRow } from '../scenarios/flow-limits';
import type { IdleResult } from '../scenarios/idle';
import type { RawLimitResult } from '../scenarios/raw-limit';
import type { BenchSizes } from './context';
import { round } from './numbers';

export interface Machine {
  os: string;
  cpuModel: string;
  cores: number;
  memoryGb: number;
  node: string;
  database: { kind: string; version: string };
}

export function describeMachine(database: Machine['database']): Machine {
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGb: round(os.totalmem() / 1024 ** 3),
    node: process.version,
    database,
  };
}

export interface Target {
  name: string;
  target: string;
  value: number | null;
  holds: boolean | null;
}

export interface BenchResults {
  date: string;
  mode: 'full' | 'quick';
  machine: Machine;
  sizes: BenchSizes;
  enqueue: EnqueueResult | null;
  e2e: EndToEndResult | null;
  e2eTwoApis: EndToEndResult | null;
  raw: RawLimitResult | null;
  agenda: AgendaResult | null;
  idle: IdleResult | null;
  /** What a keyConcurrencyLimit and a rateLimit cost the lease path (in-process API, 4 HTTP workers). */
  flow: FlowLimitRow[] | null;
  api: { peakRssMb: number | null };
  ratios: { e2eVsRaw: number | null; e2eVsAgenda: number | null; dbRequestsPerJobVsRaw: number | null };
  targets: Target[];
  errors: Record<string, string>;
  durationSeconds: number;
}

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : round(a / b, 2);

export function computeRatiosAndTargets(r: Pick<BenchResults, 'e2e' | 'e2eTwoApis' | 'raw' | 'agenda' | 'idle' | 'api'>): Pick<BenchResults, 'ratios' | 'targets'> {
  const e2eVsRaw = ratio(r.e2e?.jobsPerSec, r.raw?.jobsPerSec);
  const e2eVsAgenda = ratio(r.e2e?.jobsPerSec, r.agenda?.jobsPerSec);
  const dbRequestsPerJobVsRaw = ratio(r.e2e?.dbRequestsPerJob?.total, r.raw?.dbRequestsPerJob?.total);
  const serviceCpu = (e: EndToEndResult | null): number | null => {
    const api = e?.cpuMsPerJob.API;
    const workers = e?.cpuMsPerJob.workers;
    return api === undefined || api === null || workers === undefined || workers === null ? null : round(api + workers, 2);
  };
  const check = (name: string, target: string, value: number | null | undefined, holds: (v: number) => boolean): Target => {
    const v = value === undefined || value === null || !Number.isFinite(value) ? null : value;
    return { name, target, value: v, holds: v === null ? null : holds(v) };
  };
  return {
    ratios: { e2eVsRaw, e2eVsAgenda, dbRequestsPerJobVsRaw },
    // The targets of issue 13 (ratios from one run on one server).
    targets: [
      check('end-to-end throughput vs raw-driver limit', '>= 0.8x', e2eVsRaw, (v) => v >= 0.8),
      check('end-to-end throughput vs Agenda', '>= 2.5x', e2eVsAgenda, (v) => v >= 2.5),
      check('database requests per job vs raw', '<= 1.2x', dbRequestsPerJobVsRaw, (v) => v <= 1.2),
      check('API + worker CPU per job', '<= 3 ms', serviceCpu(r.e2e), (v) => v <= 3),
      check('p99 start delay (paced), one API', '< 50 ms', r.e2e?.p99StartDelayMs, (v) => v < 50),
      check('p99 start delay (paced), two APIs', '< 50 ms', r.e2eTwoApis?.p99StartDelayMs, (v) => v < 50),
      check('idle database requests, API + 8 workers', '< 1 /s', r.idle?.dbOpsPerSec, (v) => v < 1),
      check('API peak RSS', '< 150 MB', r.api.peakRssMb, (v) => v < 150),
    ],
  };
}

const n = (value: number | undefined | null, digits = 0): string =>
  value === undefined || value === null || !Number.isFinite(value) ? 'n/a' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const x = (value: number | null): string => (value === null ? '' : `${n(value, 2)}x`);
const cpuLine = (perJob: Record<string, number | null>): string =>
  Object.entries(perJob)
    .map(([name, ms]) => `${name} ${n(ms, 2)}`)
    .join(', ');
const verdict = (t: Target | undefined): string => (!t || t.holds === null ? '' : t.holds ? 'holds' : 'MISSED');

/** The table `npm run bench` prints: the scenarios, then every target with holds / MISSED. */
export function formatTable(results: BenchResults): string {
  const { machine, sizes, e2e, e2eTwoApis, raw, agenda, idle, enqueue, ratios, targets } = results;
  const rows: string[][] = [['scenario', 'result', 'ours/raw', 'ours/Agenda', '', '']];
  const requests = (perJob: { total: number; byCommand: Record<string, number> } | null | undefined): string =>
    perJob
      ? `${n(perJob.total, 2)} db requests/job (${Object.entries(perJob.byCommand)
          .slice(0, 5)
          .map(([c, v]) => `${c} ${n(v, 2)}`)
          .join(', ')})`
      : 'db requests/job n/a';
  rows.push([`enqueue (${sizes.clients} clients)`, enqueue ? `${n(enqueue.jobsPerSec)} jobs/s  p50 ${n(enqueue.p50Ms, 1)} ms  p99 ${n(enqueue.p99Ms, 1)} ms` : 'failed', '', '', '', '']);
  const endToEnd = (label: string, e: EndToEndResult | null, withRatios: boolean): void => {
    rows.push([
      label,
      e ? `${n(e.jobsPerSec)} jobs/s  (${n(e.succeeded)} jobs in ${n(e.elapsedMs / 1000, 1)} s${e.complete ? '' : ', INCOMPLETE'})` : 'failed',
      withRatios ? x(ratios.e2eVsRaw) : '',
      withRatios ? x(ratios.e2eVsAgenda) : '',
      '',
      '',
    ]);
    if (!e) return;
    rows.push([
      '  start delay, paced',
      `p50 ${n(e.p50StartDelayMs, 1)} ms  p99 ${n(e.p99StartDelayMs, 1)} ms  (${e.probeJobs} jobs, 1 per ${sizes.probeIntervalMs} ms; API event loop stalled up to ${n(e.apiEventLoopMaxMs.probe)} ms, GC ${n(e.apiGc.probe.ms)} ms)`,
      '', '', '', '',
    ]);
    rows.push(['  start delay, backlog', `p50 ${n(e.backlogStartDelayMs.p50)} ms  p99 ${n(e.backlogStartDelayMs.p99)} ms  (queued behind the burst)`, '', '', '', '']);
    rows.push(['  lease path', `${n(e.meanJobsPerLease, 2)} jobs/lease, ${n(e.leaseCallsPerJob, 2)} lease calls/job, API succeed call ${n(e.meanSucceedMs, 1)} ms`, '', '', '', '']);
    rows.push(['  database', requests(e.dbRequestsPerJob), withRatios ? x(ratios.dbRequestsPerJobVsRaw) : '', '', '', '']);
    rows.push(['  CPU ms per job', cpuLine(e.cpuMsPerJob), '', '', '', '']);
  };
  endToEnd(`end to end (${sizes.workers} workers x ${sizes.concurrency})`, e2e, true);
  endToEnd(`end to end, two API instances`, e2eTwoApis, false);
  rows.push([
    'raw driver limit',
    raw ? `${n(raw.jobsPerSec)} jobs/s  (${n(raw.succeeded)} jobs in ${n(raw.elapsedMs / 1000, 1)} s, ${n(raw.meanJobsPerLease, 2)} jobs/claim${raw.complete ? '' : ', INCOMPLETE'})` : 'failed',
    '1.00x', '', '', '',
  ]);
  if (raw) rows.push(['  database', requests(raw.dbRequestsPerJob), '1.00x', '', '', '']);
  if (raw) rows.push(['  CPU ms per job', cpuLine(raw.cpuMsPerJob), '', '', '', '']);
  rows.push([
    `Agenda 6 (${sizes.workers} workers x ${sizes.concurrency})`,
    agenda
      ? `${n(agenda.jobsPerSec, 1)} jobs/s  (${n(agenda.completed)} jobs in ${n(agenda.elapsedMs / 1000, 1)} s${agenda.complete ? '' : `, ${n(agenda.windowMs / 1000)} s window`})`
      : 'failed',
    '', '1.00x', '', '',
  ]);
  if (agenda) rows.push(['  database', requests(agenda.dbRequestsPerJob), '', '', '', '']);
  if (agenda) rows.push(['  CPU ms per job', cpuLine(agenda.cpuMsPerJob), '', '', '', '']);
  rows.push([
    `idle (API + ${sizes.workers} workers, ${n(sizes.idleWindowMs / 1000)} s)`,
    idle
      ? `${n(idle.dbOpsPerSec, 2)} db requests/s  (+${n(idle.monitoringPerSec, 2)}/s driver monitoring; ${Object.entries(idle.byCommand)
          .filter(([c]) => !/^(ismaster|hello)/i.test(c))
          .slice(0, 4)
          .map(([c, v]) => `${c} ${n(v, 2)}`)
          .join(', ')})`
      : 'failed',
    '', '', '', '',
  ]);
  if (results.flow) {
    for (const row of results.flow) {
      rows.push([`flow: ${row.variant}`, `${n(row.jobsPerSecond)} jobs/s  (${n(row.vsNoLimit, 2)}x no limit; ${n(row.commandsPerJob, 2)} db commands per job)`, '', '', '', '']);
    }
  }
  rows.push([
    'API peak RSS (end to end)',
    results.api.peakRssMb === null || !e2e
      ? 'n/a'
      : `${n(results.api.peakRssMb)} MB  (${n(e2e.apiRssAtStartMb)} MB before the load; V8 heap up to ${n(e2e.apiPeakHeapTotalMb)} MB; after: heap used ${n(e2e.apiHeapUsedMbAtEnd)} MB, external ${n(e2e.apiExternalMbAtEnd)} MB)`,
    '', '', '', '',
  ]);
  rows.push(['', '', '', '', '', '']);
  rows.push(['target', 'measured', 'goal', '', '', '']);
  for (const t of targets) rows.push([t.name, t.value === null ? 'n/a' : n(t.value, 2), t.target, verdict(t), '', '']);

  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const header = [
    `jobs bench (${results.mode}) on ${machine.database.kind} ${machine.database.version}; ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGb} GB, node ${machine.node}; ${results.date}`,
  ];
  if (/mongo-java-server/.test(machine.database.kind)) {
    header.push('mongo-java-server scans a whole collection for every query (it ignores non-unique indexes): absolute numbers say');
    header.push('nothing about MongoDB. Compare the ratios, or run MONGODB_URI=<a real MongoDB> npm run bench.');
  }
  const footer = Object.entries(results.errors).map(([scenario, message]) => `${scenario} FAILED: ${message}`);
  return [...header, '', line(rows[0]!), rule, ...rows.slice(1).map(line), ...(footer.length ? ['', ...footer] : [])].join('\n');
}
