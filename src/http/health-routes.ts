import { Router } from 'express';

import { ROUTES } from '../contract/routes';
import { UnavailableError } from '../errors';
import { sendError } from './error-handler';
import { ANSWERED, mountRoute } from './mount-route';

export interface HealthDeps {
  /** Resolves true while the database answers; must itself be bounded in time. */
  isDatabaseReady(): Promise<boolean>;
}

export function healthRoutes(deps: HealthDeps): Router {
  const router = Router();
  mountRoute(router, ROUTES.healthz)(async () => ({ status: 200, body: { status: 'ok' } }));
  mountRoute(router, ROUTES.readyz)(async ({ res }) => {
    if (await deps.isDatabaseReady()) return { status: 200, body: { status: 'ready' } };
    // Answered here rather than thrown: a probe failing every few seconds is not an error to log each time.
    sendError(res, new UnavailableError('database is not answering'));
    return ANSWERED;
  });
  return router;
}
