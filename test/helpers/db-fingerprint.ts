import { createHash } from 'node:crypto';

import mongoose, { type Connection } from 'mongoose';

/** Per collection: document count and a hash of every document (BSON, in _id order). */
export type DatabaseFingerprint = Record<string, { count: number; sha256: string }>;

/**
 * Reads every document of every collection in the connection's database: two equal fingerprints
 * mean nothing was inserted, changed or removed in between. Meant for small test databases.
 */
export async function fingerprintDatabase(connection: Connection): Promise<DatabaseFingerprint> {
  const db = connection.db;
  if (!db) throw new Error('the connection has no database yet');
  const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort();
  const result: DatabaseFingerprint = {};
  for (const name of names) {
    const hash = createHash('sha256');
    let count = 0;
    for await (const doc of db.collection(name).find({}).sort({ _id: 1 })) {
      hash.update(mongoose.mongo.BSON.serialize(doc));
      count += 1;
    }
    result[name] = { count, sha256: hash.digest('hex') };
  }
  return result;
}
