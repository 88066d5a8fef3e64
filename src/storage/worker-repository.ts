import type { Connection } from 'mongoose';

import type { WorkerSighting } from '../model/worker';

/** Collection `workers`: one document per worker id, the API's last sighting of it. */
const COLLECTION = 'workers';

interface WorkerDocument {
  _id: string;
  types?: string[] | null;
  tenant?: string | null;
  lastSeenAt: Date;
  lastCall: 'lease' | 'heartbeat';
}

/** Sightings of worker processes (GET /admin/workers): written at most once per worker per interval. */
export class WorkerRepository {
  constructor(private readonly connection: Connection) {}

  /** One upsert; `types` undefined (a heartbeat) keeps the types its last lease call named. */
  async recordSeen(params: { workerId: string; types: string[] | null | undefined; tenant: string | null; at: Date; call: 'lease' | 'heartbeat' }): Promise<void> {
    await this.collection().updateOne(
      { _id: params.workerId },
      {
        $set: { lastSeenAt: params.at, lastCall: params.call, tenant: params.tenant, ...(params.types === undefined ? {} : { types: params.types }) },
        ...(params.types === undefined ? { $setOnInsert: { types: null } } : {}),
      },
      { upsert: true },
    );
  }

  /** Several sightings in one round trip (the periodic refresh of known workers). */
  async recordSeenMany(sightings: readonly { workerId: string; types: string[] | null | undefined; tenant: string | null; at: Date; call: 'lease' | 'heartbeat' }[]): Promise<void> {
    if (sightings.length === 0) return;
    await this.collection().bulkWrite(
      sightings.map((s) => ({
        updateOne: {
          filter: { _id: s.workerId },
          update: {
            $set: { lastSeenAt: s.at, lastCall: s.call, tenant: s.tenant, ...(s.types === undefined ? {} : { types: s.types }) },
            ...(s.types === undefined ? { $setOnInsert: { types: null } } : {}),
          },
          upsert: true,
        },
      })),
      { ordered: false },
    );
  }

  /** Workers seen at or after `since`, most recently seen first (within a tenant when one is given). */
  async findSeenSince(params: { since: Date; tenant?: string; limit: number }): Promise<WorkerSighting[]> {
    const docs = await this.collection()
      .find({ lastSeenAt: { $gte: params.since }, ...(params.tenant === undefined ? {} : { tenant: params.tenant }) })
      .sort({ lastSeenAt: -1, _id: 1 })
      .limit(params.limit)
      .toArray();
    return docs.map((d) => ({ workerId: d._id, types: d.types ?? null, tenant: d.tenant ?? null, lastSeenAt: d.lastSeenAt, lastCall: d.lastCall }));
  }

  private collection() {
    const db = this.connection.db;
    if (!db) throw new Error('the worker store needs an open database connection');
    return db.collection<WorkerDocument>(COLLECTION);
  }
}

/**
 * lastSeenAt serves the listing; as a TTL index it also drops workers not seen for a day (on MongoDB;
 * the test server keeps them, and the listing's window hides them anyway).
 */
export async function ensureWorkerIndexes(connection: Connection): Promise<void> {
  const db = connection.db;
  if (!db) throw new Error('indexes need an open database connection');
  await db.collection(COLLECTION).createIndex({ lastSeenAt: 1 }, { name: 'seen', expireAfterSeconds: 86_400 });
}
