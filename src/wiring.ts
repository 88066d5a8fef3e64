import type { Connection } from 'mongoose';

import type { AppDeps } from './app';
import { CallbackDispatcher, DEFAULT_CALLBACK_RETRY_DELAYS_MS } from './callbacks/callback-dispatcher';
import { createCallbackSender, type Resolver } from './callbacks/callback-sender';
import { CallbackTargets } from './callbacks/callback-targets';
import { createAssetService, type AssetService } from './assets/asset-service';
import { adminRoutes } from './http/admin-routes';
import { assetRoutes } from './http/asset-routes';
import { dashboardRoutes } from './http/dashboard-routes';
import { docsRoutes } from './http/docs-routes';
import { escrowRoutes } from './http/escrow-routes';
import { jobRoutes } from './http/job-routes';
import { httpMetrics, metricsRoutes } from './http/metrics-routes';
import { requestLimitRoutes, type RequestLimits } from './http/request-limits';
import { resultFileRoutes } from './http/result-file-routes';
import { scheduleRoutes } from './http/schedule-routes';
import { typeRoutes } from './http/type-routes';
import { AdminService } from './jobs/admin-service';
import { BulkActions } from './jobs/bulk-actions';
import { WorkerPresence } from './jobs/worker-presence';
import { traceRequests } from './http/tracing-middleware';
import { noTracing, type Tracing } from './tracing/tracing';
import { systemClock, type Clock, type RandomSource } from './model/clock';
import { JobEvents } from './jobs/job-events';
import { JobListing } from './jobs/job-listing';
import { JobService } from './jobs/job-service';
import { JOB_TYPES } from './jobs/job-types';
import { JobRegistry } from './jobs/registry';
import { DEFAULT_RESULT_FILE_MAX_BYTES, ResultFiles } from './jobs/result-files';
import { DEFAULT_RETENTION, RetentionCleaner, type RetentionSettings } from './jobs/retention';
import { TypeSettings } from './jobs/type-settings';
import type { Logger } from './logger';
import { createApiMetrics, type ApiMetrics } from './metrics/api-metrics';
import { createPayouts } from './payouts/create-payouts';
import type { PayoutService } from './payouts/payout-service';
import { DEFAULT_SCHEDULER, type SchedulerSettings } from './schedules/schedule';
import { Scheduler } from './schedules/scheduler';
import { ScheduleService } from './schedules/schedule-service';
import { CallbackRepository } from './storage/callback-repository';
import { pingDatabase } from './storage/connection';
import { translateStorageError } from './storage/errors';
import { createJobQueryRepository } from './storage/job-query-repository';
import { JobRepository } from './storage/job-repository';
import { ResultFileRepository } from './storage/result-file-repository';
import { RetentionRepository } from './storage/retention-repository';
import { ScheduleRepository } from './storage/schedule-repository';
import { KeySlotRepository } from './storage/key-slot-repository';
import { RateWindowRepository } from './storage/rate-window-repository';
import { SlotRepository } from './storage/slot-repository';
import { TypeSettingsRepository } from './storage/type-settings-repository';
import { WorkerRepository } from './storage/worker-repository';

export interface ApiWiringParams {
  connection: Connection;
  logger: Logger;
  jwtSecret: string;
  /** Upper bound for the readiness ping. */
  readyTimeoutMs: number;
  /** Defaults to the static registry without overrides. */
  registry?: JobRegistry;
  clock?: Clock;
  random?: RandomSource;
  reclaimIntervalMs?: number;
  leasePollIntervalMs?: number;
  /** The longest the shared long-poll query waits while nothing happens (default 8 × the interval). */
  leasePollMaxIntervalMs?: number;
  /** `GET /jobs/:jobId?wait=`: the shared poll's interval for finishes recorded elsewhere (default 500 ms). */
  resultPollIntervalMs?: number;
  /** Per-token rate limits on enqueue and lease (off when absent); the payload size limit always applies. */
  limits?: RequestLimits;
  /** Asset uploads streamed at once (default DEFAULT_UPLOAD_CONCURRENCY); one more is a 429. */
  assetUploadConcurrency?: number;
  /** Result files: the largest accepted (RESULT_FILE_MAX_BYTES, default 100 MB) and uploads streamed at once (default 4). */
  resultFileMaxBytes?: number;
  resultFileUploadConcurrency?: number;
  /** A request body that sends nothing for this long is cut with 408 (default 10 s; 0: never). */
  bodyIdleTimeoutMs?: number;
  /** How often the queue gauges are refreshed once started (default 15 s). */
  metricsRefreshIntervalMs?: number;
  /** Process metrics (CPU, memory, event loop) on /metrics; the API process turns them on. */
  collectDefaultMetrics?: boolean;
  /** OpenTelemetry tracing (src/tracing): request spans, trace context on jobs (default: off). */
  tracing?: Tracing;
  /** A worker's sighting (GET /admin/workers) is written at most once per this (default 10 s). */
  workerSeenIntervalMs?: number;
  /** Bulk actions: a call's time budget (default 20 s) and batch size (default 500). */
  bulkTimeBudgetMs?: number;
  bulkBatchSize?: number;
  /** Callbacks (off when absent or with no allowed hosts); the dispatcher is started by startApi. */
  callbacks?: CallbackSettings;
  /** Schedule ticks, started by startApi (defaults: DEFAULT_SCHEDULER). */
  scheduler?: Partial<SchedulerSettings>;
  /** Retention of finished jobs, started by startApi (defaults: DEFAULT_RETENTION). */
  retention?: Partial<RetentionSettings>;
  /** How often the run-time type settings are re-read, once started (default 1 s). */
  typeSettingsRefreshMs?: number;
}

