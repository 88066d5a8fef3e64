import type { Connection } from 'mongoose';

import type { RateLimit } from '../model/job-type';
import { isDuplicateKeyError } from './errors';
import { rateWindowModel, type RateWindowDocument, type RateWindowModel } from './rate-window-model';

const MAX_ROUNDS = 8;

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
    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      const doc = await this.windows.findById(type).lean<RateWindowDocument>();
      const inWindow = (doc?.grants ?? []).filter((g) => g.at.getTime() > now.getTime() - windowMs).sort((a, b) => a.at.getTime() - b.at.getTime());
      const room = limit.jobs - inWindow.length;
      if (room <= 0) return { granted: [], fullUntil: fullUntil(inWindow, limit) };
      const granted = leaseIds.slice(0, room);
      const grants = [...inWindow, ...granted.map((leaseId) => ({ at: now, leaseId }))];
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
      return { granted, fullUntil: grants.length >= limit.jobs ? fullUntil(grants, limit) : null };
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

/** With `grants` (oldest first, at least `jobs`) in the window: when the oldest that matters leaves it. */
function fullUntil(grants: readonly { at: Date }[], limit: RateLimit): Date {
  return new Date(grants[grants.length - limit.jobs]!.at.getTime() + limit.perSeconds * 1000);
}
