import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

import type { Connection } from 'mongoose';

import { createApp } from './app';
import type { ApiConfig } from './config';
import { createHttpServer } from './http/timeouts';
import type { Logger } from './logger';
import { JOB_TYPES } from './jobs/job-types';
import { JobRegistry } from './jobs/registry';
import { connectDatabase } from './storage/connection';
import { ensureIndexes } from './storage/indexes';
import type { Tracing } from './tracing/tracing';
import { wireApi, wireServices, type ApiWiringParams } from './wiring';

export interface RunningApi {
  server: Server;
  connection: Connection;
  port: number;
  /** Stops the schedule ticks and the retention cleaner (close() does it too, first). */
  stopBackgroundTasks(): Promise<void>;
  /** Stops accepting, lets in-flight requests finish (bounded), then closes the database. */
  close(): Promise<void>;
}

/** Composition root of the API process: connects, wires the app, listens. */
export async function startApi(params: { config: ApiConfig; logger: Logger; tracing?: Tracing }): Promise<RunningApi> {
  const { config, logger } = params;
  // Policy overrides are part of the configuration: a bad one stops start-up before connecting.
  const registry = new JobRegistry(JOB_TYPES, config.JOB_POLICY_OVERRIDES);
  const connection = await connectDatabase({
    uri: config.MONGODB_URI,
    dbName: config.MONGODB_DB_NAME,
    timeoutMs: config.DB_TIMEOUT_MS,
    writeConcern: config.DB_WRITE_CONCERN,
    readPreference: config.DB_READ_PREFERENCE,
  });
  await ensureIndexes(connection);
  const wiring: ApiWiringParams = {
    connection,
    logger,
    jwtSecret: config.JWT_SECRET,
    readyTimeoutMs: Math.min(config.DB_TIMEOUT_MS, 2_000),
    registry,
    reclaimIntervalMs: config.RECLAIM_INTERVAL_MS,
    leasePollIntervalMs: config.LEASE_POLL_INTERVAL_MS,
    leasePollMaxIntervalMs: config.LEASE_POLL_MAX_INTERVAL_MS,
    resultPollIntervalMs: config.RESULT_WAIT_POLL_INTERVAL_MS,
    limits: { enqueuePerMinute: config.RATE_LIMIT_ENQUEUE_PER_MINUTE, leasePerMinute: config.RATE_LIMIT_LEASE_PER_MINUTE },
    assetUploadConcurrency: config.ASSET_UPLOAD_CONCURRENCY,
    resultFileMaxBytes: config.RESULT_FILE_MAX_BYTES,
    ...(params.tracing ? { tracing: params.tracing } : {}),
    resultFileUploadConcurrency: config.RESULT_FILE_UPLOAD_CONCURRENCY,
    ...(config.CALLBACK_ALLOWED_HOSTS && config.CALLBACK_SECRET ? { callbacks: { allowedHosts: config.CALLBACK_ALLOWED_HOSTS, secret: config.CALLBACK_SECRET } } : {}),
    bodyIdleTimeoutMs: config.HTTP_BODY_IDLE_TIMEOUT_MS,
    typeSettingsRefreshMs: config.TYPE_SETTINGS_REFRESH_MS,
    collectDefaultMetrics: true,
    scheduler: { intervalMs: config.SCHEDULER_INTERVAL_MS, misfireGraceMs: config.SCHEDULER_MISFIRE_GRACE_MS, idleIntervalMs: config.SCHEDULER_IDLE_INTERVAL_MS },
    retention: {
      succeededDays: config.JOB_RETENTION_SUCCEEDED_DAYS,
      failedDays: config.JOB_RETENTION_FAILED_DAYS,
      dlqDays: config.JOB_RETENTION_DLQ_DAYS,
      intervalMs: config.RETENTION_INTERVAL_MS,
      batchSize: config.RETENTION_BATCH_SIZE,
      batchPauseMs: config.RETENTION_BATCH_PAUSE_MS,
    },
  };
  const services = wireServices(wiring);
  // Run-time type settings (a paused type, a limit) hold from the first request on.
  await services.types?.refresh();
  const app = createApp(wireApi(wiring, services));
  // Slow clients cannot hold a connection: headers, whole requests and stalled bodies are timed out.
  const server = createHttpServer(app, { headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const unusedConnections = trackUnusedConnections(server);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  logger.info({ port }, 'API listening');
  // Queue depth/age gauges: one aggregation every 15 s, stopped before the database closes.
  services.metrics?.queueGauges.start();
  // Schedule ticks and the retention cleaner run in every API instance; they coordinate through the
  // database (see src/schedules/scheduler.ts), and are stopped before it closes.
  services.scheduler?.start();
  services.retention?.start();
  // Every instance re-reads the run-time type settings, so a PATCH on one holds on all within 2 s.
  services.types?.start();
  // Callback deliveries: every instance takes part; attempts are leased in the database.
  services.callbacks?.start();
  // Long-polls here wake for jobs enqueued on other instances too, where the database has change streams.
  const feed = await services.jobs.startWorkFeed(config.LEASE_WAKE_FEED).catch(() => false);
  logger.info({ changeFeed: feed }, feed ? 'long-polls wake through a change feed' : 'long-polls wake through the shared poll');

  let stoppingTasks: Promise<void> | undefined;
  // First on shutdown: no schedule fires (and no job is enqueued) while workers drain.
  const stopBackgroundTasks = (): Promise<void> => {
    stoppingTasks ??= Promise.all([services.scheduler?.stop(), services.retention?.stop(), services.types?.stop(), services.callbacks?.stop()]).then(() => undefined);
    return stoppingTasks;
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await stopBackgroundTasks();
      // Waiting long-polls answer (empty) at once, so in-flight requests can finish.
      services.jobs.close();
      await closeServer(server, config.SHUTDOWN_TIMEOUT_MS, unusedConnections);
      await services.metrics?.queueGauges.stop();
      await connection.close();
    })();
    return closing;
  };
  return { server, connection, port, stopBackgroundTasks, close };
}

/**
 * Connections that have not sent a byte yet. closeIdleConnections() skips a connection that never
 * carried a request — HTTP clients such as undici open one ahead of use — and server.close() would
 * wait for the client's keep-alive timeout (seconds) to end it. One that sent nothing has nothing
 * in flight, so closing it loses nothing.
 */
function trackUnusedConnections(server: Server): () => Socket[] {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return () => [...sockets].filter((socket) => socket.bytesRead === 0);
}

async function closeServer(server: Server, timeoutMs: number, unusedConnections: () => Socket[]): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // server.close() only stops new connections: keep-alive clients (workers) would go on sending
  // requests on theirs until the timeout cut them mid-request (a report applied, its answer lost).
  // So from now on every response closes its connection, and connections that go idle are closed.
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('Connection', 'close');
  });
  const closeIdle = (): void => {
    server.closeIdleConnections();
    for (const socket of unusedConnections()) socket.destroy();
  };
  closeIdle();
  const sweeper = setInterval(closeIdle, 100);
  const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
  await closed;
  clearInterval(sweeper);
  clearTimeout(timer);
}
