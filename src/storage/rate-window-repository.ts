import type { Connection } from 'mongoose';

import type { RateLimit } from '../model/job-type';
import { isDuplicateKeyError } from './errors';
import { rateWindowModel, type RateWindowDocument, type RateWindowModel } from './rate-window-model';

const MAX_ROUNDS = 8;
/** How many windows of grants a window document keeps (see take). */
const KEPT_WINDOWS = 2;

export interface RateGrant {
  /** The lease ids granted, a prefix of those asked for. */
  granted: string[];
  /** When the window has room again, if it is full now (null: it has room, or contention gave up). */
  fullUntil: Date | null;
}

/**
 * The sliding-window counters of rate-limited types. A grant at `now` is given only while fewer
 * than `jobs` grants lie in (now − perSeconds, ∞): then every window of `perSeconds` holds at most
 * `jobs` grants, whatever order the instances' writes land in.
 */
export class RateWindowRepository {
  private readonly windows: RateWindowModel;

  constructor(connection: Connection) {
    this.windows = rateWindowModel(connection);
  }

  /**
   * Takes up to `leaseIds.length` grants of the type's window at `now`. Conditional on the revision
   * read; a lost race reads again (a few rounds, then it gives up: granting nothing is always safe).
   */
  async take(params: { type: string; limit: RateLimit; leaseIds: readonly string[]; now: Date }): Promise<RateGrant> {
    const { type, limit, leaseIds, now } = params;
    if (leaseIds.length === 0) return { granted: [], fullUntil: null };
    const windowMs = limit.perSeconds * 1000;
    const at = (g: { at: Date }) => g.at.getTime();
    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      const doc = await this.windows.findById(type).lean<RateWindowDocument>();
      // Grants are kept for two windows, not one: a taker whose `now` is behind the one that
      // dropped them (a slow lease call, another instance's clock) still counts every grant of its window.
      const kept = (doc?.grants ?? []).filter((g) => at(g) > now.getTime() - KEPT_WINDOWS * windowMs);
      const inWindow = kept.filter((g) => at(g) > now.getTime() - windowMs);
      const room = limit.jobs - inWindow.length;
      if (room <= 0) return { granted: [], fullUntil: fullUntil(inWindow, limit) };
      const granted = leaseIds.slice(0, room);
      const added = granted.map((leaseId) => ({ at: now, leaseId }));
      const grants = [...kept, ...added];
      if (doc) {
        const result = await this.windows.updateOne({ _id: type, rev: doc.rev }, { $set: { grants }, $inc: { rev: 1 } });
        if (result.matchedCount === 0) continue;
      } else {
        try {
          await this.windows.collection.insertOne({ _id: type, rev: 1, grants } as unknown as Record<string, unknown>);
        } catch (err) {
          if (isDuplicateKeyError(err)) continue;
          throw err;
        }
      }
      const windowNow = [...inWindow, ...added];
      return { granted, fullUntil: windowNow.length >= limit.jobs ? fullUntil(windowNow, limit) : null };
    }
    return { granted: [], fullUntil: null };
  }

  /** Gives back grants whose lease was never claimed (a race lost on the job): they did not run. */
  async giveBack(params: { type: string; leaseIds: readonly string[] }): Promise<void> {
    if (params.leaseIds.length === 0) return;
    // The revision moves too, so a writer that read before this does not put them back.
    await this.windows.updateOne({ _id: params.type }, { $pull: { grants: { leaseId: { $in: [...params.leaseIds] } } }, $inc: { rev: 1 } });
  }

  /** The grants of the type's current window at `now` (for tests and the probe). */
  async grantsAt(params: { type: string; perSeconds: number; now: Date }): Promise<Date[]> {
    const doc = await this.windows.findById(params.type).lean<RateWindowDocument>();
    return (doc?.grants ?? []).map((g) => g.at).filter((at) => at.getTime() > params.now.getTime() - params.perSeconds * 1000);
  }
}

/** With `grants` (at least `jobs`) in the window: when the oldest that matters leaves it. */
function fullUntil(grants: readonly { at: Date }[], limit: RateLimit): Date {
  const times = grants.map((g) => g.at.getTime()).sort((a, b) => a - b);
  return new Date(times[times.length - limit.jobs]! + limit.perSeconds * 1000);
}
