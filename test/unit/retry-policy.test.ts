import { retryDelayMs } from '../../src/jobs/retry-policy';

const policy = { backoffBaseSeconds: 2, backoffCapSeconds: 60 };

describe('retry delays (pure)', () => {
  it('doubles from the base with each attempt, scaled by a factor in [0.5, 1]', () => {
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(policy, attempt, () => 0.999999))).toEqual([2_000, 4_000, 8_000, 16_000]);
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(policy, attempt, () => 0))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(retryDelayMs(policy, 3, () => 0.5)).toBe(6_000);
  });

  it('never exceeds the cap, however many attempts (no overflow)', () => {
    expect(retryDelayMs(policy, 6, () => 0.999999)).toBe(60_000);
    expect(retryDelayMs(policy, 10_000, () => 0.999999)).toBe(60_000);
    expect(retryDelayMs(policy, 10_000, () => 0)).toBe(30_000);
  });

  it('treats attempt 0 like the first', () => {
    expect(retryDelayMs(policy, 0, () => 0)).toBe(retryDelayMs(policy, 1, () => 0));
  });
});
