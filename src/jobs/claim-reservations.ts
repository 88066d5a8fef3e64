/**
 * The candidates this instance's lease calls are claiming right now. Concurrent lease calls read the
 * same best candidates (the read happens before anyone's claim lands); without this, all but one of
 * them would send claims that lose, then a read to see which they won, then read and claim again.
 * A call reserves the candidates it read and no other call here holds, and skips those another call
 * here claimed while its read was in flight (the read may predate that claim), so calls on one
 * instance never race each other. Races with other instances stay, and the claim's conditional
 * update still settles them: in-process bookkeeping only, correctness never depends on it.
 */
export class ClaimReservations {
  private readonly held = new Map<string, { released: Promise<void>; release: () => void }>();
  /** Jobs claimed here while some read was in flight, with the sequence number of their claim. */
  private readonly claimedAt = new Map<string, number>();
  private sequence = 0;
  private readonly openReads = new Set<ReadTicket>();

  /** Candidates held now (a read looks this much further, since it skips them). */
  get size(): number {
    return this.held.size;
  }

  /** Call before reading candidates; hand the ticket to `reserve` (or `abandon` it if the read fails). */
  startRead(): ReadTicket {
    const ticket = { startedAt: this.sequence };
    this.openReads.add(ticket);
    return ticket;
  }

  abandon(ticket: ReadTicket): void {
    this.openReads.delete(ticket);
    this.prune();
  }

  /**
   * Reserves, in order, up to `max` of the candidates a read returned that no other call holds and
   * that no call here claimed after the read began. Let go of what will not be claimed as soon as
   * that is known, and settle the rest once the claim has answered.
   */
  reserve<T extends { jobId: string }>(ticket: ReadTicket, candidates: readonly T[], max: number): Reservation<T> {
    this.openReads.delete(ticket);
    const taken: T[] = [];
    const others: Promise<void>[] = [];
    for (const candidate of candidates) {
      const holder = this.held.get(candidate.jobId);
      if (holder) {
        others.push(holder.released);
        continue;
      }
      if ((this.claimedAt.get(candidate.jobId) ?? Number.NEGATIVE_INFINITY) > ticket.startedAt) continue;
      if (taken.length === max) continue;
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      this.held.set(candidate.jobId, { released, release });
      taken.push(candidate);
    }
    this.prune();
    const mine = new Set(taken.map((c) => c.jobId));
    const letGo = (jobIds: Iterable<string>): void => {
      for (const jobId of jobIds) {
        if (!mine.delete(jobId)) continue;
        this.held.get(jobId)?.release();
        this.held.delete(jobId);
      }
    };
    return {
      taken,
      othersReleased: () => Promise.all(others).then(() => undefined),
      letGo,
      settle: (claimed) => {
        if (this.openReads.size > 0) {
          this.sequence += 1;
          for (const jobId of claimed) if (mine.has(jobId)) this.claimedAt.set(jobId, this.sequence);
        }
        letGo([...mine]);
      },
    };
  }

  /** Claims older than every read in flight can no longer make a read stale. */
  private prune(): void {
    if (this.claimedAt.size === 0) return;
    if (this.openReads.size === 0) {
      this.claimedAt.clear();
      return;
    }
    const oldest = Math.min(...[...this.openReads].map((t) => t.startedAt));
    for (const [jobId, at] of this.claimedAt) if (at <= oldest) this.claimedAt.delete(jobId);
  }
}

/** A read of candidates in flight: which claims made here it may not have seen. */
export interface ReadTicket {
  readonly startedAt: number;
}

export interface Reservation<T> {
  /** The candidates this call may claim: no other call of this instance holds them. */
  readonly taken: readonly T[];
  /** Settles once the candidates other calls held are released (claimed by them, or let go). */
  othersReleased(): Promise<void>;
  /** Releases these reserved candidates: the call will not claim them. */
  letGo(jobIds: Iterable<string>): void;
  /** The claim answered: releases everything still held, remembering the jobs it won (`claimed`). */
  settle(claimed: Iterable<string>): void;
}
