import express, { type Express, type RequestHandler, type Router } from 'express';

import { ROUTES } from './contract/routes';
import { authenticate } from './http/auth';
import { DEFAULT_BODY_IDLE_TIMEOUT_MS, limitBodyIdleTime } from './http/body';
import { errorHandler, notFoundRoute, type ErrorTranslator } from './http/error-handler';
import { healthRoutes } from './http/health-routes';
import { mountRoute } from './http/mount-route';
import { requestLogging } from './http/request-logging';
import { rejectUnsafeQueryKeys } from './http/sanitize';
import type { Logger } from './logger';

export interface AppDeps {
  logger: Logger;
  jwtSecret: string;
  isDatabaseReady(): Promise<boolean>;
  /** Recognise storage errors (database down → 503) without the HTTP layer knowing the driver. */
  errorTranslators?: readonly ErrorTranslator[];
  /** Run before every route, authentication included (e.g. request metrics). */
  middleware?: readonly RequestHandler[];
  /** Routers that need no token (mounted before authentication); they read no bodies. */
  publicRouters?: readonly Router[];
  /**
   * Routers behind authentication. No body is parsed for them: a route that takes a JSON body lists
   * `readJsonBody` (src/http/body.ts) after its permission check, so 401 and 403 come before any body
   * is read (API.md).
   */
  routers?: readonly Router[];
  /** A request body that sends nothing for this long is cut with 408 (0: no limit; default 10 s). */
  bodyIdleTimeoutMs?: number;
}

/** The first path segments of the public routes (`/healthz`, `/docs`, `/dashboard`, ...). */
const PUBLIC_PATH_SEGMENTS = new Set(
  Object.values(ROUTES as Record<string, { access: string; path: string }>)
    .filter((route) => route.access === 'public')
    .map((route) => firstSegment(route.path)),
);

function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  return end === -1 ? path : path.slice(0, end);
}

/** Builds the Express app from its dependencies; it neither listens nor connects. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use(requestLogging(app, deps.logger));
  for (const handler of deps.middleware ?? []) app.use(handler);

  // The public routers under one router that only requests of a public route's first path segment
  // enter (from the route table): an API call passes them without a walk through each.
  const publicRoutes = express.Router();
  // Any other request leaves this router at once (`next('router')`).
  publicRoutes.use((req, _res, next) => next(PUBLIC_PATH_SEGMENTS.has(firstSegment(req.path)) ? undefined : 'router'));
  publicRoutes.use(healthRoutes({ isDatabaseReady: deps.isDatabaseReady }));
  for (const router of deps.publicRouters ?? []) publicRoutes.use(router);
  app.use(publicRoutes);

  const protectedRoutes = express.Router();
  // The token first: an unauthenticated request is answered 401 without its body being read.
  protectedRoutes.use(authenticate(deps.jwtSecret));
  protectedRoutes.use(rejectUnsafeQueryKeys);
  protectedRoutes.use(limitBodyIdleTime(deps.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS));
  mountRoute(protectedRoutes, ROUTES.whoami)(async ({ principal }) => ({
    status: 200,
    body: { sub: principal.sub, role: principal.role, ...(principal.tenant === undefined ? {} : { tenant: principal.tenant }) },
  }));
  for (const router of deps.routers ?? []) protectedRoutes.use(router);
  // Unknown paths answer 404 only to authenticated callers: unauthenticated probing learns nothing.
  app.use(protectedRoutes);

  app.use(notFoundRoute);
  app.use(errorHandler(deps.errorTranslators ?? []));
  return app;
}
