import type { JobDocument } from '../../src/storage/job-model';
import { SlotRepository, type HeldSlot } from '../../src/storage/slot-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { clearCollections, uniqueId, useSecondConnection } from '../helpers/storage';

/** The contract of SlotRepository: a limited type's concurrency slots, held by lease ids, against the real test database. */
const db = useTestDatabase();
const other = useSecondConnection(db);
let slots: SlotRepository;
let clock: TestClock;

const TYPE = 'payout.execute';
const HOLD_MS = 30_000;

beforeAll(() => {
  slots = new SlotRepository(db.connection);
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['jobs', 'job_slots']);
});

function leaseIds(n: number): string[] {
  return Array.from({ length: n }, () => uniqueId('lease'));
}

async function acquire(params: { limit: number; count: number; repository?: SlotRepository; type?: string }): Promise<HeldSlot[]> {
  const now = clock.now();
  return (params.repository ?? slots).acquire({ type: params.type ?? TYPE, limit: params.limit, leaseIds: leaseIds(params.count), now, expiresAt: new Date(now.getTime() + HOLD_MS) });
}

/** The lease id each slot document of the type is held by (null: released). */
async function holders(type = TYPE): Promise<Map<string, string | null>> {
  const docs = await db.connection.collection<{ _id: string; leaseId: string | null }>('job_slots').find({ type }).toArray();
  return new Map(docs.map((d) => [d._id, d.leaseId]));
}

/** A leased job holding `leaseId` (the job lease behind a slot). */
async function leasedJobHolding(leaseId: string): Promise<string> {
  const doc: JobDocument = { ...jobDocument({ status: 'leased', createdAt: clock.now(), type: TYPE }), leaseId };
  await db.connection.collection('jobs').insertOne(doc as unknown as Record<string, unknown>);
  return doc._id;
}

