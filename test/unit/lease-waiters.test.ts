import { JobEvents } from '../../src/jobs/job-events';
import { LeaseWaiters } from '../../src/jobs/lease-waiters';

// Fake timers: the shared poll's cadence and the waits' deadlines are the subject here.
beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

const scope = { types: ['noop'], tenant: undefined };

function waitersWithProbe() {
  const polls: number[] = [];
  const waiters = new LeaseWaiters({
    events: new JobEvents(),
    countAvailable: async () => {
      polls.push(Date.now());
      return { count: 0, nextDueInMs: null };
    },
    isLimited: () => false,
    pollIntervalMs: 1_000,
    maxPollIntervalMs: 8_000,
  });
  return { waiters, polls };
}

describe('LeaseWaiters: renewed long-polls', () => {
  it('a scope found empty stays known empty across the gap between the last wait ending and its renewal, and the poll keeps its due time', async () => {
    const { waiters, polls } = waitersWithProbe();
    const start = Date.now();
    waiters.markEmpty(scope, waiters.currentSequence);
    const first = waiters.wait({ ...scope, deadline: start + 700, since: waiters.currentSequence });
    expect(waiters.isKnownEmpty(scope)).toBe(true);
    await jest.advanceTimersByTimeAsync(700);
    await expect(first).resolves.toBe('timeout');
    // No waiter is left, but the poll is still armed: the renewal a round trip later needs no query of its own.
    expect(waiters.size).toBe(0);
    await jest.advanceTimersByTimeAsync(20);
    expect(waiters.isKnownEmpty(scope)).toBe(true);
    const renewed = waiters.wait({ ...scope, deadline: Date.now() + 1_000, since: waiters.currentSequence });
    // The shared poll runs when it was due (1 s after the first wait began), not a full interval after the renewal.
    await jest.advanceTimersByTimeAsync(300);
    expect(polls).toEqual([start + 1_000]);
    waiters.close();
    await expect(renewed).resolves.toBe('ended');
  });

  it('the knowledge ends once the armed poll came due with nobody waiting: a late lease call asks the database', async () => {
    const { waiters } = waitersWithProbe();
    waiters.markEmpty(scope, waiters.currentSequence);
    const first = waiters.wait({ ...scope, deadline: Date.now() + 200, since: waiters.currentSequence });
    await jest.advanceTimersByTimeAsync(200);
    await expect(first).resolves.toBe('timeout');
    await jest.advanceTimersByTimeAsync(1_000);
    expect(waiters.isKnownEmpty(scope)).toBe(false);
  });

  it('an event since the scope was found empty ends the knowledge at once, waiters or not', async () => {
    const events = new JobEvents();
    const waiters = new LeaseWaiters({ events, countAvailable: async () => ({ count: 0, nextDueInMs: null }), isLimited: () => false, pollIntervalMs: 1_000, maxPollIntervalMs: 8_000 });
    waiters.markEmpty(scope, waiters.currentSequence);
    const first = waiters.wait({ ...scope, deadline: Date.now() + 200, since: waiters.currentSequence });
    await jest.advanceTimersByTimeAsync(200);
    await expect(first).resolves.toBe('timeout');
    events.emit('enqueued', { jobId: 'j1', type: 'noop' });
    expect(waiters.isKnownEmpty(scope)).toBe(false);
  });
});
