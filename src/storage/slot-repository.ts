import type { Connection } from 'mongoose';

import { jobModel, type JobModel } from './job-model';
import { slotModel, type SlotModel } from './slot-model';

const FREE = new Date(0);

export interface HeldSlot {
  slotId: string;
  leaseId: string;
}

/**
 * Concurrency slots of limited job types. A lease of such a type holds one slot; the slot is
 * released when the job is reported, and frees itself at `expiresAt` (kept equal to the job's
 * lease expiry) if its holder vanished.
 */
export class SlotRepository {
  private readonly slots: SlotModel;

  private readonly jobs: JobModel;

  constructor(connection: Connection) {
    this.slots = slotModel(connection);
    this.jobs = jobModel(connection);
  }

  /** Creates any missing slot documents of a type (idempotent upserts). */
  private async ensureSlots(type: string, limit: number): Promise<void> {
    await this.slots.bulkWrite(
      Array.from({ length: limit }, (_, index) => ({
        updateOne: {
          filter: { _id: `${type}#${index}` },
          update: { $setOnInsert: { type, index, leaseId: null, expiresAt: FREE } },
          upsert: true,
        },
      })),
      { ordered: false },
    );
  }

  /**
   * Takes up to `leaseIds.length` free slots, one for each lease id. A slot is free when it was
   * released, or when its expiry passed AND no leased job holds it any more: a lease stays valid
   * until it is reclaimed (API.md), so an expired slot whose job is still leased (its heartbeat may
   * be on the way) is not free — taking it would let two leases share one slot. The expiry alone
   * frees a slot only when the job lease behind it is gone (a crash between taking the slot and
   * claiming the job, or between reclaiming the job and releasing its slot). Taking a slot is
   * conditional on what was read, so two callers never take the same slot.
   */
  async acquire(params: { type: string; limit: number; leaseIds: readonly string[]; now: Date; expiresAt: Date }): Promise<HeldSlot[]> {
    const { type, limit, leaseIds, now } = params;
    if (leaseIds.length === 0) return [];
    const findFree = async (): Promise<{ _id: string; leaseId: string | null }[]> => {
      const want = leaseIds.length;
      const page = want * 2;
      const free: { _id: string; leaseId: string | null }[] = [];
      // Released slots first (expiresAt is the epoch), then expired ones. Pages on past expired slots
      // whose job is still leased, so they can never hide a free slot behind them.
      for (let offset = 0; free.length < want; offset += page) {
        const expired = await this.slots
          .find({ type, index: { $lt: limit }, expiresAt: { $lte: now } }, { _id: 1, leaseId: 1 }, { sort: { expiresAt: 1, _id: 1 }, skip: offset, limit: page })
          .lean<{ _id: string; leaseId: string | null }[]>();
        const heldIds = expired.flatMap((slot) => (slot.leaseId === null ? [] : [slot.leaseId]));
        const live =
          heldIds.length === 0
            ? []
            : await this.jobs.find({ status: 'leased', leaseId: { $in: heldIds } }, { _id: 0, leaseId: 1 }).lean<{ leaseId: string }[]>();
        const stillLeased = new Set(live.map((job) => job.leaseId));
        free.push(...expired.filter((slot) => slot.leaseId === null || !stillLeased.has(slot.leaseId)));
        if (expired.length < page) break;
      }
      return free.slice(0, want);
    };
    let free = await findFree();
    // No free slot: either all are held, or the slot documents do not exist yet (first use of the
    // type, or a raised limit). Only then is it worth counting them.
    if (free.length === 0) {
      if ((await this.slots.countDocuments({ type, index: { $lt: limit } })) >= limit) return [];
      await this.ensureSlots(type, limit);
      free = await findFree();
    }
    if (free.length === 0) return [];
    const wanted = free.map((slot, i) => ({ slotId: slot._id, previous: slot.leaseId, leaseId: leaseIds[i]! }));
    const result = await this.slots.bulkWrite(
      wanted.map(({ slotId, previous, leaseId }) => ({
        updateOne: {
          // Conditional on the holder read as well: a slot re-taken (or extended) since is left alone.
          filter: { _id: slotId, leaseId: previous, expiresAt: { $lte: now } },
          update: { $set: { leaseId, expiresAt: params.expiresAt } },
        },
      })),
      { ordered: false },
    );
    const taken = wanted.map(({ slotId, leaseId }) => ({ slotId, leaseId }));
    if (result.matchedCount === wanted.length) return taken;
    const held = await this.slots
      .find({ _id: { $in: taken.map((w) => w.slotId) }, leaseId: { $in: taken.map((w) => w.leaseId) } }, { _id: 1, leaseId: 1 })
      .lean<{ _id: string; leaseId: string }[]>();
    return held.map((slot) => ({ slotId: slot._id, leaseId: slot.leaseId }));
  }

  async extend(params: { slot: HeldSlot; expiresAt: Date }): Promise<boolean> {
    const { slot, expiresAt } = params;
    const result = await this.slots.updateOne({ _id: slot.slotId, leaseId: slot.leaseId }, { $set: { expiresAt } });
    return result.matchedCount === 1;
  }

  async release(slots: readonly HeldSlot[]): Promise<void> {
    if (slots.length === 0) return;
    await this.slots.bulkWrite(
      slots.map((slot) => ({
        updateOne: { filter: { _id: slot.slotId, leaseId: slot.leaseId }, update: { $set: { leaseId: null, expiresAt: FREE } } },
      })),
      { ordered: false },
    );
  }

  /** How many slots of a type are held at `now` (for tests and stats). */
  async countHeld(params: { type: string; now: Date }): Promise<number> {
    return this.slots.countDocuments({ type: params.type, expiresAt: { $gt: params.now } });
  }

  /** How many of a type's slots a lease call could take now, at most `max` (one small query; for long-poll probes). */
  async countFree(params: { type: string; limit: number; now: Date; max: number }): Promise<number> {
    const { type, limit, now, max } = params;
    const existing = await this.slots.countDocuments({ type, index: { $lt: limit } });
    if (existing < limit) return max;
    return this.slots.countDocuments({ type, index: { $lt: limit }, expiresAt: { $lte: now } }, { limit: max });
  }
}
