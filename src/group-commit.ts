/**
 * Group commit: callers submit one item each; while a flush is in flight, new items queue up and
 * go together in the next flush, and while items keep arriving (another came within `lingerMs`)
 * the flush waits up to `lingerMs` for more. A lone caller is flushed at once (no added latency);
 * under load, items arriving within a millisecond or two share one round trip. Each caller gets its
 * own outcome, and only once the flush that carried its item has finished (never acknowledged
 * before its write).
 */
export class GroupCommit<Item, Outcome> {
  private queue: { item: Item; weight: number; resolve: (outcome: Outcome) => void; reject: (err: unknown) => void }[] = [];
  private flushing = false;

  constructor(
    private readonly options: {
      /** Writes the items, returning one outcome per item, in order. */
      flush: (items: Item[]) => Promise<Outcome[]>;
      /** At most this many items per flush. */
      maxBatch: number;
      /** At most this much weight (given with each item) per flush; a flush always takes at least one item. */
      maxWeight?: number;
      /** How long a flush may wait for more items while they keep coming (0: never waits). */
      lingerMs?: number;
    },
  ) {}

  private lastSubmitAt = Number.NEGATIVE_INFINITY;

  /** `weight`: what the item counts against `maxWeight` (its size, say). */
  submit(item: Item, weight = 0): Promise<Outcome> {
    const now = performance.now();
    const busy = now - this.lastSubmitAt <= (this.options.lingerMs ?? 0);
    this.lastSubmitAt = now;
    return new Promise<Outcome>((resolve, reject) => {
      this.queue.push({ item, weight, resolve, reject });
      if (!this.flushing) void this.drain(busy);
    });
  }

  private batchSize(): number {
    const { maxBatch, maxWeight } = this.options;
    if (maxWeight === undefined) return maxBatch;
    let weight = 0;
    let count = 0;
    while (count < this.queue.length && count < maxBatch && weight + this.queue[count]!.weight <= maxWeight) {
      weight += this.queue[count]!.weight;
      count += 1;
    }
    return Math.max(1, count);
  }

  private async drain(busy: boolean): Promise<void> {
    this.flushing = true;
    try {
      const linger = this.options.lingerMs ?? 0;
      if (busy && linger > 0) await new Promise((resolve) => setTimeout(resolve, linger));
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.batchSize());
        try {
          const outcomes = await this.options.flush(batch.map((entry) => entry.item));
          batch.forEach((entry, i) => entry.resolve(outcomes[i]!));
        } catch (err) {
          for (const entry of batch) entry.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
