import type { Connection } from 'mongoose';

import { isDuplicateKeyError } from './errors';
import { jobModel, type JobModel } from './job-model';
import { keySlotModel, type KeySlotModel } from './key-slot-model';

/** One lease that wants a slot of its (type, key) pool. */
export interface KeySlotRequest {
  type: string;
  key: string;
  /** The pool's size (the type's keyConcurrencyLimit). */
  limit: number;
  leaseId: string;
  expiresAt: Date;
}

export interface HeldKeySlot {
  slotId: string;
  leaseId: string;
}

function writeErrorsOf(err: unknown): { index: number; code?: number; err?: { code?: number } }[] {
  const writeErrors = (err as { writeErrors?: unknown }).writeErrors;
  return (Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : []) as { index: number; code?: number; err?: { code?: number } }[];
}

function onlyDuplicateKeys(err: unknown): boolean {
  const list = writeErrorsOf(err);
  return list.length > 0 ? list.every((e) => (e.code ?? e.err?.code) === 11000) : isDuplicateKeyError(err);
}

/** The slot ids of a pool: JSON keeps any type name and key apart from the index. */
export function keySlotId(type: string, key: string, index: number): string {
  return JSON.stringify([type, key, index]);
}

/**
 * Per-key concurrency slots (keyConcurrencyLimit). Every operation is a few round trips for ALL the
 * keys of a lease call together, never one per key: the lease path pays for a keyed type about
 * three queries per call, however many keys its jobs carry.
 */
export class KeySlotRepository {
  private readonly slots: KeySlotModel;
  private readonly jobs: JobModel;

  constructor(connection: Connection) {
    this.slots = keySlotModel(connection);
    this.jobs = jobModel(connection);
  }

  /**
   * Takes a slot for as many requests as their pools allow, in request order (best job first).
   * Returns the slots taken, by lease id. A slot is free when it does not exist (never taken, or
   * released), or when it expired AND no leased job holds its lease id (a lease stays valid until
   * reclaimed, so an expired slot whose job is still leased is not free). Taking one is conditional
   * on what was read, so two callers never hold the same slot.
   */
  async acquire(params: { requests: readonly KeySlotRequest[]; now: Date }): Promise<Map<string, HeldKeySlot>> {
    const { requests, now } = params;
    const held = new Map<string, HeldKeySlot>();
    if (requests.length === 0) return held;
    const pools = new Map<string, { type: string; key: string; limit: number; requests: KeySlotRequest[] }>();
    for (const request of requests) {
      const poolId = JSON.stringify([request.type, request.key]);
      const pool = pools.get(poolId) ?? { type: request.type, key: request.key, limit: request.limit, requests: [] };
      if (pool.requests.length < pool.limit) pool.requests.push(request);
      pools.set(poolId, pool);
    }
    const ids = [...pools.values()].flatMap((pool) => Array.from({ length: pool.limit }, (_, i) => keySlotId(pool.type, pool.key, i)));
    const existing = await this.slots.find({ _id: { $in: ids } }, { _id: 1, leaseId: 1, expiresAt: 1 }).lean<{ _id: string; leaseId: string; expiresAt: Date }[]>();
    const byId = new Map(existing.map((slot) => [slot._id, slot]));
    const expiredHolders = existing.filter((slot) => slot.expiresAt.getTime() <= now.getTime()).map((slot) => slot.leaseId);
    const live =
      expiredHolders.length === 0
        ? new Set<string>()
        : new Set((await this.jobs.find({ status: 'leased', leaseId: { $in: expiredHolders } }, { _id: 0, leaseId: 1 }).lean<{ leaseId: string }[]>()).map((j) => j.leaseId));

    type Take = { slotId: string; request: KeySlotRequest; previous: string | null };
    const takes: Take[] = [];
    for (const pool of pools.values()) {
      const free: { slotId: string; previous: string | null }[] = [];
      for (let i = 0; i < pool.limit && free.length < pool.requests.length; i += 1) {
        const slotId = keySlotId(pool.type, pool.key, i);
        const slot = byId.get(slotId);
        if (!slot) free.push({ slotId, previous: null });
        else if (slot.expiresAt.getTime() <= now.getTime() && !live.has(slot.leaseId)) free.push({ slotId, previous: slot.leaseId });
      }
      free.forEach((slot, i) => takes.push({ ...slot, request: pool.requests[i]! }));
    }
    if (takes.length === 0) return held;
    let applied = 0;
    let failed: Set<number> | undefined;
    try {
      const result = await this.slots.bulkWrite(
        takes.map(({ slotId, request, previous }) =>
          previous === null
            ? { insertOne: { document: { _id: slotId, type: request.type, key: request.key, leaseId: request.leaseId, expiresAt: request.expiresAt } } }
            : {
                updateOne: {
                  // Conditional on the holder read: a slot re-taken (or extended) since is left alone.
                  filter: { _id: slotId, leaseId: previous, expiresAt: { $lte: now } },
                  update: { $set: { leaseId: request.leaseId, expiresAt: request.expiresAt } },
                },
              },
        ),
        { ordered: false },
      );
      applied = result.insertedCount + result.matchedCount;
    } catch (err) {
      // Inserts that lost a race come back as duplicate keys; anything else is a failure.
      if (!onlyDuplicateKeys(err)) throw err;
      failed = new Set(writeErrorsOf(err).map((e) => e.index));
    }
    if (applied === takes.length) {
      for (const take of takes) held.set(take.request.leaseId, { slotId: take.slotId, leaseId: take.request.leaseId });
      return held;
    }
    // Only inserts (the usual case: free slots do not exist): the write errors say which lost.
    if (failed && takes.every((t) => t.previous === null)) {
      takes.forEach((take, i) => {
        if (!failed!.has(i)) held.set(take.request.leaseId, { slotId: take.slotId, leaseId: take.request.leaseId });
      });
      return held;
    }
    // Some lost a race: read which slots hold our lease ids.
    const ours = await this.slots
      .find({ _id: { $in: takes.map((t) => t.slotId) }, leaseId: { $in: takes.map((t) => t.request.leaseId) } }, { _id: 1, leaseId: 1 })
      .lean<{ _id: string; leaseId: string }[]>();
    for (const slot of ours) held.set(slot.leaseId, { slotId: slot._id, leaseId: slot.leaseId });
    return held;
  }

