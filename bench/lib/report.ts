import os from 'node:os';

import type { AgendaResult } from '../scenarios/agenda';
import type { EndToEndResult } from '../scenarios/end-to-end';
import type { EnqueueResult } from '../scenarios/enqueue';
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
  raw: RawLimitResult | null;
  agenda: AgendaResult | null;
  idle: IdleResult | null;
  api: { peakRssMb: number | null };
  ratios: { e2eVsRaw: number | null; e2eVsAgenda: number | null };
  targets: Target[];
  errors: Record<string, string>;
  durationSeconds: number;
}

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : round(a / b, 2);

export function computeRatiosAndTargets(r: Pick<BenchResults, 'e2e' | 'raw' | 'agenda' | 'idle' | 'api'>): Pick<BenchResults, 'ratios' | 'targets'> {
  const e2eVsRaw = ratio(r.e2e?.jobsPerSec, r.raw?.jobsPerSec);
  const e2eVsAgenda = ratio(r.e2e?.jobsPerSec, r.agenda?.jobsPerSec);
  const check = (name: string, target: string, value: number | null | undefined, holds: (v: number) => boolean): Target => {
    const v = value === undefined || value === null || !Number.isFinite(value) ? null : value;
    return { name, target, value: v, holds: v === null ? null : holds(v) };
  };
  return {
    ratios: { e2eVsRaw, e2eVsAgenda },
    targets: [
      check('end-to-end throughput vs Agenda', '>= 10x', e2eVsAgenda, (v) => v >= 10),
      check('end-to-end throughput vs raw-driver limit', '>= 0.5x', e2eVsRaw, (v) => v >= 0.5),
      check('p99 start delay (paced probe)', '< 100 ms', r.e2e?.p99StartDelayMs, (v) => v < 100),
      check('idle database operations, 8 workers', '< 5 /s', r.idle?.dbOpsPerSec, (v) => v < 5),
      check('API peak RSS', '< 200 MB', r.api.peakRssMb, (v) => v < 200),
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

/** The table `npm run bench` prints. */
export function formatTable(results: BenchResults): string {
  const { machine, sizes, e2e, raw, agenda, idle, enqueue, ratios, targets } = results;
  const target = (name: string): Target | undefined => targets.find((t) => t.name === name);
  const rows: string[][] = [['scenario', 'result', 'ours/raw', 'ours/Agenda', 'target', '']];
  rows.push([
    `enqueue (${sizes.clients} clients)`,
    enqueue ? `${n(enqueue.jobsPerSec)} jobs/s  p50 ${n(enqueue.p50Ms, 1)} ms  p99 ${n(enqueue.p99Ms, 1)} ms` : 'failed',
    '',
    '',
    '',
    '',
  ]);
  const vsRaw = target('end-to-end throughput vs raw-driver limit');
  const vsAgenda = target('end-to-end throughput vs Agenda');
  rows.push([
    `end to end (${sizes.workers} workers x ${sizes.concurrency})`,
    e2e ? `${n(e2e.jobsPerSec)} jobs/s  (${n(e2e.succeeded)} jobs in ${n(e2e.elapsedMs / 1000, 1)} s${e2e.complete ? '' : ', INCOMPLETE'})` : 'failed',
    x(ratios.e2eVsRaw),
    x(ratios.e2eVsAgenda),
    '>= 0.5x raw, >= 10x Agenda',
    [verdict(vsRaw), verdict(vsAgenda)].filter(Boolean).join(', '),
  ]);
  if (e2e) {
    rows.push([
      '  start delay, paced',
      `p50 ${n(e2e.p50StartDelayMs, 1)} ms  p99 ${n(e2e.p99StartDelayMs, 1)} ms  (${e2e.probeJobs} jobs, 1 per ${sizes.probeIntervalMs} ms; API event loop stalled up to ${n(e2e.apiEventLoopMaxMs.probe)} ms, GC ${n(e2e.apiGc.probe.ms)} ms)`,
      '',
      '',
      'p99 < 100 ms',
      verdict(target('p99 start delay (paced probe)')),
    ]);
    rows.push(['  start delay, backlog', `p50 ${n(e2e.backlogStartDelayMs.p50)} ms  p99 ${n(e2e.backlogStartDelayMs.p99)} ms  (queued behind the burst)`, '', '', '', '']);
    rows.push([
      '  lease path',
      `${n(e2e.meanJobsPerLease, 2)} jobs/lease, ${n(e2e.leaseCallsPerJob, 2)} lease calls/job, API succeed call ${n(e2e.meanSucceedMs, 1)} ms`,
      '',
      '',
      '',
      '',
    ]);
  }
  if (e2e) rows.push(['  CPU ms per job', cpuLine(e2e.cpuMsPerJob), '', '', '', '']);
  rows.push([
    'raw driver limit',
    raw ? `${n(raw.jobsPerSec)} jobs/s  (${n(raw.succeeded)} jobs in ${n(raw.elapsedMs / 1000, 1)} s, ${n(raw.meanJobsPerLease, 2)} jobs/claim${raw.complete ? '' : ', INCOMPLETE'})` : 'failed',
    '1.00x',
    '',
    '',
    '',
  ]);
  if (raw) rows.push(['  CPU ms per job', cpuLine(raw.cpuMsPerJob), '', '', '', '']);
  rows.push([
    `Agenda 6 (${sizes.workers} workers x ${sizes.concurrency})`,
    agenda
      ? `${n(agenda.jobsPerSec, 1)} jobs/s  (${n(agenda.completed)} jobs in ${n(agenda.elapsedMs / 1000, 1)} s${agenda.complete ? '' : `, ${n(agenda.windowMs / 1000)} s window`})`
      : 'failed',
    '',
    '1.00x',
    '',
    '',
  ]);
  if (agenda) rows.push(['  CPU ms per job', cpuLine(agenda.cpuMsPerJob), '', '', '', '']);
  rows.push([
    `idle (${sizes.workers} workers, ${n(sizes.idleWindowMs / 1000)} s)`,
    idle
      ? `${n(idle.dbOpsPerSec, 2)} db ops/s  (+${n(idle.monitoringPerSec, 2)}/s driver monitoring; ${Object.entries(idle.byCommand)
          .slice(0, 4)
          .map(([c, v]) => `${c} ${n(v, 2)}`)
          .join(', ')})`
      : 'failed',
    '',
    '',
    '< 5 ops/s',
    verdict(target('idle database operations, 8 workers')),
  ]);
  rows.push([
    'API peak RSS (end to end)',
    results.api.peakRssMb === null || !e2e
      ? 'n/a'
      : `${n(results.api.peakRssMb)} MB  (${n(e2e.apiRssAtStartMb)} MB before the load; V8 heap up to ${n(e2e.apiPeakHeapTotalMb)} MB; after: heap used ${n(e2e.apiHeapUsedMbAtEnd)} MB, external ${n(e2e.apiExternalMbAtEnd)} MB)`,
    '',
    '',
    '< 200 MB',
    verdict(target('API peak RSS')),
  ]);

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
