/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `everyMs` until it returns true or `deadline` (epoch ms) passes; returns whether it held. */
export async function pollUntil(check: () => Promise<boolean>, params: { everyMs: number; deadline: number }): Promise<boolean> {
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= params.deadline) return false;
    await sleep(params.everyMs);
  }
}
