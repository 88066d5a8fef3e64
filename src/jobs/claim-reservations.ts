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
  /** Each held candidate, with the outcome of the reservation that holds it, once settled. */
  private readonly held = new Map<string, Promise<ClaimFindings>>();
  /** Jobs claimed here while some read was in flight, with the sequence number of their claim. */
  private readonly claimedAt = new Map<string, number>();
  private sequence = 0;
  /** The reads in flight, by the sequence number each started at. */
  private readonly openReads = new Set<{ startedAt: number }>();

  /** Candidates held now (a read looks this much further, since it skips them). */
  get size(): number {
    return this.held.size;
  }

  /**
   * Runs `read` and reserves, in order, up to `max` of the candidates it returned that no other call
   * holds and that no call here claimed after the read began. Let go of what will not be claimed as
   * soon as that is known, and settle the reservation once the claim has answered.
   */
  async read<T extends { jobId: string }>(params: { max: number; read: () => Promise<readonly T[]> }): Promise<Reservation<T>> {
    const ticket = { startedAt: this.sequence };
    this.openReads.add(ticket);
    let candidates: readonly T[];
    try {
      candidates = await params.read();
    } finally {
      this.openReads.delete(ticket);
    }
    let settled!: (findings: ClaimFindings) => void;
    const whenSettled = new Promise<ClaimFindings>((resolve) => (settled = resolve));
    const taken: T[] = [];
    const others = new Set<Promise<ClaimFindings>>();
    for (const candidate of candidates) {
      if (taken.length === params.max) break;
      const holder = this.held.get(candidate.jobId);
      if (holder) others.add(holder);
      else if ((this.claimedAt.get(candidate.jobId) ?? Number.NEGATIVE_INFINITY) <= ticket.startedAt) {
        this.held.set(candidate.jobId, whenSettled);
        taken.push(candidate);
      }
    }
    this.prune();
    const mine = new Set(taken.map((c) => c.jobId));
    const letGo = (jobIds: Iterable<string>): void => {
      for (const jobId of jobIds) if (mine.delete(jobId)) this.held.delete(jobId);
    };
    return {
      found: candidates.length,
      taken,
      othersReleased: () =>
        Promise.all(others).then((all) => ({ fullTypes: [...new Set(all.flatMap((f) => f.fullTypes))], fullKeys: all.flatMap((f) => f.fullKeys) })),
      letGo,
      settle: ({ claimed, fullTypes = [], fullKeys = [] }) => {
        if (this.openReads.size > 0) {
          this.sequence += 1;
          for (const jobId of claimed) if (mine.has(jobId)) this.claimedAt.set(jobId, this.sequence);
        }
        letGo([...mine]);
        settled({ fullTypes, fullKeys });
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

export interface Reservation<T> {
  /** How many candidates the read returned (reserved or not). */
  readonly found: number;
  /** The candidates this call may claim: no other call of this instance holds them. */
  readonly taken: readonly T[];
  /**
   * Settles once the reservations holding the candidates this one skipped are settled, with what
   * their calls found full (a call that found only held candidates would find the same).
   */
  othersReleased(): Promise<ClaimFindings>;
  /** Releases these reserved candidates: the call will not claim them. */
  letGo(jobIds: Iterable<string>): void;
  /**
   * The claim answered: releases everything still held, remembering the jobs it won (`claimed`);
   * the types and keys it found full are told to the calls that waited on it.
   */
  settle(outcome: { claimed: Iterable<string> } & Partial<ClaimFindings>): void;
}

/** What a lease call's claim found full: types (at their limit or rate) and keys at their limit. */
export interface ClaimFindings {
  readonly fullTypes: readonly string[];
  readonly fullKeys: readonly (readonly [type: string, key: string])[];
}
