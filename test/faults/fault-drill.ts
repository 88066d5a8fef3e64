import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { Connection } from 'mongoose';

import type { ImageContentType } from '../../src/model/asset';
import { ConflictApiError, NetworkError, UnavailableApiError } from '../../src/client/errors';
import { JobsClient } from '../../src/client/jobs-client';
import type { JobStatus } from '../../src/client/types';
import type { AttemptRecord } from '../../src/model/job';
import { createSeededRandom } from '../../src/payouts/seeded-random';
import { connectDatabase } from '../../src/storage/connection';
import { makeImage } from '../fixtures/images';
import { waitFor } from '../helpers/poll';
import { startApiProcess, startWorkerProcess, type ServiceProcess } from '../helpers/processes';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * The fault drill: real API and worker processes on a real MongoDB-compatible server, a few
 * hundred (short) or a few thousand (full) jobs of every type, and a seeded schedule of faults
 * while they run: workers killed with SIGKILL, the API stopped and started again on the same port,
 * a worker frozen (SIGSTOP) until its leases are reclaimed and then woken (SIGCONT) holding stale
 * leases. Afterwards it proves from the database and the processes' logs that nothing was lost,
 * nothing succeeded twice, no stale report was accepted, every payout moved money exactly once,
 * and the admin stats match direct counts.
 *
 * Glossary: a *spec* is a job the drill intends to enqueue (keyed by its idempotency key); a
 * *stale lease* is one a frozen worker still believes it holds after the API reclaimed it; a
 * *refusal* is a 409 a worker logged for a report or heartbeat on such a lease.
 */

export interface DrillSize {
  name: 'short' | 'full';
  jobs: { noop: number; payout: number; thumbnail: number; badThumbnail: number; cancelled: number };
  /** Range of the noop jobs' handler time. */
  noopSleepMs: [number, number];
  workers: number;
  concurrency: number;
  /** cancelKills: a worker frozen, every job it holds cancelled through the API, then the worker SIGKILLed. */
  faults: { kills: number; restarts: number; pauses: number; cancelKills: number };
  /** Range of the random gap before each fault. */
  gapMs: [number, number];
  /** Range of how long the API stays down on a restart (a deploy, a crash loop), before the new process starts. */
  apiDownMs: [number, number];
  /** While faults remain, the producer keeps at most this many jobs queued (so work outlasts the faults). */
  backlog: number;
  drainTimeoutMs: number;
}

export const DRILL_SIZES: Record<DrillSize['name'], DrillSize> = {
  short: {
    name: 'short',
    jobs: { noop: 150, payout: 20, thumbnail: 6, badThumbnail: 2, cancelled: 3 },
    noopSleepMs: [150, 700],
    workers: 2,
    concurrency: 4,
    faults: { kills: 2, restarts: 1, pauses: 1, cancelKills: 1 },
    gapMs: [300, 1_500],
    apiDownMs: [1_500, 3_000],
    backlog: 24,
    drainTimeoutMs: 90_000,
  },
  full: {
    name: 'full',
    jobs: { noop: 2_600, payout: 300, thumbnail: 60, badThumbnail: 6, cancelled: 10 },
    noopSleepMs: [0, 300],
    workers: 3,
    concurrency: 8,
    faults: { kills: 8, restarts: 3, pauses: 3, cancelKills: 3 },
    gapMs: [1_000, 3_500],
    apiDownMs: [500, 4_000],
    backlog: 400,
    drainTimeoutMs: 600_000,
  },
};

type Expected = Extract<JobStatus, 'succeeded' | 'failed' | 'cancelled'>;

interface JobSpec {
  key: string;
  type: 'noop' | 'payout.execute' | 'thumbnail.create';
  payload: Record<string, unknown>;
  expected: Expected;
  /** Cancelled specs are scheduled an hour out and cancelled while still queued. */
  cancel?: boolean;
  /** Set when a cancel of the job, while it ran, was acknowledged (a cancel-then-kill fault). */
  cancelAcknowledgedAt?: number;
}

interface StaleLease {
  jobId: string;
  leaseId: string;
  attempt: number;
}

interface LiveWorker {
  id: string;
  process: ServiceProcess;
}

export interface DrillReport {
  size: DrillSize['name'];
  seed: number;
  seconds: number;
  jobs: number;
  byType: Record<string, number>;
  finalStatuses: Record<string, number>;
  faultsPlanned: DrillSize['faults'];
  faultsDone: DrillSize['faults'];
  kills: number;
  leasesHeldByKilledWorkers: number;
  cancelKills: number;
  /** Cancels of running jobs answered 200 (flagged or cancelled): each must end `cancelled`, and never run again. */
  cancelsAcknowledged: number;
  /** Of those, payouts: none may have moved money. */
  payoutCancelsAcknowledged: number;
  /** Cancels refused with 409 (a payout past its point of no return, or a job that finished first). */
  cancelsRefused: number;
  restarts: number;
  apiDowntimeMs: number[];
  pauses: number;
  staleLeases: number;
  /** 409s the woken workers logged for their stale leases. */
  staleReportsRefused: number;
  /** 409 refusals logged by all workers, every one checked against the attempt history. */
  refusalsLogged: number;
  reclaims: number;
  enqueueRetries: number;
  /** Worker lease calls that failed (API restarting) and were retried after a backoff. */
  leaseBackoffs: number;
  /** Report tries that failed (API away) and were tried again. */
  reportRetries: number;
  /** Reports a worker gave up on (the API away for longer than the lease); the lease expired instead. */
  reportsGivenUp: number;
  /** Answers of the API processes by status class, from their request logs (2xx are not logged). */
  apiAnswers: Record<string, number>;
  transfers: number;
  duplicates: number;
  lost: number;
  staleAccepted: number;
  statsMismatches: string[];
  problems: string[];
}

