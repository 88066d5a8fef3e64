/**
 * A point where one step of a test stops until released: `arrive()` (awaited by the step) marks the
 * point reached and waits; the test awaits `reached`, arranges what it needs, then calls `release()`.
 */
export interface Hold {
  readonly reached: Promise<void>;
  release(): void;
  arrive(): Promise<void>;
}

export function hold(): Hold {
  let markReached!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (markReached = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    reached,
    release,
    arrive: async () => {
      markReached();
      await released;
    },
  };
}
