import { loadMongoBackend } from '../agenda/backend';
import { withDatabase, type BenchContext } from '../lib/context';
import { databaseServerPid, startCpuAccounting } from '../lib/cpu-time';
import { openDatabase } from '../lib/database';
import { requestsPerJob, startCountingProxy } from '../lib/wire-proxy';
import { runClosedLoop } from '../lib/http-load';
import { pollUntil, round } from '../lib/numbers';
import { BenchProcess, stopAll } from '../lib/service-process';

export interface AgendaResult {
  jobsPerSec: number;
  jobs: number;
  /** Jobs finished within the window (all of them when `complete`). */
  completed: number;
  complete: boolean;
  /** The time the rate is taken over: first enqueue to the last finish, or the whole window. */
  elapsedMs: number;
  windowMs: number;
  processEveryMs: number;
  backend: string;
  /** CPU ms per finished job: Agenda's worker processes, the database, the enqueuer (this process). */
  cpuMsPerJob: Record<string, number | null>;
  /** Requests the database got per finished job, by command (counted on the wire; monitoring apart). */
  dbRequestsPerJob: { total: number; byCommand: Record<string, number> } | null;
}

/**
 * Agenda's poll interval in the bench. Its default (5 s) would measure mostly waiting; 250 ms is
 * the shortest wait of our workers' poll backoff, so both look for work about as eagerly.
 */
const PROCESS_EVERY_MS = 250;

/**
 * The same noop jobs through Agenda 6 (@agendajs/mongo-backend) on a database of its own: `workers`
 * worker processes (maxConcurrency and the job's concurrency = our workers' concurrency, Agenda's
 * default lock limits), fed by `clients` concurrent `agenda.now()` calls from this process. Agenda
 * locks one job per findOneAndUpdate, so on a server that scans it is measured over a window:
 * jobs finished (lastFinishedAt) within `agendaWindowMs` of the first enqueue.
 */
export async function runAgenda(ctx: BenchContext): Promise<AgendaResult> {
  const { sizes } = ctx;
  const dbName = ctx.dbName('agenda');
  const counting = await startCountingProxy(ctx.mongoUri);
  const address = withDatabase(counting.uri, dbName);
  const { Agenda } = await import('agenda');
  const { MongoBackend, source } = await loadMongoBackend();

  const completedBy = new Map<number, number>();
  const workers = Array.from({ length: sizes.workers }, (_, i) => {
    const worker = new BenchProcess(`agenda worker ${i + 1}`, {
      entry: 'bench/agenda/worker.ts',
      env: {
        AGENDA_MONGODB_URI: address,
        AGENDA_CONCURRENCY: String(sizes.concurrency),
        AGENDA_PROCESS_EVERY_MS: String(PROCESS_EVERY_MS),
        AGENDA_WORKER_NAME: `bench-agenda-${i + 1}`,
      },
    });
    worker.onLine((line) => {
      const match = /^completed (\d+)$/.exec(line);
      if (match) completedBy.set(i, Number(match[1]));
    });
    return worker;
  });
  const enqueuerBackend = new MongoBackend({ address });
  const enqueuer = new Agenda({ backend: enqueuerBackend });
  try {
    await Promise.all(workers.map((w) => w.waitForLine(/^agenda worker started$/, 60_000)));
    await enqueuer.ready;
    const completed = (): number => [...completedBy.values()].reduce((a, b) => a + b, 0);

    const dbPid = databaseServerPid();
    const cpu = startCpuAccounting({
      workers: workers.map((w) => w.pid),
      database: dbPid === null ? [] : [dbPid],
      'bench enqueuer': 'self',
    });
    counting.proxy?.reset();
    const startedAt = Date.now();
    const windowEnd = startedAt + sizes.agendaWindowMs;
    await runClosedLoop({
      total: sizes.jobs,
      concurrency: sizes.clients,
      call: async () => {
        // Enqueueing counts towards the window (as it does for ours), but stops when the window ends.
        if (Date.now() < windowEnd) await enqueuer.now('noop', {});
      },
    });
    const complete = await pollUntil(async () => completed() >= sizes.jobs, { everyMs: 50, deadline: windowEnd });
    const wire = counting.proxy?.snapshot();
    const cpuSplit = cpu.finish(completed());
    await stopAll(workers);

    const connection = await openDatabase(ctx.mongoUri, dbName);
    try {
      const jobs = connection.db!.collection<{ lastFinishedAt?: Date | null }>('agendaJobs');
      const inWindow = await jobs.countDocuments({ lastFinishedAt: { $lte: new Date(windowEnd) } });
      const last = await jobs.find({ lastFinishedAt: { $ne: null } }).sort({ lastFinishedAt: -1 }).limit(1).toArray();
      if (inWindow === 0) {
        // A silent zero would read as "Agenda is infinitely slower"; say what the workers said instead.
        throw new Error(`Agenda finished no job within ${sizes.agendaWindowMs} ms (progress reported: ${completed()}); worker 1 said:\n${workers[0]!.tail(10)}`);
      }
      const lastFinishedAt = last[0]?.lastFinishedAt?.getTime() ?? windowEnd;
      const elapsedMs = complete ? lastFinishedAt - startedAt : sizes.agendaWindowMs;
      return {
        jobsPerSec: round(inWindow / (elapsedMs / 1000)),
        jobs: sizes.jobs,
        completed: inWindow,
        complete,
        elapsedMs,
        windowMs: sizes.agendaWindowMs,
        processEveryMs: PROCESS_EVERY_MS,
        backend: source,
        cpuMsPerJob: cpuSplit.perJobMs,
        dbRequestsPerJob: requestsPerJob(wire, completed()),
      };
    } finally {
      await connection.close();
    }
  } finally {
    await stopAll(workers);
    await enqueuerBackend.disconnect().catch(() => undefined);
    await counting.proxy?.close();
  }
}