  async extend(params: { slot: HeldKeySlot; expiresAt: Date }): Promise<boolean> {
    const result = await this.slots.updateOne({ _id: params.slot.slotId, leaseId: params.slot.leaseId }, { $set: { expiresAt: params.expiresAt } });
    return result.matchedCount === 1;
  }

  /** Frees the slots these leases hold (a slot is deleted only by the lease that holds it). */
  async release(slots: readonly HeldKeySlot[]): Promise<void> {
    if (slots.length === 0) return;
    await this.slots.bulkWrite(
      slots.map((slot) => ({ deleteOne: { filter: { _id: slot.slotId, leaseId: slot.leaseId } } })),
      { ordered: false },
    );
  }

  /** Frees whatever slots these lease ids hold (batch reports know the leases, not the slot ids). */
  async releaseByLease(leaseIds: readonly string[]): Promise<void> {
    if (leaseIds.length === 0) return;
    await this.slots.deleteMany({ leaseId: { $in: [...leaseIds] } });
  }

  /**
   * How many slots each pool has free at `now`, for the long-poll probe (one query). Approximate on
   * the generous side: an expired slot counts as free even if its job is still leased.
   */
  async countFree(params: { pools: readonly { type: string; key: string; limit: number }[]; now: Date }): Promise<Map<string, number>> {
    const { pools, now } = params;
    const free = new Map<string, number>();
    if (pools.length === 0) return free;
    const ids = pools.flatMap((pool) => Array.from({ length: pool.limit }, (_, i) => keySlotId(pool.type, pool.key, i)));
    const held = await this.slots.find({ _id: { $in: ids }, expiresAt: { $gt: now } }, { _id: 0, type: 1, key: 1 }).lean<{ type: string; key: string }[]>();
    for (const pool of pools) free.set(JSON.stringify([pool.type, pool.key]), pool.limit);
    for (const slot of held) {
      const id = JSON.stringify([slot.type, slot.key]);
      free.set(id, Math.max(0, (free.get(id) ?? 0) - 1));
    }
    return free;
  }

  /** Slots of a pool held at `now` (for tests and stats). */
  async countHeld(params: { type: string; key: string; now: Date }): Promise<number> {
    return this.slots.countDocuments({ type: params.type, key: params.key, expiresAt: { $gt: params.now } });
  }
}
