import { Router, type Request } from 'express';
import { z } from 'zod';

import type { AdminService, JobListFilter } from '../jobs/admin-service';
import { JOB_STATUSES } from '../model/job';
import { requirePermission } from './auth';
import { principalOf } from './request-context';
import { parseRequest } from './validation';

/** A tenant token's listings and counts cover only its tenant. */
function tenantOf(req: Request): { tenant?: string } {
  const { tenant } = principalOf(req);
  return tenant === undefined ? {} : { tenant };
}

const wholeNumber = (field: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, `${field} must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${field} must be from ${min} to ${max}`).max(max, `${field} must be from ${min} to ${max}`));

/** `a,b` → ['a', 'b'] (duplicates and blanks dropped), as `type` on the lease route. */
const commaList = z
  .string()
  .max(2_000)
  .transform((raw) => [...new Set(raw.split(',').map((s) => s.trim()).filter(Boolean))]);

const isoDate = (field: string) =>
  z.iso.datetime({ offset: true, error: `${field} must be an ISO-8601 date-time` }).transform((s) => new Date(s));

export const MAX_PER_PAGE = 100;
export const DEFAULT_PER_PAGE = 20;
export const MAX_THROUGHPUT_MINUTES = 1_440;

const queueQuery = z
  .object({
    status: commaList.pipe(z.array(z.enum(JOB_STATUSES, { error: `status must be one of ${JOB_STATUSES.join(', ')}` }))).optional(),
    type: commaList.pipe(z.array(z.string().max(128))).optional(),
    createdBy: z.string().min(1).max(256).optional(),
    createdFrom: isoDate('createdFrom').optional(),
    createdTo: isoDate('createdTo').optional(),
    page: wholeNumber('page', 1, 1_000_000).default(1),
    per_page: wholeNumber('per_page', 1, MAX_PER_PAGE).default(DEFAULT_PER_PAGE),
  })
  .refine((q) => !q.createdFrom || !q.createdTo || q.createdFrom.getTime() <= q.createdTo.getTime(), {
    path: ['createdTo'],
    message: 'createdTo must not be before createdFrom',
    // Only once every field parsed: with a bad date the value is still the raw string (no getTime).
    when: (payload) => payload.issues.length === 0,
  });

const throughputQuery = z.object({
  minutes: wholeNumber('minutes', 1, MAX_THROUGHPUT_MINUTES).default(60),
});

const jobIdParams = z.object({ jobId: z.string().regex(/^job_[0-9a-f]{24}$/, 'must be a job id (job_ + 24 hex digits)') });

/** `/admin/*` (API.md): admin only; each route maps onto one AdminService call. */
export function adminRoutes(deps: { admin: AdminService }): Router {
  const { admin } = deps;
  const router = Router();
  router.use('/admin', requirePermission('admin'));

  router.get('/admin/jobs/queue', async (req, res) => {
    const query = parseRequest(queueQuery, req.query, 'query');
    const filter: JobListFilter = {
      ...(query.status && query.status.length > 0 ? { statuses: query.status } : {}),
      ...(query.type && query.type.length > 0 ? { types: query.type } : {}),
      ...(query.createdBy === undefined ? {} : { createdBy: query.createdBy }),
      ...(query.createdFrom === undefined ? {} : { createdFrom: query.createdFrom }),
      ...(query.createdTo === undefined ? {} : { createdTo: query.createdTo }),
      ...tenantOf(req),
    };
    const page = await admin.listQueue({ filter, page: query.page, perPage: query.per_page });
    res.json({
      meta: { page: page.page, per_page: page.perPage, total: page.total, total_pages: page.totalPages },
      data: page.jobs,
    });
  });

  router.get('/admin/jobs/stats', async (req, res) => {
    res.json(await admin.stats(principalOf(req).tenant));
  });

  router.get('/admin/jobs/throughput', async (req, res) => {
    const query = parseRequest(throughputQuery, req.query, 'query');
    res.json(await admin.throughput(query.minutes, principalOf(req).tenant));
  });

  router.post('/admin/jobs/:jobId/requeue', async (req, res) => {
    const { jobId } = parseRequest(jobIdParams, req.params, 'params');
    res.json(await admin.requeue(jobId, principalOf(req).tenant));
  });

  return router;
}