describe('acquire', () => {
  it('takes no more than `limit` slots, one per lease id, creating the slot documents on first use', async () => {
    const ids = leaseIds(3);
    const now = clock.now();
    const held = await slots.acquire({ type: TYPE, limit: 2, leaseIds: ids, now, expiresAt: new Date(now.getTime() + HOLD_MS) });

    expect(held).toHaveLength(2);
    expect(held.map((s) => s.slotId).sort()).toEqual([`${TYPE}#0`, `${TYPE}#1`]);
    expect(held.map((s) => s.leaseId)).toEqual(ids.slice(0, 2));
    expect(await holders()).toEqual(new Map(held.map((s) => [s.slotId, s.leaseId])));
    expect(await slots.countHeld({ type: TYPE, now })).toBe(2);
    // All held: nothing more until one is released or expires.
    expect(await acquire({ limit: 2, count: 1 })).toEqual([]);
  });

  it('returns nothing for no lease ids', async () => {
    expect(await acquire({ limit: 2, count: 0 })).toEqual([]);
    expect(await holders()).toEqual(new Map());
  });

  it('keeps the types apart', async () => {
    await acquire({ limit: 1, count: 1 });
    expect(await acquire({ limit: 1, count: 1, type: 'thumbnail.create' })).toHaveLength(1);
    expect(await acquire({ limit: 1, count: 1 })).toEqual([]);
  });

  it('reuses a released slot', async () => {
    const [first] = await acquire({ limit: 1, count: 1 });
    await slots.release([first!]);
    const [second] = await acquire({ limit: 1, count: 1 });
    expect(second?.slotId).toBe(first!.slotId);
    expect(second?.leaseId).not.toBe(first!.leaseId);
    expect(await holders()).toEqual(new Map([[first!.slotId, second!.leaseId]]));
  });

  it('frees an expired slot only when no leased job holds its lease id', async () => {
    const [slot] = await acquire({ limit: 1, count: 1 });
    const jobId = await leasedJobHolding(slot!.leaseId);
    clock.advance(HOLD_MS);

    // Expired, but its job is still leased (a heartbeat may be on the way): not free.
    expect(await acquire({ limit: 1, count: 1 })).toEqual([]);
    expect(await holders()).toEqual(new Map([[slot!.slotId, slot!.leaseId]]));

    // The job lease is gone (reclaimed or reported): the expiry alone now frees the slot.
    await db.connection.collection<{ _id: string }>('jobs').updateOne({ _id: jobId }, { $set: { status: 'queued', leaseId: null } });
    const [taken] = await acquire({ limit: 1, count: 1 });
    expect(taken?.slotId).toBe(slot!.slotId);
    expect(await holders()).toEqual(new Map([[slot!.slotId, taken!.leaseId]]));
  });

  it('frees an expired slot whose lease never became a job lease (a crash between slot and claim)', async () => {
    const [slot] = await acquire({ limit: 1, count: 1 });
    clock.advance(HOLD_MS - 1);
    expect(await acquire({ limit: 1, count: 1 })).toEqual([]);
    clock.advance(1);
    expect((await acquire({ limit: 1, count: 1 }))[0]?.slotId).toBe(slot!.slotId);
  });

  it('takes released slots before expired ones, and skips the expired ones still leased', async () => {
    const held = await acquire({ limit: 3, count: 3 });
    const [stillLeased, expiredFree, released] = held as [HeldSlot, HeldSlot, HeldSlot];
    await leasedJobHolding(stillLeased.leaseId);
    await slots.release([released]);
    clock.advance(HOLD_MS);

    const taken = await acquire({ limit: 3, count: 3 });
    expect(taken.map((s) => s.slotId)).toEqual([released.slotId, expiredFree.slotId]);
    expect((await holders()).get(stillLeased.slotId)).toBe(stillLeased.leaseId);
  });

  it('finds a free expired slot behind any number of expired slots whose jobs are still leased', async () => {
    // Three slots expire first while their jobs stay leased (a heartbeat that extended the job lease
    // but not yet its slot); the fourth expires later and its lease never became a job lease.
    const early = await acquire({ limit: 4, count: 3 });
    for (const slot of early) await leasedJobHolding(slot.leaseId);
    clock.advance(1_000);
    const [late] = await acquire({ limit: 4, count: 1 });
    clock.advance(HOLD_MS);

    const taken = await acquire({ limit: 4, count: 1 });
    expect(taken.map((s) => s.slotId)).toEqual([late!.slotId]);
    expect([...(await holders()).values()]).toEqual(expect.arrayContaining(early.map((s) => s.leaseId)));
  });

  it('honours a lowered limit (slots beyond it are never taken) and a raised one (the missing slots are created)', async () => {
    await slots.release(await acquire({ limit: 3, count: 3 }));

    const lowered = await acquire({ limit: 1, count: 3 });
    expect(lowered.map((s) => s.slotId)).toEqual([`${TYPE}#0`]);
    expect(await acquire({ limit: 1, count: 1 })).toEqual([]);
    // The existing free slots are taken first; the new ones are created once those are gone.
    const raised = [...(await acquire({ limit: 5, count: 4 })), ...(await acquire({ limit: 5, count: 4 }))];
    expect(raised.map((s) => s.slotId).sort()).toEqual([`${TYPE}#1`, `${TYPE}#2`, `${TYPE}#3`, `${TYPE}#4`]);
    expect(await acquire({ limit: 5, count: 1 })).toEqual([]);
  });

  it('never lets racing acquirers on two connections hold more than `limit` slots, nor share one', async () => {
    const limit = 3;
    const mine = new SlotRepository(db.connection);
    const theirs = new SlotRepository(other.connection);
    // Several waves of concurrent acquirers (first use included: the slot documents are created by the race).
    const all: HeldSlot[] = [];
    for (let wave = 0; wave < 3; wave += 1) {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => acquire({ limit, count: 2, repository: i % 2 === 0 ? mine : theirs })));
      all.push(...results.flat());
      expect(all.length).toBeLessThanOrEqual(limit);
      expect(new Set(all.map((s) => s.slotId)).size).toBe(all.length);
    }
    // By now every slot was offered to someone: all are held, each by the one acquirer told it won.
    expect(all).toHaveLength(limit);
    expect(await holders()).toEqual(new Map(all.map((s) => [s.slotId, s.leaseId])));
  });

  it('under churn (acquire, hold, release) on two connections, never more than `limit` at once', async () => {
    const limit = 2;
    const repositories = [new SlotRepository(db.connection), new SlotRepository(other.connection)];
    let holding = 0;
    let most = 0;
    let acquired = 0;
    await Promise.all(
      Array.from({ length: 6 }, async (_, worker) => {
        const repository = repositories[worker % 2]!;
        for (let round = 0; round < 6; round += 1) {
          const held = await acquire({ limit, count: 1, repository });
          if (held.length === 0) continue;
          // Counted while the database says it is held: from after the take to before the release.
          holding += held.length;
          acquired += held.length;
          most = Math.max(most, holding);
          await new Promise<void>((resolve) => setImmediate(resolve));
          holding -= held.length;
          await repository.release(held);
        }
      }),
    );
    expect(most).toBeLessThanOrEqual(limit);
    expect(acquired).toBeGreaterThanOrEqual(limit);
    expect(await slots.countHeld({ type: TYPE, now: clock.now() })).toBe(0);
  });
});

