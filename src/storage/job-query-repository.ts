import type { Connection } from 'mongoose';

import type { Job, JobStatus } from '../model/job';
import type { AccessScope } from '../model/principal';
import { accessFilter } from './access-scope';
import { jobModel, type JobDocument } from './job-model';
import { toJob } from './job-repository';

/**
 * Read-only queries for operators (admin listing, stats, throughput). They never change a job:
 * every state change stays in job-repository.ts.
 */

/** Every field is optional; the given ones are ANDed. `createdFrom` is inclusive, `createdTo` exclusive. */
export interface JobListFilter {
  statuses?: readonly JobStatus[];
  types?: readonly string[];
  createdBy?: string;
  createdFrom?: Date;
  createdTo?: Date;
  /** A tenant token sees only its tenant's jobs. */
  tenant?: string;
  /** Jobs carrying every one of these tags. */
  tags?: readonly string[];
  idempotencyKey?: string;
  /** Who may see what (src/auth/access.ts `scopeOf`): ANDed in, so a listing never shows another's job. */
  scope?: AccessScope;
}

export interface JobListPage {
  /** Jobs matching the filter, over all pages. */
  total: number;
  jobs: Job[];
}

/** How many jobs of one type are in one status, and the earliest `nextRunAt` among them. */
export interface TypeStatusCount {
  type: string;
  status: JobStatus;
  count: number;
  earliestNextRunAt: Date | null;
  /** Succeeded with a partial result (some items failed). */
  partial: boolean;
  /** Queued but not due yet (`nextRunAt` after the `now` asked about): a scheduleAt or a retry backoff. */
  scheduled: boolean;
}

export type FinishedStatus = Extract<JobStatus, 'succeeded' | 'failed' | 'dlq'>;
export const FINISHED_STATUSES: readonly FinishedStatus[] = ['succeeded', 'failed', 'dlq'];

/** Jobs that ended in `status` during the UTC minute starting at `minute`. */
export interface CompletionCount {
  minute: Date;
  status: FinishedStatus;
  count: number;
}

/** The Mongo query of a listing filter (also what bulk actions select by). */
export { toMongoFilter as jobListQuery };

export interface JobQueryRepository {
  /** One page of jobs, newest first (ties broken by id, so pages never overlap). */
  listJobs(params: { filter: JobListFilter; skip: number; limit: number }): Promise<JobListPage>;
  /** How many jobs match (bulk actions' `matched`). */
  countJobs(params: { filter: JobListFilter }): Promise<number>;
  /**
   * Up to `limit` matching jobs with ids after `afterId`, by id: bulk actions walk the matches in
   * bounded batches this way (the _id index), never holding a cursor across batches.
   */
  findJobsAfter(params: { filter: JobListFilter; afterId: string | null; limit: number }): Promise<Job[]>;
  /**
   * Counts per (type, status) in one aggregation: one pass over the collection, whatever the number
   * of statuses; queued jobs are split into due and scheduled as of `now`.
   */
  countByTypeAndStatus(params: { now: Date; tenant?: string }): Promise<TypeStatusCount[]>;
  /** Jobs that reached succeeded/failed/dlq in [from, to), per UTC minute of `completedAt`. */
  countCompletionsPerMinute(params: { from: Date; to: Date; tenant?: string }): Promise<CompletionCount[]>;
}

