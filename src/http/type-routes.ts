import { Router } from 'express';
import type { z } from 'zod';

import { ROUTES } from '../contract/routes';
import type { jobTypeEntry } from '../contract/type-settings';
import type { JobTypeView, TypeSettings } from '../jobs/type-settings';
import { mountRoute } from './mount-route';

type Wire = z.input<typeof jobTypeEntry>;

/** A type's entry on the wire (GET /admin/types, PATCH /admin/types/:type). */
export function toJobTypeWire(view: JobTypeView): Wire {
  const { policy, overrides } = view;
  return {
    type: view.type,
    policy: {
      maxAttempts: policy.maxAttempts,
      timeoutSeconds: policy.timeoutSeconds,
      concurrencyLimit: policy.concurrencyLimit,
      keyConcurrencyLimit: policy.keyConcurrencyLimit,
      rateLimit: policy.rateLimit ? { jobs: policy.rateLimit.jobs, perSeconds: policy.rateLimit.perSeconds } : null,
      backoffBaseSeconds: policy.backoffBaseSeconds,
      backoffCapSeconds: policy.backoffCapSeconds,
    },
    paused: view.paused,
    counts: { ...view.counts },
    overrides: {
      ...(overrides.paused === undefined ? {} : { paused: overrides.paused }),
      ...(overrides.concurrencyLimit === undefined ? {} : { concurrencyLimit: overrides.concurrencyLimit }),
      ...(overrides.keyConcurrencyLimit === undefined ? {} : { keyConcurrencyLimit: overrides.keyConcurrencyLimit }),
      ...(overrides.rateLimit === undefined ? {} : { rateLimit: { ...overrides.rateLimit } }),
    },
  };
}

/** `/admin/types` (API.md Part 2): each route maps onto one TypeSettings call. */
export function typeRoutes(deps: { types: TypeSettings }): Router {
  const { types } = deps;
  const router = Router();

  mountRoute(router, ROUTES.listJobTypes)(async ({ principal }) => ({ status: 200, body: { data: (await types.list(principal)).map(toJobTypeWire) } }));

  mountRoute(router, ROUTES.updateJobType)(async ({ principal, params, body }) => ({
    status: 200,
    body: toJobTypeWire(await types.update({ principal, type: params.type, change: body })),
  }));

  return router;
}
