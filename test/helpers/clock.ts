import type { Clock } from '../../src/model/clock';

/** A clock that moves only when told to, so lease expiry and backoff are exact. */
export class TestClock implements Clock {
  private ms: number;

  constructor(start = Date.parse('2030-01-01T00:00:00.000Z')) {
    this.ms = start;
  }

  now(): Date {
    return new Date(this.ms);
  }

  advance(ms: number): void {
    this.ms += ms;
  }
}

/** A random source that returns the given values in turn (then repeats the last). */
export function sequenceRandom(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
}