function toMongoFilter(filter: JobListFilter): Record<string, unknown> {
  const query: Record<string, unknown> = {};
  if (filter.statuses && filter.statuses.length > 0) {
    query.status = filter.statuses.length === 1 ? filter.statuses[0] : { $in: [...filter.statuses] };
  }
  if (filter.types && filter.types.length > 0) {
    query.type = filter.types.length === 1 ? filter.types[0] : { $in: [...filter.types] };
  }
  if (filter.createdBy !== undefined) query.createdBy = filter.createdBy;
  if (filter.tenant !== undefined) query.tenant = filter.tenant;
  if (filter.tags && filter.tags.length > 0) query.tags = filter.tags.length === 1 ? filter.tags[0] : { $all: [...filter.tags] };
  if (filter.idempotencyKey !== undefined) query.idempotencyKey = filter.idempotencyKey;
  if (filter.createdFrom !== undefined || filter.createdTo !== undefined) {
    const range: Record<string, Date> = {};
    if (filter.createdFrom !== undefined) range.$gte = filter.createdFrom;
    if (filter.createdTo !== undefined) range.$lt = filter.createdTo;
    query.createdAt = range;
  }
  if (!filter.scope) return query;
  const scope = accessFilter(filter.scope);
  // A scope and an explicit filter on the same field (a tenant admin naming a creator) must both hold.
  const clashes = Object.keys(scope).some((key) => key in query);
  return clashes ? { $and: [query, scope] } : { ...query, ...scope };
}

interface TypeStatusGroup {
  _id: { type: string; status: JobStatus; partial?: boolean | null; scheduled?: boolean | null };
  count: number;
  earliestNextRunAt: Date | null;
}

interface CompletionGroup {
  _id: { minute: string; status: FinishedStatus };
  count: number;
}

export function createJobQueryRepository(connection: Connection): JobQueryRepository {
  const jobs = jobModel(connection);
  return {
    async listJobs({ filter, skip, limit }) {
      const query = toMongoFilter(filter);
      // The (status|createdBy, createdAt) indexes serve both: the page is a bounded index walk.
      const [total, docs] = await Promise.all([
        jobs.countDocuments(query),
        jobs.find(query, null, { sort: { createdAt: -1, _id: -1 }, skip, limit }).lean<JobDocument[]>(),
      ]);
      return { total, jobs: docs.map(toJob) };
    },

    async countJobs({ filter }) {
      return jobs.countDocuments(toMongoFilter(filter));
    },

    async findJobsAfter({ filter, afterId, limit }) {
      const query = toMongoFilter(filter);
      const paged = afterId === null ? query : { $and: [query, { _id: { $gt: afterId } }] };
      return (await jobs.find(paged, null, { sort: { _id: 1 }, limit }).lean<JobDocument[]>()).map(toJob);
    },

    async countByTypeAndStatus(params) {
      // One $group over (type, status), queued jobs split by whether they are due. $min of nextRunAt
      // per group gives, for the due ones, the job that has waited longest since it became due, in
      // the same pass, so stats never cost one query per status or per type. The key is a document:
      // the test server takes an array key (['$type', '$status']) literally.
      const match = params.tenant === undefined ? [] : [{ $match: { tenant: params.tenant } }];
      const scheduled = { $and: [{ $eq: ['$status', 'queued'] }, { $gt: ['$nextRunAt', params.now] }] };
      const groups = await jobs.aggregate<TypeStatusGroup>([
        ...match,
        {
          $group: {
            _id: { type: '$type', status: '$status', partial: '$partial', scheduled },
            count: { $sum: 1 },
            earliestNextRunAt: { $min: '$nextRunAt' },
          },
        },
      ]);
      return groups.map((g) => ({
        type: g._id.type,
        status: g._id.status,
        count: g.count,
        earliestNextRunAt: g.earliestNextRunAt instanceof Date ? g.earliestNextRunAt : null,
        partial: g._id.partial === true,
        scheduled: g._id.scheduled === true,
      }));
    },

    async countCompletionsPerMinute({ from, to, tenant }) {
      const groups = await jobs.aggregate<CompletionGroup>([
        { $match: { completedAt: { $gte: from, $lt: to }, status: { $in: [...FINISHED_STATUSES] }, ...(tenant === undefined ? {} : { tenant }) } },
        {
          $group: {
            // $dateToString formats in UTC; the string is the bucket key (portable to the test server).
            _id: { minute: { $dateToString: { format: '%Y-%m-%dT%H:%M', date: '$completedAt' } }, status: '$status' },
            count: { $sum: 1 },
          },
        },
      ]);
      return groups.map((g) => ({ minute: new Date(`${g._id.minute}:00.000Z`), status: g._id.status, count: g.count }));
    },
  };
}
