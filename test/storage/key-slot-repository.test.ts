import { KeySlotRepository, keySlotId, type KeySlotRequest } from '../../src/storage/key-slot-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { clearCollections, uniqueId, useSecondConnection } from '../helpers/storage';

/** The contract of KeySlotRepository: per-(type, concurrencyKey) slots, held by lease ids, against the real test database. */
const db = useTestDatabase();
const other = useSecondConnection(db);
let slots: KeySlotRepository;
let clock: TestClock;
const HOLD_MS = 30_000;

beforeAll(() => {
  slots = new KeySlotRepository(db.connection);
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['jobs', 'job_key_slots']);
});

function requests(key: string, count: number, limit = 1): KeySlotRequest[] {
  return Array.from({ length: count }, () => ({ type: 'noop', key, limit, leaseId: uniqueId('lease'), expiresAt: new Date(clock.now().getTime() + HOLD_MS) }));
}

describe('KeySlotRepository', () => {
  it('gives each pool at most its limit, in request order, for many keys in one call', async () => {
    const asked = [...requests('a', 3, 2), ...requests('b', 1, 2), ...requests('c', 2, 1)];
    const held = await slots.acquire({ requests: asked, now: clock.now() });
    expect([...held.keys()].sort()).toEqual([asked[0]!, asked[1]!, asked[3]!, asked[4]!].map((r) => r.leaseId).sort());
    expect(held.get(asked[0]!.leaseId)!.slotId).toBe(keySlotId('noop', 'a', 0));
    // Full pools give nothing more; a released slot can be taken again.
    expect((await slots.acquire({ requests: requests('a', 1, 2), now: clock.now() })).size).toBe(0);
    await slots.release([held.get(asked[0]!.leaseId)!]);
    expect((await slots.acquire({ requests: requests('a', 1, 2), now: clock.now() })).size).toBe(1);
    expect(await slots.countHeld({ type: 'noop', key: 'a', now: clock.now() })).toBe(2);
  });

  it('racing callers on two connections never hold more than the limit of one pool', async () => {
    const repositories = [slots, new KeySlotRepository(other.connection)];
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => repositories[i % 2]!.acquire({ requests: requests('hot', 2, 3), now: clock.now() })));
    expect(answers.reduce((n, held) => n + held.size, 0)).toBe(3);
    expect(await db.connection.collection('job_key_slots').countDocuments()).toBe(3);
  });

  it('an expired slot is free only once no leased job holds its lease id', async () => {
    const [first] = requests('k', 1);
    await slots.acquire({ requests: [first!], now: clock.now() });
    await db.connection.collection('jobs').insertOne({ ...jobDocument({ status: 'leased', createdAt: clock.now() }), leaseId: first!.leaseId } as never);
    clock.advance(HOLD_MS);
    expect((await slots.acquire({ requests: requests('k', 1), now: clock.now() })).size).toBe(0);
    await db.connection.collection('jobs').updateMany({}, { $set: { status: 'queued', leaseId: null } });
    const next = requests('k', 1);
    expect([...(await slots.acquire({ requests: next, now: clock.now() })).keys()]).toEqual([next[0]!.leaseId]);
  });

  it('extends and releases only the holder; releaseByLease frees by lease id; countFree sees held slots', async () => {
    const asked = requests('x', 1, 2);
    const held = [...(await slots.acquire({ requests: asked, now: clock.now() })).values()];
    expect(await slots.extend({ slot: { ...held[0]!, leaseId: 'lease_other' }, expiresAt: clock.now() })).toBe(false);
    expect(await slots.extend({ slot: held[0]!, expiresAt: new Date(clock.now().getTime() + 2 * HOLD_MS) })).toBe(true);
    await slots.release([{ ...held[0]!, leaseId: 'lease_other' }]);
    expect((await slots.countFree({ pools: [{ type: 'noop', key: 'x', limit: 2 }], now: clock.now() })).get(JSON.stringify(['noop', 'x']))).toBe(1);
    await slots.releaseByLease([asked[0]!.leaseId]);
    expect(await db.connection.collection('job_key_slots').countDocuments()).toBe(0);
  });
});
