import { ClaimReservations } from '../../src/jobs/claim-reservations';

const jobs = (...ids: string[]) => ids.map((jobId) => ({ jobId }));
const ids = (reserved: { taken: readonly { jobId: string }[] }) => reserved.taken.map((j) => j.jobId);

describe('ClaimReservations', () => {
  it('gives each candidate to one call at a time, in order, up to the most asked for', () => {
    const reservations = new ClaimReservations();
    const first = reservations.reserve(reservations.startRead(), jobs('a', 'b', 'c'), 2);
    const second = reservations.reserve(reservations.startRead(), jobs('a', 'b', 'c', 'd'), 5);
    expect(ids(first)).toEqual(['a', 'b']);
    expect(ids(second)).toEqual(['c', 'd']);
    expect(reservations.size).toBe(4);
  });

  it('lets go of some at once and of the rest when settled; a candidate let go can be reserved again', () => {
    const reservations = new ClaimReservations();
    const first = reservations.reserve(reservations.startRead(), jobs('a', 'b', 'c'), 3);
    first.letGo(['c', 'x']);
    expect(ids(reservations.reserve(reservations.startRead(), jobs('a', 'b', 'c'), 3))).toEqual(['c']);
    first.settle([]);
    expect(reservations.size).toBe(1);
    // Letting go twice, or of what another call holds, changes nothing.
    first.letGo(['a', 'c']);
    expect(ids(reservations.reserve(reservations.startRead(), jobs('a', 'b', 'c'), 3))).toEqual(['a', 'b']);
  });

  it('skips what another call claimed while the read was in flight, but not what it claimed before the read', () => {
    const reservations = new ClaimReservations();
    const early = reservations.reserve(reservations.startRead(), jobs('a', 'b'), 2);
    const inFlight = reservations.startRead();
    early.settle(['a']);
    const after = reservations.startRead();
    // The read that began before the claim of "a" may have seen it queued; "b" was let go, so it is free.
    expect(ids(reservations.reserve(inFlight, jobs('a', 'b', 'c'), 3))).toEqual(['b', 'c']);
    // A read that began after the claim answered sees "a" as leased; should it return "a" anyway (a
    // requeue since), it is not skipped.
    expect(ids(reservations.reserve(after, jobs('a', 'd'), 3))).toEqual(['a', 'd']);
  });

  it('forgets claims once no read in flight could have missed them', () => {
    const reservations = new ClaimReservations();
    const first = reservations.reserve(reservations.startRead(), jobs('a'), 1);
    const abandoned = reservations.startRead();
    first.settle(['a']);
    reservations.abandon(abandoned);
    // The claim of "a" is forgotten: a stale ticket from before would not skip it any more.
    const laterTicket = { startedAt: -1 };
    expect(ids(reservations.reserve(laterTicket, jobs('a'), 1))).toEqual(['a']);
  });

  it('tells a call that found only held candidates when their holders let go', async () => {
    const reservations = new ClaimReservations();
    const holder = reservations.reserve(reservations.startRead(), jobs('a', 'b'), 2);
    const late = reservations.reserve(reservations.startRead(), jobs('a', 'b'), 2);
    expect(late.taken).toEqual([]);
    let settled = false;
    const released = late.othersReleased().then(() => (settled = true));
    holder.letGo(['a']);
    await Promise.resolve();
    expect(settled).toBe(false);
    holder.settle(['b']);
    await released;
    expect(settled).toBe(true);
    expect(reservations.size).toBe(0);
  });
});
