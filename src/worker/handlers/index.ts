import type { AssetService } from '../../assets/asset-service';
import { noop, payoutExecute, thumbnailCreate } from '../../jobs/job-types';
import type { JobRegistry } from '../../jobs/registry';
import type { PayoutService } from '../../payouts/payout-service';
import type { JobHandler } from '../handler';
import { createNoopHandler } from './noop';
import { createPayoutHandler } from './payout-execute';
import { createThumbnailHandler } from './thumbnail-create';

export interface HandlerDeps {
  assets: AssetService;
  payouts: PayoutService;
}

/** The handler of each job type, keyed by the type's name in the registry. */
export function createHandlers(deps: HandlerDeps): Map<string, JobHandler> {
  return new Map<string, JobHandler>([
    [thumbnailCreate.name, createThumbnailHandler({ assets: deps.assets }) as JobHandler],
    [payoutExecute.name, createPayoutHandler({ payouts: deps.payouts }) as JobHandler],
    [noop.name, createNoopHandler() as JobHandler],
  ]);
}

export class HandlerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HandlerConfigError';
  }
}

/**
 * Start-up check: every type this worker takes is registered and has a handler, and no handler is
 * registered for a type the registry does not know. Returns the types to lease.
 */
export function checkHandlers(registry: JobRegistry, handlers: ReadonlyMap<string, JobHandler>, wanted: readonly string[] | null): string[] {
  for (const type of handlers.keys()) {
    if (!registry.has(type)) throw new HandlerConfigError(`a handler is registered for unknown job type "${type}"`);
  }
  const types = wanted ?? registry.typeNames();
  for (const type of types) {
    if (!registry.has(type)) throw new HandlerConfigError(`WORKER_TYPES names unknown job type "${type}"`);
    if (!handlers.has(type)) throw new HandlerConfigError(`job type "${type}" has no handler`);
  }
  return [...types];
}
