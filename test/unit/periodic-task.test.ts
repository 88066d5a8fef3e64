import { PeriodicTask } from '../../src/periodic-task';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

function counter(options: { fail?: boolean; delays?: number[] } = {}) {
  const calls: number[] = [];
  const errors: unknown[] = [];
  const task = new PeriodicTask<number>({
    name: 'test task',
    intervalMs: 1_000,
    run: async () => {
      calls.push(Date.now());
      if (options.fail) throw new Error('boom');
      return calls.length;
    },
    ...(options.delays ? { nextDelayMs: (n: number) => options.delays![n - 1] ?? 1_000 } : {}),
    onError: (err) => errors.push(err),
  });
  return { task, calls, errors };
}

async function advance(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('PeriodicTask', () => {
  it('runs at start and then intervalMs after each run, until stopped', async () => {
    const { task, calls } = counter();
    task.start();
    await advance(0);
    expect(calls).toHaveLength(1);
    await advance(3_000);
    expect(calls).toHaveLength(4);
    await task.stop();
    await advance(5_000);
    expect(calls).toHaveLength(4);
  });

  it('takes the delay a run asks for, and wakes earlier on request', async () => {
    const { task, calls } = counter({ delays: [10_000, 10_000] });
    task.start();
    await advance(0);
    await advance(9_000);
    expect(calls).toHaveLength(1);
    task.wakeWithin(100);
    await advance(100);
    expect(calls).toHaveLength(2);
  });

  it('reports a failing run and tries again after the interval', async () => {
    const { task, calls, errors } = counter({ fail: true });
    task.start();
    await advance(0);
    await advance(2_000);
    expect(calls).toHaveLength(3);
    expect(errors).toHaveLength(3);
    await task.stop();
  });

  it('shares a run in flight between runNow callers, and does nothing on start with intervalMs 0', async () => {
    let runs = 0;
    let release!: () => void;
    const task = new PeriodicTask<void>({
      name: 'shared',
      intervalMs: 0,
      run: () => {
        runs += 1;
        return new Promise<void>((resolve) => (release = resolve));
      },
      onError: () => undefined,
    });
    task.start();
    expect(task.started).toBe(false);
    const [a, b] = [task.runNow(), task.runNow()];
    release();
    await Promise.all([a, b]);
    expect(runs).toBe(1);
  });
});