interface AttemptDoc extends Omit<AttemptRecord, 'leasedAt' | 'finishedAt'> {
  leasedAt: Date;
  finishedAt: Date | null;
}

interface JobDoc {
  _id: string;
  type: string;
  status: string;
  attempt: number;
  maxAttempts: number;
  nextRunAt: Date;
  leaseId: string | null;
  leaseExpiresAt: Date | null;
  workerId: string | null;
  idempotencyKey: string | null;
  attempts: AttemptDoc[];
}

const REFUSAL_MESSAGES = new Set(['report refused: the lease is gone', 'lease lost; abandoning the job without reporting']);

/** The random gaps of the fault schedule: deliberate, seeded waits, not synchronisation. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class FaultDrill {
  private readonly random: () => number;
  private readonly env: Record<string, string>;
  private api: ServiceProcess | undefined;
  private port = 0;
  private baseUrl = '';
  private readonly apiProcesses: ServiceProcess[] = [];
  private readonly workers = new Map<string, LiveWorker>();
  private readonly everyWorker: LiveWorker[] = [];
  private workerCount = 0;
  private connection: Connection | undefined;
  private faultsDone = false;
  private readonly specs: JobSpec[] = [];
  private readonly jobIdByKey = new Map<string, string>();
  private readonly escrowIds: string[] = [];
  private readonly assetIds: string[] = [];
  private readonly staleLeases: StaleLease[] = [];
  private staleReportsRefused = 0;
  private enqueueRetries = 0;
  private leasesHeldByKilledWorkers = 0;
  private kills = 0;
  private pauses = 0;
  private cancelKills = 0;
  private cancelsRefused = 0;
  private readonly apiDowntimeMs: number[] = [];
  private baitCount = 0;

  constructor(
    private readonly params: {
      size: DrillSize;
      seed: number;
      mongoUri: string;
      dbName: string;
      log: (line: string) => void;
    },
  ) {
    this.random = createSeededRandom(params.seed);
    this.env = {
      MONGODB_URI: params.mongoUri,
      MONGODB_DB_NAME: params.dbName,
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'info',
      RECLAIM_INTERVAL_MS: '200',
      LEASE_POLL_INTERVAL_MS: '200',
      // Short leases and retries for the drill's environment (never by editing the registry); room
      // for many attempts, since faults may cost a job several.
      JOB_POLICY_OVERRIDES: JSON.stringify({
        noop: { timeoutSeconds: 2, maxAttempts: 10, backoffBaseSeconds: 0.2, backoffCapSeconds: 1 },
        'payout.execute': { timeoutSeconds: 3, maxAttempts: 25, backoffBaseSeconds: 0.2, backoffCapSeconds: 1 },
        'thumbnail.create': { timeoutSeconds: 5, maxAttempts: 10, backoffBaseSeconds: 0.2, backoffCapSeconds: 1 },
      }),
    };
  }

  async run(): Promise<DrillReport> {
    const started = Date.now();
    const { size } = this.params;
    try {
      this.connection = await connectDatabase({ uri: this.params.mongoUri, dbName: this.params.dbName, timeoutMs: 5_000, writeConcern: 'majority', readPreference: 'primary' });
      const api = await startApiProcess(this.env);
      this.api = api.api;
      this.apiProcesses.push(api.api);
      this.baseUrl = api.baseUrl;
      this.port = Number(new URL(api.baseUrl).port);
      await Promise.all(Array.from({ length: size.workers }, () => this.startWorker()));
      await this.seed();
      this.planJobs();
      this.params.log(`fault drill (${size.name}, seed ${this.params.seed}): ${this.specs.length} jobs, ${size.workers} workers × ${size.concurrency}, faults ${JSON.stringify(size.faults)}`);

      await Promise.all([this.produce(), this.runFaults()]);
      await this.drain();
      const statsMismatches = await this.compareStats();
      await this.stopProcesses();
      const report = await this.verify({ statsMismatches, seconds: Math.round((Date.now() - started) / 100) / 10 });
      if (report.problems.length > 0) this.dumpLogs();
      return report;
    } catch (err) {
      this.dumpLogs();
      throw err;
    } finally {
      await this.stopProcesses();
      if (this.connection) {
        if (!process.env.FAULTS_KEEP_DB) await this.connection.dropDatabase().catch(() => undefined);
        await this.connection.close();
      }
    }
  }

  /** Every process's output, for a drill that went wrong: test-artifacts/fault-drill-<seed>/. */
  private dumpLogs(): void {
    const dir = path.resolve(__dirname, '../../test-artifacts', `fault-drill-${this.params.seed}`);
    mkdirSync(dir, { recursive: true });
    this.apiProcesses.forEach((p, i) => writeFileSync(path.join(dir, `api-${i + 1}.log`), `${p.lines.join('\n')}\n`));
    for (const w of this.everyWorker) writeFileSync(path.join(dir, `${w.id}.log`), `${w.process.lines.join('\n')}\n`);
    this.params.log(`  logs of every process: ${dir}`);
  }

  // ---- Set-up ---------------------------------------------------------------------------------

  private client(role: 'admin' | 'service'): JobsClient {
    return new JobsClient({ baseUrl: this.baseUrl, token: tokenFor(role, `drill-${role}`), timeoutMs: 15_000 });
  }

  private async startWorker(): Promise<LiveWorker> {
    this.workerCount += 1;
    const id = `drill-worker-${this.workerCount}`;
    const process = startWorkerProcess({
      ...this.env,
      JOBS_API_URL: this.baseUrl,
      WORKER_TOKEN: tokenFor('worker', 'drill-workers'),
      WORKER_ID: id,
      WORKER_CONCURRENCY: String(this.params.size.concurrency),
      WORKER_LEASE_WAIT_SECONDS: '2',
      WORKER_SHUTDOWN_GRACE_MS: '5000',
      SANDBOX_FAILURE_RATE: '0.1',
    });
    const worker = { id, process };
    this.workers.set(id, worker);
    this.everyWorker.push(worker);
    await process.waitForLine(/"msg":"worker started"/, 60_000);
    return worker;
  }

  /** Real images uploaded as assets, and escrows created through the API. */
  private async seed(): Promise<void> {
    const { jobs } = this.params.size;
    const headers = (role: 'admin' | 'service', contentType: string) => ({ Authorization: `Bearer ${tokenFor(role, `drill-${role}`)}`, 'Content-Type': contentType });
    const formats: ImageContentType[] = ['image/png', 'image/jpeg', 'image/webp'];
    for (let i = 0; i < jobs.thumbnail; i += 1) {
      const contentType = formats[i % formats.length]!;
      const bytes = await makeImage({ contentType, width: 64 + (i % 5) * 8, height: 48 });
      const res = await fetch(`${this.baseUrl}/assets`, { method: 'POST', headers: headers('service', contentType), body: new Uint8Array(bytes) });
      if (res.status !== 201) throw new Error(`asset upload answered ${res.status}: ${await res.text()}`);
      this.assetIds.push(((await res.json()) as { assetId: string }).assetId);
    }
    for (let start = 0; start < jobs.payout; start += 25) {
      const created = await Promise.all(
        Array.from({ length: Math.min(25, jobs.payout - start) }, async (_, j) => {
          const i = start + j;
          const res = await fetch(`${this.baseUrl}/escrows`, {
            method: 'POST',
            headers: headers('admin', 'application/json'),
            body: JSON.stringify({ batchId: 'drill', amount: 1_000 + i, currency: 'EUR', payee: `acct_drill_${i}` }),
          });
          if (res.status !== 201) throw new Error(`escrow answered ${res.status}: ${await res.text()}`);
          return ((await res.json()) as { escrowId: string }).escrowId;
        }),
      );
      this.escrowIds.push(...created);
    }
  }

  private between([min, max]: [number, number]): number {
    return Math.round(min + (max - min) * this.random());
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i -= 1) {
      const j = Math.floor(this.random() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  private planJobs(): void {
    const { jobs, noopSleepMs } = this.params.size;
    const specs: JobSpec[] = [];
    for (let i = 0; i < jobs.noop; i += 1) specs.push({ key: `noop-${i}`, type: 'noop', payload: { sleepMs: this.between(noopSleepMs) }, expected: 'succeeded' });
    this.escrowIds.forEach((escrowId, i) => specs.push({ key: `payout-${i}`, type: 'payout.execute', payload: { batchId: 'drill', escrowId }, expected: 'succeeded' }));
    this.assetIds.forEach((assetId, i) => specs.push({ key: `thumb-${i}`, type: 'thumbnail.create', payload: { assetId, versionNumber: 1, sizes: [32] }, expected: 'succeeded' }));
    // A version that does not exist: the handler's permanent failure ends the job `failed`.
    for (let i = 0; i < jobs.badThumbnail; i += 1) {
      specs.push({ key: `thumb-bad-${i}`, type: 'thumbnail.create', payload: { assetId: this.pick(this.assetIds), versionNumber: 2 }, expected: 'failed' });
    }
    for (let i = 0; i < jobs.cancelled; i += 1) specs.push({ key: `cancel-${i}`, type: 'noop', payload: {}, expected: 'cancelled', cancel: true });
    this.specs.push(...this.shuffle(specs));
  }

  // ---- Producer -------------------------------------------------------------------------------

  private async queuedCount(): Promise<number> {
    return this.connection!.collection('jobs').countDocuments({ status: 'queued' });
  }

  /** Enqueues every spec in chunks; while faults remain, keeps the backlog small so work outlasts them. */
  private async produce(): Promise<void> {
    const CHUNK = 10;
    for (let i = 0; i < this.specs.length; i += CHUNK) {
      await waitFor(async () => (this.faultsDone || (await this.queuedCount()) <= this.params.size.backlog ? true : undefined), {
        timeoutMs: this.params.size.drainTimeoutMs,
        intervalMs: 100,
        what: 'the backlog to shrink',
      });
      await Promise.all(this.specs.slice(i, i + CHUNK).map((spec) => this.enqueue(spec)));
    }
  }

  /** Enqueues (and cancels) one spec, retrying through API restarts; the key makes repeats safe. */
  private async enqueue(spec: JobSpec): Promise<void> {
    const { jobId } = await this.retryTransient(`enqueue ${spec.key}`, () =>
      this.client('service').enqueue({
        type: spec.type,
        payload: spec.payload,
        idempotencyKey: spec.key,
        ...(spec.cancel ? { scheduleAt: new Date(Date.now() + 3_600_000).toISOString() } : {}),
      }),
    );
    this.jobIdByKey.set(spec.key, jobId);
    if (spec.cancel) {
      const cancelled = await this.retryTransient(`cancel ${spec.key}`, () => this.client('service').cancel(jobId));
      if (cancelled.status !== 'cancelled') throw new Error(`cancel ${spec.key} answered ${cancelled.status}`);
    }
  }

  /** Retries while the API is unreachable or answers 503 (its restarts); any other error is final. */
  private async retryTransient<T>(what: string, operation: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        return await operation();
      } catch (err) {
        const transient = err instanceof NetworkError || err instanceof UnavailableApiError;
        if (!transient || Date.now() > deadline) throw new Error(`${what}: ${String(err)}`, { cause: err });
        this.enqueueRetries += 1;
        await delay(250);
      }
    }
  }

  // ---- Faults ---------------------------------------------------------------------------------

  private async runFaults(): Promise<void> {
    const { faults, gapMs } = this.params.size;
    const plan = this.shuffle([
      ...Array.from({ length: faults.kills }, () => 'kill' as const),
      ...Array.from({ length: faults.restarts }, () => 'restart' as const),
      ...Array.from({ length: faults.pauses }, () => 'pause' as const),
      ...Array.from({ length: faults.cancelKills }, () => 'cancelKill' as const),
    ]);
    try {
      for (const fault of plan) {
        await delay(this.between(gapMs));
        if (fault === 'kill') await this.killWorker();
        else if (fault === 'restart') await this.restartApi();
        else if (fault === 'cancelKill') await this.cancelThenKill();
        else await this.pauseWorker();
      }
    } finally {
      this.faultsDone = true;
    }
  }

  private leasesOf(workerId: string): Promise<StaleLease[]> {
    return this.connection!
      .collection<JobDoc>('jobs')
      .find({ status: 'leased', workerId }, { projection: { _id: 1, leaseId: 1, attempt: 1 } })
      .toArray()
      .then((docs) => docs.map((d) => ({ jobId: d._id, leaseId: d.leaseId!, attempt: d.attempt })));
  }

  private async killWorker(): Promise<void> {
    const victim = this.pick([...this.workers.values()]);
    victim.process.signal('SIGKILL');
    await victim.process.exited;
    this.workers.delete(victim.id);
    const held = (await this.leasesOf(victim.id)).length;
    this.leasesHeldByKilledWorkers += held;
    this.kills += 1;
    this.params.log(`  kill: ${victim.id} (SIGKILL) holding ${held} leases`);
    await this.startWorker();
  }

  private async restartApi(): Promise<void> {
    const stopAt = Date.now();
    await this.api!.stop();
    const exitedAt = Date.now();
    // Clients meet a closed port for a while: they back off and retry.
    await delay(this.between(this.params.size.apiDownMs));
    const restarted = await startApiProcess({ ...this.env, PORT: String(this.port) });
    this.api = restarted.api;
    this.apiProcesses.push(restarted.api);
    // Down: from the old process's exit (after its graceful drain) until the new one listens.
    const downMs = Date.now() - exitedAt;
    this.apiDowntimeMs.push(downMs);
    this.params.log(`  restart: API stopped (SIGTERM, drained in ${exitedAt - stopAt} ms) and started again on port ${this.port}, down ${downMs} ms`);
  }

  /** Work for a worker to hold when the queue has run dry: long noop jobs, keyed like the rest. */
  private async enqueueBait(): Promise<void> {
    const bait: JobSpec[] = Array.from({ length: this.params.size.concurrency * this.params.size.workers }, () => {
      this.baitCount += 1;
      return { key: `bait-${this.baitCount}`, type: 'noop' as const, payload: { sleepMs: 800 }, expected: 'succeeded' as const };
    });
    this.specs.push(...bait);
    await Promise.all(bait.map((spec) => this.enqueue(spec)));
  }

  /**
   * Freezes a worker that holds leases until the API has reclaimed every one of them, then wakes it:
   * it resumes believing it holds them, and each of its reports or heartbeats must be refused (409).
   */
  private async pauseWorker(): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const victim = this.pick([...this.workers.values()]);
      const holds = await waitFor(async () => ((await this.leasesOf(victim.id)).length > 0 ? true : undefined), { timeoutMs: 4_000, intervalMs: 20 }).catch(() => false);
      if (!holds) {
        await this.enqueueBait();
        continue;
      }
      victim.process.signal('SIGSTOP');
      const frozenAt = Date.now();
      // Reports already on the wire still land while it is frozen: take what it holds once that settles.
      const stale = await this.settledLeases(victim.id);
      if (stale.length === 0) {
        victim.process.signal('SIGCONT');
        continue;
      }
      // Every lease it held when it froze must be reclaimed before it wakes. (Its lease call still
      // open on the API may be handed more jobs meanwhile, even these ones again: those are ordinary
      // leases it learns of when it wakes, possibly still valid, so they do not count as stale.)
      const leaseIds = new Set(stale.map((r) => r.leaseId));
      await waitFor(
        async () => {
          const docs = await this.connection!.collection<JobDoc>('jobs').find({ _id: { $in: stale.map((r) => r.jobId) } }, { projection: { leaseId: 1 } }).toArray();
          return docs.every((d) => d.leaseId === null || !leaseIds.has(d.leaseId)) ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: `the leases of frozen ${victim.id} to be reclaimed` },
      );
      // A report already on the wire when the worker froze may land late (a loaded machine): its
      // lease then ended by that report, not by a reclaim, and is no stale lease. Only leases the
      // API took back (attempt closed `expired`) must be refused when the worker wakes.
      const closed = await this.connection!.collection<JobDoc>('jobs').find({ _id: { $in: stale.map((r) => r.jobId) } }, { projection: { attempts: 1 } }).toArray();
      const outcomeOf = (lease: StaleLease): string | null | undefined =>
        closed.find((d) => d._id === lease.jobId)?.attempts.find((a) => a.leaseId === lease.leaseId)?.outcome;
      const reportedInFlight = stale.filter((lease) => outcomeOf(lease) !== 'expired');
      stale.splice(0, stale.length, ...stale.filter((lease) => outcomeOf(lease) === 'expired'));
      if (reportedInFlight.length > 0) this.params.log(`  pause: ${reportedInFlight.length} report(s) of frozen ${victim.id} landed after it froze (not stale)`);
      victim.process.signal('SIGCONT');
      if (stale.length === 0) continue;
      const frozenMs = Date.now() - frozenAt;
      const unrefused = (): StaleLease[] => {
        const logged = this.refusalsOf(victim);
        return stale.filter((s) => !logged.has(`${s.jobId}#${s.attempt}`));
      };
      const refused = await waitFor(() => (unrefused().length === 0 ? stale.length : undefined), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: `woken ${victim.id} to be refused on each of its ${stale.length} stale leases`,
      }).catch((err: unknown) => {
        throw new Error(`${String(err)}; not refused: ${unrefused().map((s) => `${s.jobId}#${s.attempt} (${s.leaseId})`).join(', ')}`);
      });
      this.staleLeases.push(...stale);
      this.staleReportsRefused += refused;
      this.pauses += 1;
      this.params.log(`  pause: ${victim.id} frozen ${frozenMs} ms (SIGSTOP) holding ${stale.length} leases, all reclaimed; woken (SIGCONT), ${refused} stale reports refused (409)`);
      return;
    }
    throw new Error('could not freeze a worker while it held a lease');
  }

  /**
   * Cancel, then kill: freezes a worker that holds leases (so no report of its lands after the
   * cancels), cancels every job it holds through the API as their owner, and SIGKILLs it. Each
   * acknowledged cancel (200) must end the job `cancelled` — the reclaim of the dead worker's lease
   * honours it — and the job must never be leased again; a payout may only refuse the cancel (409)
   * when it had passed its point of no return.
   */
  private async cancelThenKill(): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const victim = this.pick([...this.workers.values()]);
      const holds = await waitFor(async () => ((await this.leasesOf(victim.id)).length > 0 ? true : undefined), { timeoutMs: 4_000, intervalMs: 20 }).catch(() => false);
      if (!holds) {
        await this.enqueueBait();
        continue;
      }
      victim.process.signal('SIGSTOP');
      const held = await this.settledLeases(victim.id);
      if (held.length === 0) {
        victim.process.signal('SIGCONT');
        continue;
      }
      const specByJobId = new Map([...this.jobIdByKey].map(([key, jobId]) => [jobId, this.specs.find((s) => s.key === key)!]));
      let acknowledged = 0;
      for (const lease of held) {
        const spec = specByJobId.get(lease.jobId);
        const answer = await this.retryTransient(`cancel ${lease.jobId}`, () =>
          this.client('service')
            .cancel(lease.jobId)
            .then((r) => r.status)
            .catch((err: unknown) => {
              if (err instanceof ConflictApiError) return 'refused' as const;
              throw err;
            }),
        );
        if (answer === 'refused') {
          this.cancelsRefused += 1;
          continue;
        }
        acknowledged += 1;
        if (spec) {
          spec.expected = 'cancelled';
          spec.cancelAcknowledgedAt = Date.now();
        }
      }
      victim.process.signal('SIGKILL');
      await victim.process.exited;
      this.workers.delete(victim.id);
      this.cancelKills += 1;
      this.params.log(`  cancel-then-kill: ${victim.id} frozen holding ${held.length} leases, ${acknowledged} cancels acknowledged, ${held.length - acknowledged} refused; killed (SIGKILL)`);
      await this.startWorker();
      // Every cancel refused (each job a payout past its point of no return, or finished first):
      // nothing here tested an acknowledged cancel, so another worker is frozen and tried.
      if (acknowledged > 0) return;
    }
    throw new Error('could not find a worker holding a lease whose cancel was acknowledged, to cancel and kill');
  }

  private async settledLeases(workerId: string): Promise<StaleLease[]> {
    let previous = await this.leasesOf(workerId);
    // Settled means unchanged over a whole interval: a report (or a batch of them) still being
    // applied by the API when the worker froze lands within it. waitFor checks at once, so the
    // first comparison only arms the next one.
    let armed = false;
    return waitFor(
      async () => {
        if (!armed) {
          armed = true;
          return undefined;
        }
        const current = await this.leasesOf(workerId);
        const same = current.length === previous.length && current.every((c) => previous.some((p) => p.leaseId === c.leaseId));
        previous = current;
        return same ? current : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 300, what: `the leases of ${workerId} to settle` },
    );
  }

  /** `jobId#attempt` of every 409 (refused report, lost lease) a worker has logged. */
  private refusalsOf(worker: LiveWorker): Set<string> {
    const out = new Set<string>();
    for (const line of worker.process.lines) {
      if (!line.includes('"msg":"report refused') && !line.includes('"msg":"lease lost')) continue;
      const entry = JSON.parse(line) as { msg?: string; jobId?: string; attempt?: number };
      if (entry.msg && REFUSAL_MESSAGES.has(entry.msg)) out.add(`${entry.jobId}#${entry.attempt}`);
    }
    return out;
  }

  // ---- Drain and checks -----------------------------------------------------------------------

  private async drain(): Promise<void> {
    const jobs = this.connection!.collection('jobs');
    await waitFor(async () => ((await jobs.countDocuments({ status: { $in: ['queued', 'leased', 'waiting'] } })) === 0 ? true : undefined), {
      timeoutMs: this.params.size.drainTimeoutMs,
      intervalMs: 500,
      what: 'every job to reach a terminal state',
    }).catch(async (err: unknown) => {
      // Not fatal here: the checks below classify what is left (legitimately retrying, or lost).
      this.params.log(`  drain: ${String(err)}; ${await jobs.countDocuments({ status: { $in: ['queued', 'leased'] } })} jobs not terminal`);
    });
  }

  /** Every counter of GET /admin/jobs/stats against a direct count in the database. */
  private async compareStats(): Promise<string[]> {
    const res = await fetch(`${this.baseUrl}/admin/jobs/stats`, { headers: { Authorization: `Bearer ${tokenFor('admin', 'drill-admin')}` } });
    if (res.status !== 200) return [`GET /admin/jobs/stats answered ${res.status}`];
    const stats = (await res.json()) as {
      totalJobs: number;
      statusCounts: Record<string, number>;
      byType: Record<string, Record<string, number>>;
      oldestQueuedJobAgeMs: number | null;
    };
    const jobs = this.connection!.collection('jobs');
    const mismatches: string[] = [];
    const check = async (name: string, reported: number | undefined, filter: Record<string, unknown>): Promise<void> => {
      const direct = await jobs.countDocuments(filter);
      if (reported !== direct) mismatches.push(`${name}: stats ${String(reported)}, direct count ${direct}`);
    };
    await check('totalJobs', stats.totalJobs, {});
    for (const [status, n] of Object.entries(stats.statusCounts)) await check(`statusCounts.${status}`, n, { status });
    const types = new Set([...Object.keys(stats.byType), ...((await jobs.distinct('type')) as string[])]);
    for (const type of types) {
      const statuses = new Set([...Object.keys(stats.byType[type] ?? {}), ...((await jobs.distinct('status', { type })) as string[])]);
      for (const status of statuses) await check(`byType.${type}.${status}`, stats.byType[type]?.[status], { type, status });
    }
    const queued = await jobs.countDocuments({ status: 'queued' });
    if (queued === 0 && stats.oldestQueuedJobAgeMs !== null) mismatches.push(`oldestQueuedJobAgeMs is ${stats.oldestQueuedJobAgeMs} with no job queued`);
    return mismatches;
  }

  private async stopProcesses(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.process.stop()));
    this.workers.clear();
    await Promise.all(this.apiProcesses.map((p) => p.stop()));
  }

  private async verify(params: { statsMismatches: string[]; seconds: number }): Promise<DrillReport> {
    const db = this.connection!;
    const problems: string[] = [];
    const docs = await db.collection<JobDoc>('jobs').find({}).toArray();
    const byId = new Map(docs.map((d) => [d._id, d]));
    const now = Date.now();

    // An acknowledged cancel whose job's success report was already on the wire (the lease the
    // cancel flagged did the work, see below) ends succeeded.
    for (const spec of this.specs) {
      if (spec.cancelAcknowledgedAt === undefined) continue;
      const doc = byId.get(this.jobIdByKey.get(spec.key)!);
      const succeededAttempt = doc?.attempts.find((a) => a.outcome === 'succeeded');
      if (doc?.status === 'succeeded' && succeededAttempt && succeededAttempt.leasedAt.getTime() <= spec.cancelAcknowledgedAt) spec.expected = 'succeeded';
    }

    // Every spec is in the database exactly once, in the state it must end in.
    let lost = 0;
    let duplicates = 0;
    const specKeys = new Set(this.specs.map((s) => s.key));
    if (docs.length !== this.specs.length) problems.push(`${docs.length} jobs in the database, ${this.specs.length} enqueued`);
    for (const doc of docs) {
      if (!doc.idempotencyKey || !specKeys.has(doc.idempotencyKey)) problems.push(`job ${doc._id} (key ${String(doc.idempotencyKey)}) was never enqueued by the drill`);
    }
    const keysInDb = docs.map((d) => d.idempotencyKey);
    duplicates += keysInDb.length - new Set(keysInDb).size;
    for (const spec of this.specs) {
      const jobId = this.jobIdByKey.get(spec.key);
      const doc = jobId ? byId.get(jobId) : undefined;
      if (!doc) {
        lost += 1;
        problems.push(`lost: ${spec.key} is not in the database`);
        continue;
      }
      if (doc.status === spec.expected) continue;
      const retrying =
        (doc.status === 'queued' && doc.attempt < doc.maxAttempts) || (doc.status === 'leased' && doc.leaseExpiresAt !== null && doc.leaseExpiresAt.getTime() > now);
      if (retrying) {
        problems.push(`${spec.key} still ${doc.status} (legitimately retrying, attempt ${doc.attempt})`);
      } else {
        lost += 1;
        problems.push(`lost: ${spec.key} ended ${doc.status}, expected ${spec.expected} (attempt ${doc.attempt}/${doc.maxAttempts})`);
      }
    }

    // Attempt histories: one closed record per lease, each closed before the next lease began, at
    // most one success and only as the last record. A stale report accepted after its lease was
    // reclaimed would show as a record closed after the next lease started, or a second success.
    let staleAccepted = 0;
    let reclaims = 0;
    const recordOf = new Map<string, AttemptDoc>();
    for (const doc of docs) {
      const attempts = doc.attempts ?? [];
      const successes = attempts.filter((a) => a.outcome === 'succeeded').length;
      if (successes > 1) {
        duplicates += 1;
        problems.push(`duplicate: ${doc._id} has ${successes} succeeded attempts`);
      }
      attempts.forEach((a, i) => {
        recordOf.set(`${doc._id}#${a.attempt}`, a);
        if (a.outcome === 'expired') reclaims += 1;
        const next = attempts[i + 1];
        if (!next) return;
        if (a.outcome === null || a.finishedAt === null) {
          staleAccepted += 1;
          problems.push(`${doc._id}: attempt ${a.attempt} never closed, yet attempt ${next.attempt} was leased`);
        } else if (a.finishedAt.getTime() > next.leasedAt.getTime()) {
          staleAccepted += 1;
          problems.push(`${doc._id}: attempt ${a.attempt} was closed (${a.outcome}) after attempt ${next.attempt} was leased: a stale report was accepted`);
        }
        if (a.outcome === 'succeeded') {
          staleAccepted += 1;
          problems.push(`${doc._id}: attempt ${a.attempt} succeeded but the job was leased again`);
        }
        if (next.attempt !== a.attempt + 1) problems.push(`${doc._id}: attempt ${next.attempt} follows attempt ${a.attempt}`);
      });
      const last = attempts.at(-1);
      if (doc.status === 'succeeded' && last?.outcome !== 'succeeded') problems.push(`${doc._id} is succeeded but its last attempt is ${String(last?.outcome)}`);
    }

    // Every 409 a worker logged was for a lease the API had reclaimed: the record of that lease is
    // `expired` (closed by the reclaim), never closed by the refused report.
    let refusalsLogged = 0;
    for (const worker of this.everyWorker) {
      for (const key of this.refusalsOf(worker)) {
        refusalsLogged += 1;
        const record = recordOf.get(key);
        if (!record || record.workerId !== worker.id || record.outcome !== 'expired') {
          staleAccepted += 1;
          problems.push(`${worker.id} was refused on ${key}, but that attempt is ${record ? `${record.outcome} by ${record.workerId}` : 'missing'}`);
        }
      }
    }
    for (const stale of this.staleLeases) {
      const record = recordOf.get(`${stale.jobId}#${stale.attempt}`);
      if (record?.outcome !== 'expired' || record.leaseId !== stale.leaseId) {
        staleAccepted += 1;
        problems.push(`stale lease ${stale.leaseId} of ${stale.jobId} is ${String(record?.outcome)}, not expired`);
      }
    }

    // Acknowledged cancels of running jobs: each ended cancelled and no lease of it began after the
    // cancel was answered.
    const acknowledgedSpecs = this.specs.filter((spec) => spec.cancelAcknowledgedAt !== undefined);
    const cancelledEscrows = new Set<string>();
    for (const spec of acknowledgedSpecs) {
      const doc = byId.get(this.jobIdByKey.get(spec.key)!);
      // A success report already on the wire when the worker froze may land after the cancel: the
      // work was done by the lease the cancel flagged (API.md: succeed is the one way out that does
      // not honour a cancel). Anything else must end cancelled.
      const succeededAttempt = doc?.attempts.find((a) => a.outcome === 'succeeded');
      const doneBeforeCancel = doc?.status === 'succeeded' && succeededAttempt !== undefined && succeededAttempt.leasedAt.getTime() <= spec.cancelAcknowledgedAt!;
      if (doc?.status !== 'cancelled' && !doneBeforeCancel) problems.push(`cancel of ${spec.key} was acknowledged but the job is ${String(doc?.status)}`);
      const later = (doc?.attempts ?? []).filter((a) => a.leasedAt.getTime() > spec.cancelAcknowledgedAt!);
      if (later.length > 0) problems.push(`cancel of ${spec.key} was acknowledged, yet attempt ${later[0]!.attempt} was leased after it`);
      if (spec.type === 'payout.execute') cancelledEscrows.add(String(spec.payload.escrowId));
    }

    // Payouts: one transfer per escrow key, and the escrow paid with exactly that transfer — except
    // the escrows whose payout's cancel was acknowledged: no money moved for those.
    const transfers = await db.collection<{ _id: string; idempotencyKey: string }>('sandbox_payout_transfers').find({}).toArray();
    const transfersByKey = new Map<string, string[]>();
    for (const t of transfers) transfersByKey.set(t.idempotencyKey, [...(transfersByKey.get(t.idempotencyKey) ?? []), t._id]);
    const escrows = await db.collection<{ _id: string; status: string; transferId: string | null }>('escrows').find({}).toArray();
    for (const escrow of escrows) {
      const ids = transfersByKey.get(`escrow:${escrow._id}`) ?? [];
      if (ids.length > 1) {
        duplicates += 1;
        problems.push(`duplicate: escrow ${escrow._id} has ${ids.length} transfers`);
      }
      if (cancelledEscrows.has(escrow._id)) {
        if (ids.length > 0 || escrow.status !== 'held') problems.push(`payout after its cancel: escrow ${escrow._id} is ${escrow.status} with ${ids.length} transfers`);
        continue;
      }
      if (ids.length === 0 || escrow.status !== 'paid' || escrow.transferId !== ids[0]) {
        lost += 1;
        problems.push(`payout: escrow ${escrow._id} is ${escrow.status} with transfer ${String(escrow.transferId)}; ledger has ${ids.join(',') || 'none'}`);
      }
    }
    if (escrows.length !== this.escrowIds.length || transfers.length !== this.escrowIds.length - cancelledEscrows.size) {
      problems.push(`${escrows.length} escrows and ${transfers.length} transfers for ${this.escrowIds.length} payouts`);
    }

    // Thumbnails: each source processed, one thumbnail per (asset, version, width).
    const assets = await db.collection<{ assetId: string; processed: boolean; derivedKey?: string }>('assets').find({}).toArray();
    const derived = assets.filter((a) => a.derivedKey !== undefined).map((a) => a.derivedKey!);
    duplicates += derived.length - new Set(derived).size;
    for (const assetId of this.assetIds) {
      // A thumbnail job whose cancel was acknowledged (cancel-then-kill) may never process its asset.
      const spec = this.specs.find((s) => s.key.startsWith('thumb-') && !s.key.startsWith('thumb-bad-') && (s.payload as { assetId?: string }).assetId === assetId);
      if (spec?.expected === 'cancelled') continue;
      const source = assets.find((a) => a.assetId === assetId);
      if (!source?.processed || derived.filter((k) => k === `${assetId}:1:32`).length !== 1) {
        lost += 1;
        problems.push(`thumbnail: ${assetId} processed=${String(source?.processed)}, ${derived.filter((k) => k === `${assetId}:1:32`).length} thumbnails`);
      }
    }

    // The worker and API logs: retries through restarts, and no 5xx at any time.
    const countLines = (processes: readonly ServiceProcess[], needle: string) => processes.reduce((n, p) => n + p.lines.filter((l) => l.includes(needle)).length, 0);
    const workerProcesses = this.everyWorker.map((w) => w.process);
    const apiAnswers: Record<string, number> = {};
    for (const api of this.apiProcesses) {
      for (const line of api.lines) {
        const match = /"res":\{"statusCode":(\d+)/.exec(line);
        if (!match) continue;
        const status = Number(match[1]);
        apiAnswers[`${status}`] = (apiAnswers[`${status}`] ?? 0) + 1;
        if (status >= 500) problems.push(`the API answered ${status}: ${line.slice(0, 300)}`);
      }
    }

    const finalStatuses: Record<string, number> = {};
    for (const doc of docs) finalStatuses[doc.status] = (finalStatuses[doc.status] ?? 0) + 1;
    const byType: Record<string, number> = {};
    for (const spec of this.specs) byType[spec.type] = (byType[spec.type] ?? 0) + 1;
    return {
      size: this.params.size.name,
      seed: this.params.seed,
      seconds: params.seconds,
      jobs: this.specs.length,
      byType,
      finalStatuses,
      faultsPlanned: this.params.size.faults,
      faultsDone: { kills: this.kills, restarts: this.apiDowntimeMs.length, pauses: this.pauses, cancelKills: this.cancelKills },
      kills: this.kills,
      leasesHeldByKilledWorkers: this.leasesHeldByKilledWorkers,
      cancelKills: this.cancelKills,
      cancelsAcknowledged: acknowledgedSpecs.length,
      payoutCancelsAcknowledged: cancelledEscrows.size,
      cancelsRefused: this.cancelsRefused,
      restarts: this.apiDowntimeMs.length,
      apiDowntimeMs: this.apiDowntimeMs,
      pauses: this.pauses,
      staleLeases: this.staleLeases.length,
      staleReportsRefused: this.staleReportsRefused,
      refusalsLogged,
      reclaims,
      enqueueRetries: this.enqueueRetries,
      leaseBackoffs: countLines(workerProcesses, '"msg":"lease failed; backing off"'),
      reportRetries: countLines(workerProcesses, '"msg":"report failed; retrying"'),
      reportsGivenUp: countLines(workerProcesses, '"msg":"could not report the outcome'),
      apiAnswers,
      transfers: transfers.length,
      duplicates,
      lost,
      staleAccepted,
      statsMismatches: params.statsMismatches,
      problems,
    };
  }
}

