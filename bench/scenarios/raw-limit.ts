import { randomBytes } from 'node:crypto';

import type { mongo } from 'mongoose';

import { ensureIndexes } from '../../src/storage/indexes';
import type { BenchContext } from '../lib/context';
import { databaseServerPid, startCpuAccounting } from '../lib/cpu-time';
import { openDatabase } from '../lib/database';
import { runClosedLoop } from '../lib/http-load';
import { readJobTimings, summarizeTimings, type TimingSummary } from '../lib/job-timings';
import { sleep } from '../lib/numbers';
import { requestsPerJob, startCountingProxy } from '../lib/wire-proxy';

export interface RawLimitResult extends TimingSummary {
  complete: boolean;
  claimRoundTrips: number;
  /** CPU ms per job: this process (inserts, claims, completions) and the database. */
  cpuMsPerJob: Record<string, number | null>;
  /** Requests the database got per job, by command (counted on the wire; monitoring apart). */
  dbRequestsPerJob: { total: number; byCommand: Record<string, number> } | null;
}

const HISTORY_LIMIT = 100;
const LEASE_SECONDS = 30; // the noop type's timeoutSeconds
const EMPTY_POLL_MS = 5;

const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString('hex')}`;

/**
 * The document the service inserts on enqueue (JobRepository.insert), field for field. Typed here
 * rather than as JobDocument: the bench must keep compiling while the model grows.
 */
interface RawAttempt {
  attempt: number;
  leaseId: string;
  workerId: string;
  leasedAt: Date;
  finishedAt: Date | null;
  outcome: string | null;
  error: { code?: string; message: string } | null;
}

interface RawJob {
  _id: string;
  type: string;
  status: string;
  priority: number;
  payload: Record<string, unknown>;
  attempt: number;
  maxAttempts: number;
  nextRunAt: Date;
  leaseId: string | null;
  leaseExpiresAt: Date | null;
  workerId: string | null;
  slotId: string | null;
  progress: number;
  result: Record<string, unknown> | null;
  lastError: { code?: string; message: string } | null;
  attempts: RawAttempt[];
  cancelRequested: boolean;
  idempotencyKey: string | null;
  tenant: string | null;
  dependsOn: string[];
  pendingParents: string[];
  hasChildren: boolean;
  partial: boolean;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
}

function newJob(now: Date): RawJob {
  return {
    _id: newId('job'),
    type: 'noop',
    status: 'queued',
    priority: 50,
    payload: {},
    attempt: 0,
    maxAttempts: 3,
    nextRunAt: now,
    leaseId: null,
    leaseExpiresAt: null,
    workerId: null,
    slotId: null,
    progress: 0,
    result: null,
    lastError: null,
    attempts: [],
    cancelRequested: false,
    idempotencyKey: null,
    tenant: null,
    dependsOn: [],
    pendingParents: [],
    hasChildren: false,
    partial: false,
    createdBy: 'bench-raw',
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    completedAt: null,
  };
}

/**
 * One claimer: the service's lease strategy with the raw driver and nothing else. Reads the best
 * 2×batch candidates (status=queued, due, type, sorted priority desc then nextRunAt asc), claims up
 * to `batch` of them in one unordered bulkWrite of updates conditional on the status and attempt it
 * read ($set the lease and attempt + 1, $push the attempt record), finds out which it won when a
 * race was lost, then completes each won job with one conditional update that also closes its
 * attempt record — the writes JobRepository.claim and .succeed make.
 */
async function claimAndComplete(params: {
  jobs: mongo.Collection<RawJob>;
  workerId: string;
  batch: number;
  done: () => boolean;
  onCompleted: (n: number) => void;
  onRoundTrip: () => void;
}): Promise<void> {
  const { jobs, workerId, batch } = params;
  while (!params.done()) {
    const now = new Date();
    params.onRoundTrip();
    const candidates = await jobs
      .find({ status: 'queued', nextRunAt: { $lte: now }, type: 'noop' })
      .sort({ priority: -1, nextRunAt: 1 })
      .limit(batch * 2)
      .toArray();
    if (candidates.length === 0) {
      await sleep(EMPTY_POLL_MS);
      continue;
    }
    const leaseExpiresAt = new Date(now.getTime() + LEASE_SECONDS * 1000);
    const requests = candidates.slice(0, batch).map((candidate) => ({ candidate, leaseId: newId('lease') }));
    const operations: mongo.AnyBulkWriteOperation<RawJob>[] = requests.map(({ candidate, leaseId }) => ({
      updateOne: {
        filter: { _id: candidate._id, status: 'queued', attempt: candidate.attempt, nextRunAt: { $lte: now } },
        update: {
          $set: {
            status: 'leased',
            leaseId,
            workerId,
            leaseExpiresAt,
            slotId: null,
            attempt: candidate.attempt + 1,
            progress: 0,
            cancelRequested: false,
            updatedAt: now,
            startedAt: candidate.startedAt ?? now,
          },
          $push: {
            attempts: {
              $each: [{ attempt: candidate.attempt + 1, leaseId, workerId, leasedAt: now, finishedAt: null, outcome: null, error: null }],
              $slice: -HISTORY_LIMIT,
            },
          },
        },
      },
    }));
    const result = await jobs.bulkWrite(operations, { ordered: false });
    let won = requests;
    if (result.matchedCount !== requests.length) {
      const current = await jobs.find({ _id: { $in: requests.map((r) => r.candidate._id) } }, { projection: { _id: 1, leaseId: 1 } }).toArray();
      const ours = new Set(current.filter((d) => requests.some((r) => r.leaseId === d.leaseId)).map((d) => d._id));
      won = requests.filter((r) => ours.has(r.candidate._id));
    }
    await Promise.all(
      won.map(async ({ candidate, leaseId }) => {
        const finishedAt = new Date();
        await jobs.updateOne(
          { _id: candidate._id, status: 'leased', leaseId, workerId },
          {
            $set: {
              leaseId: null,
              leaseExpiresAt: null,
              slotId: null,
              status: 'succeeded',
              result: { sleptMs: 0 },
              progress: 100,
              completedAt: finishedAt,
              updatedAt: finishedAt,
              'attempts.$[lease].finishedAt': finishedAt,
              'attempts.$[lease].outcome': 'succeeded',
              'attempts.$[lease].error': null,
            },
          },
          { arrayFilters: [{ 'lease.leaseId': leaseId }] },
        );
      }),
    );
    params.onCompleted(won.length);
  }
}

/**
 * The ceiling: the same inserts, claims and completions as the end-to-end scenario, done by the
 * MongoDB driver in this process (no HTTP, no service code): `clients` concurrent inserters and
 * `workers` concurrent claimers each taking batches of `concurrency`, on a database of its own
 * with the service's indexes.
 */
export async function runRawLimit(ctx: BenchContext): Promise<RawLimitResult> {
  const { sizes } = ctx;
  const counting = await startCountingProxy(ctx.mongoUri);
  const connection = await openDatabase(counting.uri, ctx.dbName('raw'));
  try {
    await ensureIndexes(connection);
    counting.proxy?.reset();
    const jobs = connection.db!.collection<RawJob>('jobs');
    let completed = 0;
    let roundTrips = 0;
    const dbPid = databaseServerPid();
    const cpu = startCpuAccounting({ 'raw process': 'self', database: dbPid === null ? [] : [dbPid] });
    const startedAt = Date.now();
    const deadline = startedAt + sizes.scenarioDeadlineMs;
    const done = (): boolean => completed >= sizes.jobs || Date.now() > deadline;
    const claimers = Array.from({ length: sizes.workers }, (_, i) =>
      claimAndComplete({
        jobs,
        workerId: `raw-worker-${i + 1}`,
        batch: sizes.concurrency,
        done,
        onCompleted: (n) => {
          completed += n;
        },
        onRoundTrip: () => {
          roundTrips += 1;
        },
      }),
    );
    await runClosedLoop({
      total: sizes.jobs,
      concurrency: sizes.clients,
      call: async () => {
        await jobs.insertOne(newJob(new Date()));
      },
    });
    await Promise.all(claimers);
    const wire = counting.proxy?.snapshot();
    const cpuSplit = cpu.finish(completed);
    const rows = await readJobTimings(connection);
    return {
      ...summarizeTimings(rows, startedAt),
      complete: completed >= sizes.jobs,
      claimRoundTrips: roundTrips,
      cpuMsPerJob: cpuSplit.perJobMs,
      dbRequestsPerJob: requestsPerJob(wire, completed),
    };
  } finally {
    await connection.close();
    await counting.proxy?.close();
  }
}
