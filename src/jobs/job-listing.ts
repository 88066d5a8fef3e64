import { scopeOf } from '../auth/access';
import type { Principal } from '../model/principal';
import type { JobListFilter, JobQueryRepository } from '../storage/job-query-repository';
import type { QueuePage } from './admin-service';

/** What a caller may filter its own listing by (the scope is the access rule's, never the caller's). */
export type OwnJobsFilter = Pick<JobListFilter, 'statuses' | 'types' | 'tags'>;

/**
 * `GET /jobs`: the caller's own jobs, newest first — a service's or user's own (sub, role and tenant:
 * src/auth/access.ts), an admin's all (a tenant admin's: its tenant's). Knows nothing of HTTP.
 */
export class JobListing {
  constructor(private readonly deps: { queries: Pick<JobQueryRepository, 'listJobs'> }) {}

  async listOwn(params: { principal: Principal; filter: OwnJobsFilter; page: number; perPage: number }): Promise<QueuePage> {
    const { page, perPage } = params;
    const filter: JobListFilter = { ...params.filter, scope: scopeOf(params.principal, 'job', 'read') };
    const { total, jobs } = await this.deps.queries.listJobs({ filter, skip: (page - 1) * perPage, limit: perPage });
    return { page, perPage, total, totalPages: Math.ceil(total / perPage), jobs };
  }
}
