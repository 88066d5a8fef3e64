/**
 * One background loop: runs `run` at start, then again `intervalMs` after each run ends (so runs
 * never overlap, and a slow one delays the next instead of piling up). A run may ask for a different
 * delay before the next (say, a scheduler that knows its next due schedule). Concurrent `runNow`
 * calls share the run in flight; `stop` waits for it, so the database can be closed afterwards.
 * Failures are reported through `onError` and the next run tries again. The timer never keeps a
 * process alive on its own.
 */
export interface PeriodicTaskOptions<T> {
  /** What the task is, for its error reports. */
  name: string;
  /** Delay between the end of one run and the start of the next; 0 or less: `start` does nothing (runNow still works). */
  intervalMs: number;
  run: () => Promise<T>;
  /** The delay before the next run after this result (default intervalMs). */
  nextDelayMs?: (result: T) => number;
  onError: (err: unknown, name: string) => void;
}

export class PeriodicTask<T> {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<T> | undefined;
  private running = false;

  constructor(private readonly options: PeriodicTaskOptions<T>) {}

  get started(): boolean {
    return this.running;
  }

  /** One run now (shared with a run already in flight). */
  runNow(): Promise<T> {
    this.inFlight ??= this.options.run().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  start(): void {
    if (this.running || this.options.intervalMs <= 0) return;
    this.running = true;
    this.loop();
  }

  /** Moves the next run earlier (never later): something happened that it should look at soon. */
  wakeWithin(ms: number): void {
    if (!this.running || !this.timer) return;
    clearTimeout(this.timer);
    this.schedule(Math.max(0, ms));
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight?.catch(() => undefined);
  }

  private loop(): void {
    this.runNow().then(
      (result) => this.schedule(this.options.nextDelayMs ? this.options.nextDelayMs(result) : this.options.intervalMs),
      (err: unknown) => {
        this.options.onError(err, this.options.name);
        this.schedule(this.options.intervalMs);
      },
    );
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.loop();
    }, delayMs);
    this.timer.unref();
  }
}