describe('extend', () => {
  it('moves the expiry of a slot its holder holds; refuses another lease id', async () => {
    const [slot] = await acquire({ limit: 1, count: 1 });
    const later = new Date(clock.now().getTime() + 2 * HOLD_MS);
    expect(await slots.extend({ slot: { slotId: slot!.slotId, leaseId: 'lease_other' }, expiresAt: later })).toBe(false);
    expect(await slots.extend({ slot: slot!, expiresAt: later })).toBe(true);

    clock.advance(HOLD_MS);
    // Past the first expiry, the extended slot is still held.
    expect(await slots.countHeld({ type: TYPE, now: clock.now() })).toBe(1);
    expect(await acquire({ limit: 1, count: 1 })).toEqual([]);
  });

  it('refuses a slot released or taken over since', async () => {
    const [slot] = await acquire({ limit: 1, count: 1 });
    await slots.release([slot!]);
    expect(await slots.extend({ slot: slot!, expiresAt: new Date(clock.now().getTime() + HOLD_MS) })).toBe(false);
    expect(await slots.countHeld({ type: TYPE, now: clock.now() })).toBe(0);
  });
});

describe('release', () => {
  it('frees the slots the given leases hold, and leaves a slot taken over by another lease alone', async () => {
    const [first] = await acquire({ limit: 1, count: 1 });
    clock.advance(HOLD_MS);
    // The first holder vanished; its slot expired and was taken over.
    const [second] = await acquire({ limit: 1, count: 1 });
    await slots.release([first!]);
    expect(await holders()).toEqual(new Map([[second!.slotId, second!.leaseId]]));

    await slots.release([second!]);
    expect(await holders()).toEqual(new Map([[second!.slotId, null]]));
    expect(await slots.countHeld({ type: TYPE, now: clock.now() })).toBe(0);
    await slots.release([]);
  });
});

describe('countHeld / countFree', () => {
  it('countHeld counts the slots whose expiry is after now', async () => {
    await acquire({ limit: 3, count: 2 });
    const now = clock.now();
    expect(await slots.countHeld({ type: TYPE, now })).toBe(2);
    expect(await slots.countHeld({ type: TYPE, now: new Date(now.getTime() + HOLD_MS - 1) })).toBe(2);
    expect(await slots.countHeld({ type: TYPE, now: new Date(now.getTime() + HOLD_MS) })).toBe(0);
    expect(await slots.countHeld({ type: 'thumbnail.create', now })).toBe(0);
  });

  it('countFree says how many slots a lease call could take, at most `max`', async () => {
    const now = clock.now();
    // No slot documents yet: every slot is free (the long-poll probe may over-count, never under-count).
    expect(await slots.countFree({ type: TYPE, limit: 3, now, max: 2 })).toBe(2);
    const held = await acquire({ limit: 3, count: 2 });
    expect(await slots.countFree({ type: TYPE, limit: 3, now, max: 5 })).toBe(1);
    await slots.release([held[0]!]);
    expect(await slots.countFree({ type: TYPE, limit: 3, now, max: 5 })).toBe(2);
    expect(await slots.countFree({ type: TYPE, limit: 3, now, max: 1 })).toBe(1);
    // A lowered limit counts only the slots below it (#0 is released, #1 held).
    expect(await slots.countFree({ type: TYPE, limit: 2, now, max: 5 })).toBe(1);
    await acquire({ limit: 3, count: 2 });
    expect(await slots.countFree({ type: TYPE, limit: 3, now, max: 5 })).toBe(0);
    // A raised limit: the slot not created yet is free.
    const raised = await slots.countFree({ type: TYPE, limit: 4, now, max: 5 });
    expect(raised).toBeGreaterThanOrEqual(1);
    expect(raised).toBeLessThanOrEqual(5);
  });
});
