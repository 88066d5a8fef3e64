import { ClaimReservations } from '../../src/jobs/claim-reservations';

const jobs = (...ids: string[]) => ids.map((jobId) => ({ jobId }));
const ids = (reserved: { taken: readonly { jobId: string }[] }) => reserved.taken.map((j) => j.jobId);

/** A read that answers with these candidates at once. */
function readOf(reservations: ClaimReservations, candidates: { jobId: string }[], max: number) {
  return reservations.read({ max, read: () => Promise.resolve(candidates) });
}

/** A read held open until `answer` is called: a read in flight while other calls claim. */
function readInFlight(reservations: ClaimReservations, max: number) {
  let answer!: (candidates: { jobId: string }[]) => void;
  const reservation = reservations.read({ max, read: () => new Promise<{ jobId: string }[]>((resolve) => (answer = resolve)) });
  return { reservation, answer: (candidates: { jobId: string }[]) => answer(candidates) };
}

describe('ClaimReservations', () => {
  it('gives each candidate to one call at a time, in order, up to the most asked for', async () => {
    const reservations = new ClaimReservations();
    const first = await readOf(reservations, jobs('a', 'b', 'c'), 2);
    const second = await readOf(reservations, jobs('a', 'b', 'c', 'd'), 5);
    expect(ids(first)).toEqual(['a', 'b']);
    expect(ids(second)).toEqual(['c', 'd']);
    expect(first.found).toBe(3);
    expect(reservations.size).toBe(4);
  });

  it('lets go of some at once and of the rest when settled; a candidate let go can be reserved again', async () => {
    const reservations = new ClaimReservations();
    const first = await readOf(reservations, jobs('a', 'b', 'c'), 3);
    first.letGo(['c', 'x']);
    expect(ids(await readOf(reservations, jobs('a', 'b', 'c'), 3))).toEqual(['c']);
    first.settle({ claimed: [] });
    expect(reservations.size).toBe(1);
    // Letting go twice, or of what another call holds, changes nothing.
    first.letGo(['a', 'c']);
    expect(ids(await readOf(reservations, jobs('a', 'b', 'c'), 3))).toEqual(['a', 'b']);
  });

  it('skips what another call claimed while the read was in flight, but not what it claimed before the read', async () => {
    const reservations = new ClaimReservations();
    const early = await readOf(reservations, jobs('a', 'b'), 2);
    const inFlight = readInFlight(reservations, 3);
    early.settle({ claimed: ['a'] });
    const after = readInFlight(reservations, 3);
    // The read that began before the claim of "a" may have seen it queued; "b" was let go, so it is free.
    inFlight.answer(jobs('a', 'b', 'c'));
    expect(ids(await inFlight.reservation)).toEqual(['b', 'c']);
    // A read that began after the claim answered sees "a" as leased; should it return "a" anyway (a
    // requeue since), it is not skipped.
    after.answer(jobs('a', 'd'));
    expect(ids(await after.reservation)).toEqual(['a', 'd']);
  });

  it('a read that fails reserves nothing and stays open no longer', async () => {
    const reservations = new ClaimReservations();
    await expect(reservations.read({ max: 2, read: () => Promise.reject(new Error('the database went away')) })).rejects.toThrow('the database went away');
    const first = await readOf(reservations, jobs('a'), 1);
    first.settle({ claimed: ['a'] });
    expect(reservations.size).toBe(0);
    // No read was in flight when "a" was claimed, so nothing remembers it.
    expect(ids(await readOf(reservations, jobs('a'), 1))).toEqual(['a']);
  });

  it('tells a call that found only held candidates when their holders let go, and what they found full', async () => {
    const reservations = new ClaimReservations();
    const holder = await readOf(reservations, jobs('a', 'b'), 2);
    const other = await readOf(reservations, jobs('c'), 1);
    const late = await readOf(reservations, jobs('a', 'b', 'c'), 3);
    expect(late.taken).toEqual([]);
    let findings: unknown;
    const released = late.othersReleased().then((f) => (findings = f));
    holder.letGo(['a']);
    await Promise.resolve();
    expect(findings).toBeUndefined();
    holder.settle({ claimed: ['b'], fullTypes: ['payout.execute'] });
    await Promise.resolve();
    expect(findings).toBeUndefined();
    other.settle({ claimed: [], fullTypes: ['payout.execute'], fullKeys: [['noop', 'customer-1']] });
    await released;
    expect(findings).toEqual({ fullTypes: ['payout.execute'], fullKeys: [['noop', 'customer-1']] });
    expect(reservations.size).toBe(0);
  });
});
