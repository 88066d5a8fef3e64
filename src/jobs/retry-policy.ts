import type { JobPolicy } from '../model/job-type';
import type { RandomSource } from '../model/clock';

/**
 * Delay before the next try after a failed `attempt` (1-based): min(cap, base · 2^(attempt−1)),
 * scaled by a factor in [0.5, 1] so that jobs failing together do not retry together.
 */
export function retryDelayMs(policy: Pick<JobPolicy, 'backoffBaseSeconds' | 'backoffCapSeconds'>, attempt: number, random: RandomSource): number {
  const exponent = Math.max(0, attempt - 1);
  const uncapped = policy.backoffBaseSeconds * 2 ** Math.min(exponent, 60);
  const seconds = Math.min(policy.backoffCapSeconds, uncapped);
  const factor = 0.5 + 0.5 * random();
  return Math.round(seconds * factor * 1000);
}
