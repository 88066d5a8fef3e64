import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Histogram, Registry } from 'prom-client';

import { ROUTES } from '../contract/routes';
import type { HttpLabel } from '../metrics/http-metrics';
import { ANSWERED, mountRoute } from './mount-route';

/** `GET /metrics`: Prometheus text format; public (API.md). Reads the registry only, never the database. */
export function metricsRoutes(deps: { registry: Registry }): Router {
  const router = Router();
  mountRoute(router, ROUTES.metrics)(async ({ res }) => {
    const text = await deps.registry.metrics();
    res.setHeader('Content-Type', deps.registry.contentType);
    res.send(text);
    return ANSWERED;
  });
  return router;
}

const UNMATCHED = '(unmatched)';

/**
 * The route pattern that handled the request. Routers are mounted at the root, so `req.route.path`
 * is the whole pattern; static mounts name themselves with `labelRoute`. Requests that no route
 * handled (404s, and 401s refused before routing) share one label, so probing cannot add series.
 */
export function routeOf(req: Request, res: Response): string {
  const label: unknown = res.locals.metricsRoute;
  if (typeof label === 'string') return label;
  const route: unknown = req.route;
  if (typeof route === 'object' && route !== null && typeof (route as { path?: unknown }).path === 'string') {
    return `${req.baseUrl}${(route as { path: string }).path}`;
  }
  return UNMATCHED;
}

/** Names the requests a non-route middleware (express.static) serves, for the latency histogram. */
export function labelRoute(pattern: string): RequestHandler {
  return (_req, res, next) => {
    res.locals.metricsRoute = pattern;
    next();
  };
}

/** Times every request into `http_request_duration_seconds{method, route, status}`. */
export function httpMetrics(histogram: Histogram<HttpLabel>): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    let observed = false;
    // 'close' without 'finish': the client hung up first; the request still took that long.
    const observe = (): void => {
      if (observed) return;
      observed = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      histogram.labels(req.method, routeOf(req, res), String(res.statusCode)).observe(seconds);
    };
    res.once('finish', observe);
    res.once('close', observe);
    next();
  };
}
