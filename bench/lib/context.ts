/** What every scenario gets from the runner: the database, sizes, and where to report progress. */
export interface BenchContext {
  quick: boolean;
  /** Server address without a database name (each scenario picks its own database). */
  mongoUri: string;
  jwtSecret: string;
  sizes: BenchSizes;
  /** Where the API of the end-to-end scenario writes a CPU profile (--profile); null: no profile. */
  profileDir: string | null;
  /** A fresh database name for one scenario, so every scenario scans a collection of its own size. */
  dbName(scenario: string): string;
  log(message: string): void;
}

export interface BenchSizes {
  /** Worker processes (ours and Agenda's). */
  workers: number;
  /** Jobs each worker runs at once; our workers lease up to their free capacity, so also the batch size. */
  concurrency: number;
  /** Long-poll wait our workers ask for (WORKER_LEASE_WAIT_SECONDS). */
  leaseWaitSeconds: number;
  /** Concurrent HTTP clients enqueueing (the enqueue scenario, and feeding the end-to-end one). */
  clients: number;
  enqueueRequests: number;
  /** Jobs in the end-to-end, raw-driver and Agenda scenarios. */
  jobs: number;
  /** Latency probe: jobs enqueued one at a time, this far apart, to workers that are idle. */
  probeJobs: number;
  probeIntervalMs: number;
  /** Agenda is slow on a server that scans: it is measured over this window at most. */
  agendaWindowMs: number;
  idleWindowMs: number;
  /** A scenario that has not finished by then reports what it did (marked incomplete). */
  scenarioDeadlineMs: number;
}

export const FULL_SIZES: BenchSizes = {
  workers: 8,
  concurrency: 16,
  leaseWaitSeconds: 20,
  clients: 32,
  enqueueRequests: 4_000,
  jobs: 3_000,
  probeJobs: 200,
  probeIntervalMs: 50,
  agendaWindowMs: 30_000,
  idleWindowMs: 30_000,
  scenarioDeadlineMs: 180_000,
};

export const QUICK_SIZES: BenchSizes = {
  ...FULL_SIZES,
  enqueueRequests: 800,
  jobs: 800,
  probeJobs: 30,
  probeIntervalMs: 40,
  agendaWindowMs: 6_000,
  idleWindowMs: 5_000,
  scenarioDeadlineMs: 25_000,
};

/** `uri` with its database path replaced by `dbName`, options kept (mongodb:// and mongodb+srv://). */
export function withDatabase(uri: string, dbName: string): string {
  const schemeEnd = uri.indexOf('://') + 3;
  const rest = uri.slice(schemeEnd);
  const queryStart = rest.indexOf('?');
  const beforeQuery = queryStart >= 0 ? rest.slice(0, queryStart) : rest;
  const query = queryStart >= 0 ? rest.slice(queryStart) : '';
  const slash = beforeQuery.indexOf('/');
  const hosts = slash >= 0 ? beforeQuery.slice(0, slash) : beforeQuery;
  return `${uri.slice(0, schemeEnd)}${hosts}/${dbName}${query}`;
}
