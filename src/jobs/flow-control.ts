import type { HeldKeySlot, KeySlotRepository } from '../storage/key-slot-repository';
import type { ClaimRequest } from '../storage/job-repository';
import type { RateWindowRepository } from '../storage/rate-window-repository';
import type { JobRegistry } from './registry';

/**
 * Rate grants a lease call holds but has not used yet (a claim lost its race), by type: the next
 * round of the same call uses them before taking more, and the call gives back what is left at its
 * end (FlowControl.giveBack), so a lost race costs no write of the window.
 */
export type SpareGrants = Map<string, string[]>;

/** What the gate let through, and what it learned for the next round of the same lease call. */
export interface GatedClaims {
  requests: ClaimRequest[];
  /** Key slots taken for the requests (released again for those whose claim loses). */
  keySlots: HeldKeySlot[];
  /** Rate grants taken, by type (given back for claims that lose). */
  grants: Map<string, string[]>;
  /** (type, key) pools at their keyConcurrencyLimit: leave their jobs out of the next candidates. */
  fullKeys: [type: string, key: string][];
  /** Types whose rate window is full: leave them out. */
  fullTypes: string[];
}

/**
 * Flow control on the lease path, after the type-wide slots: paused types, per-key concurrency
 * (keyConcurrencyLimit with a job's concurrencyKey) and rate limits. Each is enforced in the
 * database, so every API instance shares them; what this process learns (a type's window is full
 * until T) only spares it queries, never grants more.
 *
 * Costs: nothing for a type with none of these. A keyed type costs one query for the key slots of
 * all the call's keys, one more when some slot expired, and one bulk write; a rate-limited type one
 * read and one conditional write of its window per call (none while the window is known full;
 * the calls of one process take turns, so they do not race each other's writes).
 */
