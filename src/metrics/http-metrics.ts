import { Histogram, type Registry } from 'prom-client';

export type HttpLabel = 'method' | 'route' | 'status';

/** Request latency by method, route pattern (never the raw URL: ids would explode the series) and status. */
export function createHttpRequestDuration(registry: Registry): Histogram<HttpLabel> {
  return new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency; route is the Express route pattern, "(unmatched)" when no route handled the request.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
}