export function runFaultDrill(params: { size: DrillSize; seed: number; mongoUri: string; dbName?: string; log: (line: string) => void }): Promise<DrillReport> {
  return new FaultDrill({ ...params, dbName: params.dbName ?? `faults_${randomBytes(4).toString('hex')}` }).run();
}

/** The summary table (Markdown), one row per drill. */
export function formatSummary(reports: readonly DrillReport[]): string {
  const header = [
    'size',
    'seed',
    'jobs',
    'noop / payout / thumbnail',
    'final statuses',
    'kills (leases held)',
    'API restarts (down ms)',
    'pauses (stale leases)',
    'cancel-then-kills: cancels acknowledged (payouts) / refused',
    'reclaims',
    'through API restarts: enqueue retries / lease backoffs / report retries / reports given up',
    'stale reports refused (409)',
    'stale accepted',
    'duplicates',
    'lost',
    'stats mismatches',
    'seconds',
  ];
  const rows = reports.map((r) => [
    r.size,
    String(r.seed),
    String(r.jobs),
    `${r.byType.noop ?? 0} / ${r.byType['payout.execute'] ?? 0} / ${r.byType['thumbnail.create'] ?? 0}`,
    Object.entries(r.finalStatuses)
      .sort()
      .map(([s, n]) => `${s} ${n}`)
      .join(', '),
    `${r.kills} (${r.leasesHeldByKilledWorkers})`,
    `${r.restarts} (${r.apiDowntimeMs.join(', ')})`,
    `${r.pauses} (${r.staleLeases})`,
    `${r.cancelKills}: ${r.cancelsAcknowledged} (${r.payoutCancelsAcknowledged}) / ${r.cancelsRefused}`,
    String(r.reclaims),
    `${r.enqueueRetries} / ${r.leaseBackoffs} / ${r.reportRetries} / ${r.reportsGivenUp}`,
    `${r.staleReportsRefused} (all workers: ${r.refusalsLogged})`,
    String(r.staleAccepted),
    String(r.duplicates),
    String(r.lost),
    String(r.statsMismatches.length),
    String(r.seconds),
  ]);
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