export class FlowControl {
  /** Types whose rate window this process found full, until when (clock ms). */
  private readonly rateFullUntil = new Map<string, number>();
  private readonly rateTurns = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: {
      registry: JobRegistry;
      keySlots: KeySlotRepository;
      rateWindows: RateWindowRepository;
    },
  ) {
    // A changed limit (or a resume) makes what was learned about a type stale.
    deps.registry.onSettingsChanged((types) => {
      for (const type of types) this.rateFullUntil.delete(type);
    });
  }

  /** Types no lease may take now: paused ones, and those whose rate window is known to be full. */
  heldBack(now: Date): Set<string> {
    const held = new Set<string>();
    for (const type of this.deps.registry.typeNames()) if (this.isHeldBack(type, now)) held.add(type);
    return held;
  }

  isHeldBack(type: string, now: Date): boolean {
    if (this.deps.registry.isPaused(type)) return true;
    const until = this.rateFullUntil.get(type);
    if (until === undefined) return false;
    if (until > now.getTime() && this.deps.registry.policyOf(type).rateLimit !== null) return true;
    this.rateFullUntil.delete(type);
    return false;
  }

  /** In how many ms the first of these types' full rate windows has room again (null: none is full). */
  reopensInMs(types: readonly string[], now: Date): number | null {
    let soonest: number | null = null;
    for (const type of types) {
      if (this.deps.registry.isPaused(type)) continue;
      const until = this.rateFullUntil.get(type);
      if (until !== undefined && until > now.getTime()) soonest = Math.min(soonest ?? Number.POSITIVE_INFINITY, until - now.getTime());
    }
    return soonest;
  }

  /** Whether a lease of the type needs a (type-wide or per-key) slot, so a finished job frees something. */
  isLimited(type: string): boolean {
    if (!this.deps.registry.has(type)) return false;
    const policy = this.deps.registry.policyOf(type);
    return policy.concurrencyLimit !== null || policy.keyConcurrencyLimit !== null;
  }

  /**
   * Lets through the requests (best first) that get a key slot where their type has a
   * keyConcurrencyLimit and a rate grant where it has a rateLimit. The slots and grants are taken
   * under each request's lease id, so the claim's outcome says which to give back.
   */
  async gate(params: { requests: readonly ClaimRequest[]; now: Date; spare: SpareGrants }): Promise<GatedClaims> {
    const { now, spare } = params;
    const gated: GatedClaims = { requests: [], keySlots: [], grants: new Map(), fullKeys: [], fullTypes: [] };
    let requests = [...params.requests];

    const keyed = requests.filter((r) => this.keyLimitOf(r) !== null);
    if (keyed.length > 0) {
      const held = await this.deps.keySlots.acquire({
        requests: keyed.map((r) => ({ type: r.candidate.type, key: r.candidate.concurrencyKey!, limit: this.keyLimitOf(r)!, leaseId: r.leaseId, expiresAt: r.leaseExpiresAt })),
        now,
      });
      const full = new Map<string, [string, string]>();
      requests = requests.flatMap((r) => {
        if (this.keyLimitOf(r) === null) return [r];
        const slot = held.get(r.leaseId);
        if (slot) {
          gated.keySlots.push(slot);
          return [{ ...r, keySlotId: slot.slotId }];
        }
        full.set(JSON.stringify([r.candidate.type, r.candidate.concurrencyKey]), [r.candidate.type, r.candidate.concurrencyKey!]);
        return [];
      });
      gated.fullKeys = [...full.values()];
    }

    // A request that holds no slot under its lease id may take a spare grant's lease id instead.
    requests = requests.map((r) => {
      const left = spare.get(r.candidate.type);
      if (!left || left.length === 0 || r.slotId !== null || r.keySlotId) return r;
      const leaseId = left.shift()!;
      gated.grants.set(r.candidate.type, [...(gated.grants.get(r.candidate.type) ?? []), leaseId]);
      return { ...r, leaseId };
    });
    const rated = new Map<string, ClaimRequest[]>();
    for (const r of requests) {
      if (this.deps.registry.policyOf(r.candidate.type).rateLimit === null) continue;
      if (gated.grants.get(r.candidate.type)?.includes(r.leaseId)) continue;
      rated.set(r.candidate.type, [...(rated.get(r.candidate.type) ?? []), r]);
    }
    const refused = new Set<string>();
    for (const [type, list] of rated) {
      const grant = await this.serially(type, () => this.deps.rateWindows.take({ type, limit: this.deps.registry.policyOf(type).rateLimit!, leaseIds: list.map((r) => r.leaseId), now }));
      gated.grants.set(type, [...(gated.grants.get(type) ?? []), ...grant.granted]);
      if (grant.fullUntil) {
        this.rateFullUntil.set(type, grant.fullUntil.getTime());
        gated.fullTypes.push(type);
      }
      const granted = new Set(grant.granted);
      for (const r of list) if (!granted.has(r.leaseId)) refused.add(r.leaseId);
    }
    gated.requests = requests.filter((r) => !refused.has(r.leaseId));
    // Key slots of requests the rate limit refused are not needed.
    const kept = new Set(gated.requests.map((r) => r.leaseId));
    const unneeded = gated.keySlots.filter((s) => !kept.has(s.leaseId));
    if (unneeded.length > 0) {
      await this.deps.keySlots.release(unneeded);
      gated.keySlots = gated.keySlots.filter((s) => kept.has(s.leaseId));
    }
    return gated;
  }

  /**
   * Frees the key slots of requests whose claim lost (another worker took the job); their rate
   * grants become the call's spare ones.
   */
  async releaseUnclaimed(params: { gated: GatedClaims; claimedLeases: ReadonlySet<string>; spare: SpareGrants }): Promise<void> {
    const { gated, claimedLeases, spare } = params;
    await this.deps.keySlots.release(gated.keySlots.filter((s) => !claimedLeases.has(s.leaseId)));
    for (const [type, leaseIds] of gated.grants) {
      const unused = leaseIds.filter((id) => !claimedLeases.has(id));
      if (unused.length > 0) spare.set(type, [...(spare.get(type) ?? []), ...unused]);
    }
  }

  /** At the end of a lease call: the rate grants it did not use go back to their windows. */
  async giveBack(spare: SpareGrants): Promise<void> {
    for (const [type, leaseIds] of spare) {
      if (leaseIds.length === 0) continue;
      await this.deps.rateWindows.giveBack({ type, leaseIds });
      // The window has room again.
      this.rateFullUntil.delete(type);
    }
  }

  /**
   * One rate-window write at a time per type in this process: concurrent lease calls of one API
   * instance would otherwise race each other's conditional writes and re-read (only other instances'
   * writes are left to race, and the database settles those).
   */
  private serially<T>(type: string, task: () => Promise<T>): Promise<T> {
    const previous = this.rateTurns.get(type) ?? Promise.resolve();
    const turn = previous.then(task, task);
    const settled = turn.then(
      () => undefined,
      () => undefined,
    );
    this.rateTurns.set(type, settled);
    void settled.then(() => {
      if (this.rateTurns.get(type) === settled) this.rateTurns.delete(type);
    });
    return turn;
  }

  private keyLimitOf(request: ClaimRequest): number | null {
    if (request.candidate.concurrencyKey === null) return null;
    return this.deps.registry.policyOf(request.candidate.type).keyConcurrencyLimit;
  }
}
