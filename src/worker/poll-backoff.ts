/**
 * How long an idle worker waits before its next lease call: doubles from `minMs` to `maxMs` while the
 * queue stays empty (or the API fails), back to `minMs` as soon as work arrives. Jitter keeps many
 * idle workers from polling in step.
 */
export class PollBackoff {
  private failures = 0;

  constructor(
    private readonly options: { minMs: number; maxMs: number; random: () => number },
  ) {}

  /** The wait after one more empty (or failed) poll. */
  next(): number {
    const base = Math.min(this.options.maxMs, this.options.minMs * 2 ** Math.min(this.failures, 30));
    this.failures += 1;
    return Math.round(base * (0.75 + 0.25 * this.options.random()));
  }

  reset(): void {
    this.failures = 0;
  }
}
