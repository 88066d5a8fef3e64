/** Time and randomness are injected, so leases, retries and schedules are exact in tests. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Returns a number in [0, 1); injected so retry jitter is exact in tests. */
export type RandomSource = () => number;
