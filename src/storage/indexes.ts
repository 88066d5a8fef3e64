import type { Connection } from 'mongoose';

import { ensureJobIndexes } from './job-model';

/** Creates every index the service relies on (autoIndex is off so this happens once, at start). */
export async function ensureIndexes(connection: Connection): Promise<void> {
  await ensureJobIndexes(connection);
}
