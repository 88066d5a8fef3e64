import { RateWindowRepository } from '../../src/storage/rate-window-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { clearCollections, uniqueId, useSecondConnection } from '../helpers/storage';

/** The contract of RateWindowRepository: sliding-window grants of rate-limited types, against the real test database. */
const db = useTestDatabase();
const other = useSecondConnection(db);
let windows: RateWindowRepository;
let clock: TestClock;
const limit = { jobs: 5, perSeconds: 3 };

beforeAll(() => {
  windows = new RateWindowRepository(db.connection);
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['job_rate_windows']);
});

const ids = (n: number) => Array.from({ length: n }, () => uniqueId('lease'));

describe('RateWindowRepository', () => {
  it('grants at most `jobs` in a sliding window and says when it has room again', async () => {
    expect((await windows.take({ type: 'noop', limit, leaseIds: ids(3), now: clock.now() })).granted).toHaveLength(3);
    clock.advance(1_000);
    const second = await windows.take({ type: 'noop', limit, leaseIds: ids(4), now: clock.now() });
    expect(second.granted).toHaveLength(2);
    // Full: the first three leave the window 3 s after they were granted.
    expect(second.fullUntil).toEqual(new Date(clock.now().getTime() - 1_000 + 3_000));
    clock.advance(1_999);
    expect((await windows.take({ type: 'noop', limit, leaseIds: ids(1), now: clock.now() })).granted).toEqual([]);
    clock.advance(1);
    expect((await windows.take({ type: 'noop', limit, leaseIds: ids(5), now: clock.now() })).granted).toHaveLength(3);
  });

  it('holds a high limit: 2,000 grants in one window, the rest refused until the window slides', async () => {
    const high = { jobs: 2_000, perSeconds: 60 };
    let granted = 0;
    for (let call = 0; call < 130; call += 1) granted += (await windows.take({ type: 'noop', limit: high, leaseIds: ids(16), now: clock.now() })).granted.length;
    expect(granted).toBe(2_000);
    clock.advance(60_000);
    expect((await windows.take({ type: 'noop', limit: high, leaseIds: ids(16), now: clock.now() })).granted).toHaveLength(16);
  });

  it('racing takers on two connections never grant more than the window holds', async () => {
    const repositories = [windows, new RateWindowRepository(other.connection)];
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => repositories[i % 2]!.take({ type: 'noop', limit, leaseIds: ids(2), now: clock.now() })));
    const granted = answers.reduce((n, a) => n + a.granted.length, 0);
    expect(granted).toBeLessThanOrEqual(5);
    expect(granted).toBeGreaterThan(0);
    expect(await windows.grantsAt({ type: 'noop', perSeconds: 3, now: clock.now() })).toHaveLength(granted);
  });

  it('a taker whose `now` is behind another taker\'s still counts the grants of its own window', async () => {
    const start = clock.now();
    expect((await windows.take({ type: 'noop', limit, leaseIds: ids(3), now: start })).granted).toHaveLength(3);
    // A taker 3.2 s later: the first three lie outside its window.
    expect((await windows.take({ type: 'noop', limit, leaseIds: ids(2), now: new Date(start.getTime() + 3_200) })).granted).toHaveLength(2);
    // A slow lease call whose `now` is 2.5 s after the start: its window holds all five.
    const late = await windows.take({ type: 'noop', limit, leaseIds: ids(3), now: new Date(start.getTime() + 2_500) });
    expect(late.granted).toEqual([]);
    expect(late.fullUntil).toEqual(new Date(start.getTime() + 3_000));
  });

  it('takes back grants given back (their claim lost), so the window has room again', async () => {
    const taken = await windows.take({ type: 'noop', limit, leaseIds: ids(5), now: clock.now() });
    await windows.giveBack({ type: 'noop', leaseIds: taken.granted.slice(0, 2) });
    expect((await windows.take({ type: 'noop', limit, leaseIds: ids(5), now: clock.now() })).granted).toHaveLength(2);
  });
});
