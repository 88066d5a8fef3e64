import { Router } from 'express';

export interface HealthDeps {
  /** Resolves true while the database answers; must itself be bounded in time. */
  isDatabaseReady(): Promise<boolean>;
}

export function healthRoutes(deps: HealthDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const ready = await deps.isDatabaseReady();
    if (ready) {
      res.json({ status: 'ready' });
    } else {
      res.status(503).json({ error: { code: 'unavailable', message: 'database is not answering' } });
    }
  });
  return router;
}
