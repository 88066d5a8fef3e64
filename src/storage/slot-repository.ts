import type { Connection } from 'mongoose';

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

  constructor(connection: Connection) {
    this.slots = slotModel(connection);
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
   * Takes up to `want` free slots, each for one of `leaseIds`. A slot is free when its expiry has
   * passed; taking it is conditional on that, so two callers never take the same slot.
   */
  async acquire(params: { type: string; limit: number; leaseIds: readonly string[]; now: Date; expiresAt: Date }): Promise<HeldSlot[]> {
    const { type, limit, leaseIds, now } = params;
    if (leaseIds.length === 0) return [];
    const findFree = () =>
      this.slots
        .find({ type, index: { $lt: limit }, expiresAt: { $lte: now } }, { _id: 1 })
        .limit(leaseIds.length)
        .lean<{ _id: string }[]>();
    let free = await findFree();
    // No free slot: either all are held, or the slot documents do not exist yet (first use of the
    // type, or a raised limit). Only then is it worth counting them.
    if (free.length === 0) {
      if ((await this.slots.countDocuments({ type, index: { $lt: limit } })) >= limit) return [];
      await this.ensureSlots(type, limit);
      free = await findFree();
    }
    if (free.length === 0) return [];
    const wanted = free.map((slot, i) => ({ slotId: slot._id, leaseId: leaseIds[i]! }));
    const result = await this.slots.bulkWrite(
      wanted.map(({ slotId, leaseId }) => ({
        updateOne: {
          filter: { _id: slotId, expiresAt: { $lte: now } },
          update: { $set: { leaseId, expiresAt: params.expiresAt } },
        },
      })),
      { ordered: false },
    );
    if (result.matchedCount === wanted.length) return wanted;
    const held = await this.slots
      .find({ _id: { $in: wanted.map((w) => w.slotId) }, leaseId: { $in: wanted.map((w) => w.leaseId) } }, { _id: 1, leaseId: 1 })
      .lean<{ _id: string; leaseId: string }[]>();
    return held.map((slot) => ({ slotId: slot._id, leaseId: slot.leaseId }));
  }

  async extend(slot: HeldSlot, expiresAt: Date): Promise<boolean> {
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
  async countHeld(type: string, now: Date): Promise<number> {
    return this.slots.countDocuments({ type, expiresAt: { $gt: now } });
  }
}
