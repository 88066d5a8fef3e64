import { Router } from 'express';

import { ROUTES } from '../contract/routes';
import type { AdminService, JobListFilter } from '../jobs/admin-service';
import type { BulkActions } from '../jobs/bulk-actions';
import type { WorkerPresence } from '../jobs/worker-presence';
import type { Principal } from '../model/principal';
import { requirePermission } from './auth';
import { mountRoute } from './mount-route';
import { toQueuePageWire, toQueueStatsWire, toThroughputWire, toWorkerListWire } from './wire';

/** A tenant token's listings and counts cover only its tenant. */
function tenantOf(principal: Principal): { tenant?: string } {
  return principal.tenant === undefined ? {} : { tenant: principal.tenant };
}

/** `/admin/*` (API.md): admin only; each route maps onto one AdminService call. */
const asList = <T>(value: T | readonly T[] | undefined): T[] | undefined => (value === undefined ? undefined : Array.isArray(value) ? [...(value as T[])] : [value as T]);

export function adminRoutes(deps: { admin: AdminService; bulk?: BulkActions; workers?: WorkerPresence }): Router {
  const { admin } = deps;
  const router = Router();
  // Every /admin path, known or not, is the admin's: others get 403 rather than learn which exist.
  router.use('/admin', requirePermission('admin'));

  mountRoute(router, ROUTES.listQueue)(async ({ principal, query }) => {
    const filter: JobListFilter = {
      ...(query.status && query.status.length > 0 ? { statuses: query.status } : {}),
      ...(query.type && query.type.length > 0 ? { types: query.type } : {}),
      ...(query.tag && query.tag.length > 0 ? { tags: query.tag } : {}),
      ...(query.idempotencyKey === undefined ? {} : { idempotencyKey: query.idempotencyKey }),
      ...(query.createdBy === undefined ? {} : { createdBy: query.createdBy }),
      ...(query.createdFrom === undefined ? {} : { createdFrom: query.createdFrom }),
      ...(query.createdTo === undefined ? {} : { createdTo: query.createdTo }),
      ...tenantOf(principal),
    };
    return { status: 200, body: toQueuePageWire(await admin.listQueue({ filter, page: query.page, perPage: query.per_page })) };
  });

  mountRoute(router, ROUTES.queueStats)(async ({ principal }) => ({ status: 200, body: toQueueStatsWire(await admin.stats(principal.tenant)) }));

  mountRoute(router, ROUTES.throughput)(async ({ principal, query }) => ({ status: 200, body: toThroughputWire(await admin.throughput(query.minutes, principal.tenant)) }));

  if (deps.bulk) {
    const { bulk } = deps;
    mountRoute(router, ROUTES.bulkJobs)(async ({ principal, body }) => {
      const { filter } = body;
      const statuses = asList(filter.status);
      const types = asList(filter.type);
      const tags = asList(filter.tag);
      const outcome = await bulk.run({
        action: body.action,
        dryRun: body.dryRun ?? false,
        filter: {
          ...(statuses ? { statuses } : {}),
          ...(types ? { types } : {}),
          ...(tags ? { tags } : {}),
          ...(filter.createdBy === undefined ? {} : { createdBy: filter.createdBy }),
          ...(filter.createdFrom === undefined ? {} : { createdFrom: new Date(filter.createdFrom) }),
          ...(filter.createdTo === undefined ? {} : { createdTo: new Date(filter.createdTo) }),
        },
        ...tenantOf(principal),
      });
      return { status: 200, body: outcome };
    });
  }

  if (deps.workers) {
    const { workers } = deps;
    mountRoute(router, ROUTES.listWorkers)(async ({ principal }) => ({ status: 200, body: toWorkerListWire(await workers.list(tenantOf(principal))) }));
  }

  mountRoute(router, ROUTES.requeueJob)(async ({ principal, params }) => {
    const requeued = await admin.requeue(params.jobId, principal.tenant);
    return { status: 200, body: requeued };
  });

  return router;
}
