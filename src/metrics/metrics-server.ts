import { createServer, type Server } from 'node:http';

import type { Registry } from 'prom-client';

import { coerceError } from '../errors';
import type { Logger } from '../logger';

export interface MetricsServerParams {
  registry: Registry;
  /** WORKER_METRICS_PORT; 0 picks a free port (tests). */
  port: number;
  /** Default 0.0.0.0, so Prometheus can scrape the process from outside its host. */
  host?: string;
  logger?: Logger;
}

export interface MetricsServer {
  /** The port actually bound (differs from the requested one when that was 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * A tiny HTTP server for a process that has no API of its own (the worker): `GET /metrics` answers
 * the registry in Prometheus text format, `GET /healthz` 200; anything else 404.
 */
export async function startMetricsServer(params: MetricsServerParams): Promise<MetricsServer> {
  const { registry } = params;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text);
      },
      (rawErr: unknown) => {
        params.logger?.error({ err: coerceError(rawErr) }, 'collecting metrics failed');
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(params.port, params.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : params.port;
  params.logger?.info({ port }, 'metrics server listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
