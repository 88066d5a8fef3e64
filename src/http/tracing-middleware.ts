import type { RequestHandler } from 'express';

import type { Tracing } from '../tracing/tracing';
import { routeOf } from './metrics-routes';

/**
 * One server span per request (continuing an incoming `traceparent`), named `METHOD /route/:pattern`
 * once routing has found the route; the rest of the request is handled inside it, so an enqueue can
 * store its trace context on the job. Mounted only when tracing is on.
 */
export function traceRequests(tracing: Tracing): RequestHandler {
  return (req, res, next) => {
    const { span, run } = tracing.startServerSpan({
      name: req.method,
      headers: req.headers,
      attributes: { 'http.request.method': req.method, 'url.path': req.path, 'url.scheme': req.protocol },
    });
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      const route = routeOf(req, res);
      span.updateName(`${req.method} ${route}`);
      span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
      if (res.statusCode >= 500) span.fail();
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    run(next);
  };
}
