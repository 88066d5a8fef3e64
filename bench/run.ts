/**
 * `npm run bench`: the queue measured side by side with the raw-driver limit and Agenda, on one
 * database, in one run (see README, "Benchmarks").
 *
 *   npm run bench                      full run (a few minutes)
 *   npm run bench -- --quick           smaller sizes, under a minute
 *   npm run bench -- --profile         also CPU-profiles the API during the end-to-end scenario
 *   npm run bench -- --only=e2e,raw    some scenarios only (enqueue, e2e, e2e2, raw, agenda, idle, flow)
 *   MONGODB_URI=mongodb://... npm run bench    against a real MongoDB (absolute numbers)
 *
 * Prints a table on stdout (progress on stderr) and writes bench/results.json.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startEmbeddedDatabase, type EmbeddedDatabase } from '../src/embedded-db';
import { FULL_SIZES, QUICK_SIZES, type BenchContext } from './lib/context';
import { buildServices } from './lib/service-process';
import { describeServer, dropDatabases } from './lib/database';
import { computeRatiosAndTargets, describeMachine, formatTable, type BenchResults } from './lib/report';
import { runAgenda } from './scenarios/agenda';
import { runEndToEnd } from './scenarios/end-to-end';
import { runEnqueue } from './scenarios/enqueue';
import { runFlowLimits } from './scenarios/flow-limits';
import { runIdle } from './scenarios/idle';
import { runRawLimit } from './scenarios/raw-limit';

const SCENARIOS = ['enqueue', 'e2e', 'e2e2', 'raw', 'agenda', 'idle', 'flow'] as const;
type Scenario = (typeof SCENARIOS)[number];

function parseArgs(argv: readonly string[]): { quick: boolean; profile: boolean; only: Set<Scenario> } {
  let quick = false;
  let profile = false;
  let only = new Set<Scenario>(SCENARIOS);
  for (const arg of argv) {
    if (arg === '--quick') quick = true;
    else if (arg === '--profile') profile = true;
    else if (arg.startsWith('--only=')) {
      const names = arg.slice('--only='.length).split(',');
      const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
      if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
      only = new Set(names as Scenario[]);
    } else throw new Error(`unknown argument ${arg}; use --quick, --profile, --only=${SCENARIOS.join(',')}`);
  }
  return { quick, profile, only };
}

const log = (message: string): void => void process.stderr.write(`${message}\n`);

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const began = Date.now();
  let embedded: EmbeddedDatabase | undefined;
  let mongoUri = process.env.MONGODB_URI;
  if (!mongoUri) {
    log('starting an embedded database...');
    embedded = await startEmbeddedDatabase({ port: 0, onFallback: (reason) => log(`  no mongod (${reason}); using mongo-java-server`) });
    mongoUri = embedded.uri;
  }
  const server = await describeServer(mongoUri);
  const machine = describeMachine({ kind: embedded?.kind ?? 'MongoDB from MONGODB_URI', version: server.version });
  const runId = randomBytes(3).toString('hex');
  const dbNames: string[] = [];
  const ctx: BenchContext = {
    quick: args.quick,
    mongoUri,
    jwtSecret: randomBytes(32).toString('hex'),
    sizes: args.quick ? QUICK_SIZES : FULL_SIZES,
    profileDir: args.profile ? path.join(os.tmpdir(), `jobs-bench-profile-${runId}`) : null,
    dbName: (scenario) => {
      const name = `bench_${runId}_${scenario}`;
      dbNames.push(name);
      return name;
    },
    log,
  };
  log(`database: ${machine.database.kind} ${machine.database.version}; ${args.quick ? 'quick' : 'full'} run`);

  const results: BenchResults = {
    date: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    machine,
    sizes: ctx.sizes,
    enqueue: null,
    e2e: null,
    e2eTwoApis: null,
    raw: null,
    agenda: null,
    idle: null,
    flow: null,
    api: { peakRssMb: null },
    ratios: { e2eVsRaw: null, e2eVsAgenda: null, dbRequestsPerJobVsRaw: null },
    targets: [],
    errors: {},
    durationSeconds: 0,
  };
  const run = async <T>(scenario: Scenario, title: string, fn: () => Promise<T>): Promise<T | null> => {
    if (!args.only.has(scenario)) return null;
    const started = Date.now();
    log(`${title}...`);
    try {
      const result = await fn();
      log(`  done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return result;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      results.errors[scenario] = message.split('\n')[0]!;
      log(`  ${scenario} failed: ${err instanceof Error ? (err.stack ?? message) : message}`);
      return null;
    }
  };
  // The services run compiled, as in production.
  log('building (npm run build, when stale)...');
  buildServices();
  try {
    results.enqueue = await run('enqueue', 'enqueue: HTTP enqueue throughput', () => runEnqueue(ctx));
    results.e2e = await run('e2e', 'end to end: API + worker processes', () => runEndToEnd(ctx));
    results.e2eTwoApis = await run('e2e2', 'end to end, two API instances (workers and producers split across them)', () => runEndToEnd(ctx, { apiInstances: 2 }));
    results.raw = await run('raw', 'raw limit: the same claims with the driver alone', () => runRawLimit(ctx));
    results.agenda = await run('agenda', 'Agenda: the same jobs through Agenda 6', () => runAgenda(ctx));
    results.idle = await run('idle', 'idle: database requests of idle workers', () => runIdle(ctx));
    results.flow = await run('flow', 'flow control: a keyConcurrencyLimit and a rateLimit against an unlimited type', () =>
      runFlowLimits({ uri: mongoUri, jobs: ctx.quick ? 500 : 2_000, secret: ctx.jwtSecret, log }),
    );
  } finally {
    await dropDatabases(mongoUri, dbNames).catch(() => undefined);
    await embedded?.stop();
  }
  results.api.peakRssMb = results.e2e?.apiPeakRssMb ?? null;
  Object.assign(results, computeRatiosAndTargets(results));
  results.durationSeconds = Math.round((Date.now() - began) / 1000);

  const file = path.join(__dirname, 'results.json');
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${formatTable(results)}\n\n`);
  if (results.e2e?.profile) {
    const p = results.e2e.profile;
    const lines = (title: string, items: { name: string; ms: number; pct: number }[]): string =>
      [title, ...items.map((i) => `  ${String(i.pct).padStart(5)}%  ${String(i.ms).padStart(6)} ms  ${i.name}`)].join('\n');
    process.stdout.write(
      [
        `API CPU profile, end-to-end throughput phase: ${p.busyMs} ms busy over ${p.windowMs} ms (${p.idlePct}% idle); ${p.file}`,
        lines('self time by package / file:', p.bySelf.slice(0, 12)),
        lines('inclusive time (a frame of it on the stack):', p.byInclusive.slice(0, 15)),
        lines('top functions by self time:', p.topFunctions.slice(0, 12)),
        '',
      ].join('\n'),
    );
  }
  process.stdout.write(`results: ${path.relative(process.cwd(), file)} (${results.durationSeconds} s)\n`);
  return Object.keys(results.errors).length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