export interface CallbackSettings {
  /** CALLBACK_ALLOWED_HOSTS (comma list of host or host:port). */
  allowedHosts: string;
  /** CALLBACK_SECRET. */
  secret: string;
  retryDelaysMs?: readonly number[];
  pollIntervalMs?: number;
  maxPollIntervalMs?: number;
  /** One attempt's bound (default 10 s). */
  timeoutMs?: number;
  leaseMs?: number;
  concurrency?: number;
  /** Host name resolution (tests). */
  resolve?: Resolver;
}

export interface ApiServices {
  registry: JobRegistry;
  events: JobEvents;
  jobs: JobService;
  payouts: PayoutService;
  assets: AssetService;
  admin?: AdminService;
  /** `GET /jobs`: the caller's own jobs. */
  listing?: JobListing;
  /** Result files of jobs (upload by the leaseholder, download by the owner). */
  resultFiles?: ResultFiles;
  /** POST /admin/jobs/bulk. */
  bulk?: BulkActions;
  /** GET /admin/workers: sightings of worker processes. */
  workers?: WorkerPresence;
  /** The app's own prom-client Registry and instruments; startApi starts/stops its queue gauges. */
  metrics?: ApiMetrics;
  schedules?: ScheduleService;
  /** Fires schedule occurrences; startApi starts/stops it. */
  scheduler?: Scheduler;
  /** Deletes expired finished jobs; startApi starts/stops it. */
  retention?: RetentionCleaner;
  /** Run-time type settings (pause, limits); startApi loads them before serving, then refreshes them. */
  types?: TypeSettings;
  /** Delivers callbacks (when configured); startApi starts/stops it. */
  callbacks?: CallbackDispatcher;
}

