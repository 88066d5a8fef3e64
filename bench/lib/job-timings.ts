import type { Connection } from 'mongoose';

import { percentile, round } from './numbers';

/** The fields of a job document the bench reads after a run (the service's and the raw scenario's). */
export interface JobTimingRow {
  _id: string;
  status: string;
  createdAt: Date;
  completedAt: Date | null;
  attempts: { workerId: string; leasedAt: Date }[];
}

export async function readJobTimings(connection: Connection): Promise<JobTimingRow[]> {
  return connection
    .db!.collection<JobTimingRow>('jobs')
    .find({}, { projection: { _id: 1, status: 1, createdAt: 1, completedAt: 1, 'attempts.workerId': 1, 'attempts.leasedAt': 1 } })
    .toArray() as Promise<JobTimingRow[]>;
}

export interface TimingSummary {
  jobs: number;
  succeeded: number;
  /** Jobs that needed more than one lease (a reclaim or a failure): 0 in a healthy run. */
  retried: number;
  /** Succeeded jobs / (last completedAt - `startedAt`). */
  jobsPerSec: number;
  elapsedMs: number;
  /**
   * Start delay of a job: its first lease's `leasedAt` minus its `createdAt`. These jobs have no
   * scheduleAt, so createdAt is also their initial nextRunAt: the moment they became due. Both
   * stamps come from the same clock (the API's, or the raw scenario's process).
   */
  startDelayMs: { p50: number; p99: number; max: number };
  /** Jobs per lease call that returned jobs (calls are told apart by worker id and leasedAt). */
  meanJobsPerLease: number;
  leasesWithJobs: number;
}

/** Throughput and start delays of `rows`, timed from `startedAt` (epoch ms of the first enqueue). */
export function summarizeTimings(rows: readonly JobTimingRow[], startedAt: number): TimingSummary {
  const succeeded = rows.filter((r) => r.status === 'succeeded' && r.completedAt);
  const lastCompleted = Math.max(...succeeded.map((r) => r.completedAt!.getTime()));
  const elapsedMs = succeeded.length > 0 ? lastCompleted - startedAt : Number.NaN;
  const delays = rows.filter((r) => r.attempts.length > 0).map((r) => r.attempts[0]!.leasedAt.getTime() - r.createdAt.getTime());
  const leases = new Map<string, number>();
  for (const row of rows) {
    for (const attempt of row.attempts) {
      const key = `${attempt.workerId}|${attempt.leasedAt.getTime()}`;
      leases.set(key, (leases.get(key) ?? 0) + 1);
    }
  }
  const leasedJobs = [...leases.values()].reduce((a, b) => a + b, 0);
  return {
    jobs: rows.length,
    succeeded: succeeded.length,
    retried: rows.filter((r) => r.attempts.length > 1).length,
    jobsPerSec: round(succeeded.length / (elapsedMs / 1000)),
    elapsedMs,
    startDelayMs: { p50: round(percentile(delays, 50)), p99: round(percentile(delays, 99)), max: round(Math.max(...delays)) },
    meanJobsPerLease: round(leasedJobs / Math.max(1, leases.size), 2),
    leasesWithJobs: leases.size,
  };
}
