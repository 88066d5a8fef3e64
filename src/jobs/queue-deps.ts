import type { CallbackTargets } from '../callbacks/callback-targets';
import type { Clock, RandomSource } from '../model/clock';
import { randomHex } from '../random-hex';
import type { JobRepository } from '../storage/job-repository';
import type { KeySlotRepository } from '../storage/key-slot-repository';
import type { RateWindowRepository } from '../storage/rate-window-repository';
import type { SlotRepository } from '../storage/slot-repository';
import type { JobEvents } from './job-events';
import type { JobRegistry } from './registry';

/**
 * What every use case of the queue works with. Glossary (see src/model/job.ts): a job is leased by
 * a worker under a lease id; an attempt is one lease; a type's policy says how long a lease lasts,
 * how often it is retried, how many of its jobs may be leased at once (slots; per concurrency key:
 * key slots) and how many per window of time (rate windows).
 */
export interface QueueDeps {
  jobs: JobRepository;
  slots: SlotRepository;
  /** Per-key slots (keyConcurrencyLimit). */
  keySlots: KeySlotRepository;
  /** Sliding windows of rate-limited types. */
  rateWindows: RateWindowRepository;
  registry: JobRegistry;
  events: JobEvents;
  clock: Clock;
  random: RandomSource;
  /** Where callbacks may go (CALLBACK_ALLOWED_HOSTS); absent: callbacks are off. */
  callbackTargets?: Pick<CallbackTargets, 'check'>;
}

export function newJobId(): string {
  return `job_${randomHex(12)}`;
}

export function newLeaseId(): string {
  return `lease_${randomHex(12)}`;
}
