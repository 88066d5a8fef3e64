import type { Connection } from 'mongoose';

import type { AppDeps } from './app';
import { createAssetService, type AssetService } from './assets/asset-service';
import { assetRoutes } from './http/asset-routes';
import { escrowRoutes } from './http/escrow-routes';
import { jobRoutes } from './http/job-routes';
import { systemClock, type Clock, type RandomSource } from './jobs/job';
import { JobEvents } from './jobs/job-events';
import { JobService } from './jobs/job-service';
import { JOB_TYPES } from './jobs/job-types';
import { JobRegistry } from './jobs/registry';
import type { Logger } from './logger';
import { createPayouts } from './payouts/create-payouts';
import type { PayoutService } from './payouts/payout-service';
import { pingDatabase } from './storage/connection';
import { translateStorageError } from './storage/errors';
import { JobRepository } from './storage/job-repository';
import { SlotRepository } from './storage/slot-repository';

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
}

export interface ApiServices {
  registry: JobRegistry;
  events: JobEvents;
  jobs: JobService;
  payouts: PayoutService;
  assets: AssetService;
}

/** Builds the services from one database connection (used by main and by tests). */
export function wireServices(params: ApiWiringParams): ApiServices {
  const registry = params.registry ?? new JobRegistry(JOB_TYPES);
  const events = new JobEvents();
  const jobs = new JobService({
    jobs: new JobRepository(params.connection),
    slots: new SlotRepository(params.connection),
    registry,
    events,
    clock: params.clock ?? systemClock,
    random: params.random ?? Math.random,
    reclaimIntervalMs: params.reclaimIntervalMs ?? 1_000,
  });
  const { payouts } = createPayouts({ connection: params.connection });
  const assets = createAssetService(params.connection);
  return { registry, events, jobs, payouts, assets };
}

/** Every dependency of the HTTP app. */
export function wireApi(params: ApiWiringParams, services: ApiServices = wireServices(params)): AppDeps {
  const { connection } = params;
  return {
    logger: params.logger,
    jwtSecret: params.jwtSecret,
    isDatabaseReady: () => pingDatabase(connection, params.readyTimeoutMs),
    errorTranslators: [translateStorageError],
    routers: [jobRoutes({ jobs: services.jobs }), escrowRoutes({ payouts: services.payouts }), assetRoutes({ assets: services.assets })],
  };
}