/** Builds the services from one database connection (used by main and by tests). */
export function wireServices(params: ApiWiringParams): ApiServices {
  const registry = params.registry ?? new JobRegistry(JOB_TYPES);
  const events = new JobEvents();
  const clock = params.clock ?? systemClock;
  const random = params.random ?? Math.random;
  const callbackTargets = CallbackTargets.parse(params.callbacks?.allowedHosts);
  const workers = new WorkerPresence({
    store: new WorkerRepository(params.connection),
    jobs: new JobRepository(params.connection),
    clock,
    logger: params.logger,
    ...(params.workerSeenIntervalMs === undefined ? {} : { intervalMs: params.workerSeenIntervalMs }),
  });
  const queries = createJobQueryRepository(params.connection);
  const types: TypeSettings = new TypeSettings({
    store: new TypeSettingsRepository(params.connection),
    registry,
    queries,
    clock,
    // Read lazily: `jobs` exists by the time the timer first asks.
    shouldWatch: (): boolean => jobs.waitsOnSettings,
    ...(params.typeSettingsRefreshMs === undefined ? {} : { refreshIntervalMs: params.typeSettingsRefreshMs }),
    onError: (err) => params.logger.warn({ err }, 'could not refresh the run-time type settings; the last ones stay in force'),
  });
  const jobs = new JobService({
    runtimeSettings: types,
    presence: workers,
    jobs: new JobRepository(params.connection),
    slots: new SlotRepository(params.connection),
    keySlots: new KeySlotRepository(params.connection),
    rateWindows: new RateWindowRepository(params.connection),
    registry,
    events,
    clock,
    random,
    ...(callbackTargets.enabled ? { callbackTargets } : {}),
    reclaimIntervalMs: params.reclaimIntervalMs ?? 1_000,
    ...(params.leasePollIntervalMs === undefined ? {} : { leasePollIntervalMs: params.leasePollIntervalMs }),
    ...(params.leasePollMaxIntervalMs === undefined ? {} : { leasePollMaxIntervalMs: params.leasePollMaxIntervalMs }),
    ...(params.resultPollIntervalMs === undefined ? {} : { resultPollIntervalMs: params.resultPollIntervalMs }),
  });
  const { payouts } = createPayouts({ connection: params.connection });
  const assets = createAssetService(params.connection);
  const admin = new AdminService({ queries, jobs, registry, clock });
  const listing = new JobListing({ queries });
  const bulk = new BulkActions({
    queries,
    jobs,
    store: new JobRepository(params.connection),
    files: new ResultFileRepository(params.connection),
    ...(params.bulkTimeBudgetMs === undefined ? {} : { timeBudgetMs: params.bulkTimeBudgetMs }),
    ...(params.bulkBatchSize === undefined ? {} : { batchSize: params.bulkBatchSize }),
  });
  const resultFiles = new ResultFiles({
    jobs: new JobRepository(params.connection),
    files: new ResultFileRepository(params.connection),
    clock,
    maxBytes: params.resultFileMaxBytes ?? DEFAULT_RESULT_FILE_MAX_BYTES,
  });
  const metrics = createApiMetrics({
    events,
    types: registry.typeNames(),
    readStats: () => admin.stats(),
    logger: params.logger,
    ...(params.metricsRefreshIntervalMs === undefined ? {} : { gaugeIntervalMs: params.metricsRefreshIntervalMs }),
    ...(params.collectDefaultMetrics === undefined ? {} : { collectDefaultMetrics: params.collectDefaultMetrics }),
  });
  const scheduler = new Scheduler({
    schedules: new ScheduleRepository(params.connection),
    jobs,
    clock,
    logger: params.logger,
    ...DEFAULT_SCHEDULER,
    ...params.scheduler,
  });
  const schedules = new ScheduleService({ schedules: new ScheduleRepository(params.connection), registry, clock, onChanged: () => scheduler.wake() });
  const retention = new RetentionCleaner({ store: new RetentionRepository(params.connection), clock, logger: params.logger, ...DEFAULT_RETENTION, ...params.retention });
  const callbacks =
    callbackTargets.enabled && params.callbacks
      ? new CallbackDispatcher({
          store: new CallbackRepository(params.connection),
          send: createCallbackSender({
            targets: callbackTargets,
            timeoutMs: params.callbacks.timeoutMs ?? 10_000,
            maxResponseBytes: 64 * 1024,
            ...(params.callbacks.resolve ? { resolve: params.callbacks.resolve } : {}),
          }),
          secret: params.callbacks.secret,
          clock,
          random,
          logger: params.logger,
          events,
          retryDelaysMs: params.callbacks.retryDelaysMs ?? DEFAULT_CALLBACK_RETRY_DELAYS_MS,
          ...(params.callbacks.pollIntervalMs === undefined ? {} : { pollIntervalMs: params.callbacks.pollIntervalMs }),
          ...(params.callbacks.maxPollIntervalMs === undefined ? {} : { maxPollIntervalMs: params.callbacks.maxPollIntervalMs }),
          ...(params.callbacks.leaseMs === undefined ? {} : { leaseMs: params.callbacks.leaseMs }),
          ...(params.callbacks.concurrency === undefined ? {} : { concurrency: params.callbacks.concurrency }),
          onOutcome: (outcome) => metrics.callbackDeliveries.labels(outcome).inc(),
        })
      : undefined;
  return { registry, events, jobs, payouts, assets, admin, listing, resultFiles, bulk, workers, metrics, schedules, scheduler, retention, types, callbacks };
}

/** Every dependency of the HTTP app. */
export function wireApi(params: ApiWiringParams, services: ApiServices = wireServices(params)): AppDeps {
  const { connection } = params;
  return {
    logger: params.logger,
    jwtSecret: params.jwtSecret,
    isDatabaseReady: () => pingDatabase(connection, params.readyTimeoutMs),
    errorTranslators: [translateStorageError],
    ...(params.bodyIdleTimeoutMs === undefined ? {} : { bodyIdleTimeoutMs: params.bodyIdleTimeoutMs }),
    middleware: [...(params.tracing?.enabled ? [traceRequests(params.tracing)] : []), ...(services.metrics ? [httpMetrics(services.metrics.http)] : [])],
    publicRouters: [...(services.metrics ? [metricsRoutes({ registry: services.metrics.registry })] : []), docsRoutes(), dashboardRoutes()],
    routers: [
      // Before the job routes: rate limits and the payload size limit answer first.
      requestLimitRoutes(params.limits),
      jobRoutes({ jobs: services.jobs, listing: services.listing ?? new JobListing({ queries: createJobQueryRepository(connection) }), tracing: params.tracing ?? noTracing }),
      ...(services.resultFiles
        ? [
            resultFileRoutes({
              files: services.resultFiles,
              maxBytes: params.resultFileMaxBytes ?? DEFAULT_RESULT_FILE_MAX_BYTES,
              ...(params.resultFileUploadConcurrency === undefined ? {} : { uploadConcurrency: params.resultFileUploadConcurrency }),
            }),
          ]
        : []),
      escrowRoutes({ payouts: services.payouts }),
      assetRoutes({ assets: services.assets, ...(params.assetUploadConcurrency === undefined ? {} : { uploadConcurrency: params.assetUploadConcurrency }) }),
      ...(services.admin
        ? [adminRoutes({ admin: services.admin, ...(services.bulk ? { bulk: services.bulk } : {}), ...(services.workers ? { workers: services.workers } : {}) })]
        : []),
      ...(services.schedules ? [scheduleRoutes({ schedules: services.schedules })] : []),
      ...(services.types ? [typeRoutes({ types: services.types })] : []),
    ],
  };
}
