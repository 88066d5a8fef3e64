import type { Connection } from 'mongoose';

import { ensureAssetIndexes } from './asset-model';
import { ensureEscrowIndexes } from './escrow-model';
import { ensureJobIndexes } from './job-model';
import { ensureKeySlotIndexes } from './key-slot-model';
import { ensureThrottleIndexes } from './throttle-model';
import { ensurePayoutTransferIndexes } from './payout-transfer-model';
import { ensureResultFileIndexes } from './result-file-repository';
import { ensureRetentionIndexes } from './retention-repository';
import { ensureScheduleIndexes } from './schedule-model';
import { ensureWorkerIndexes } from './worker-repository';

/** Creates every index the service relies on (autoIndex is off so this happens once, at start). */
export async function ensureIndexes(connection: Connection): Promise<void> {
  await ensureJobIndexes(connection);
  await ensureKeySlotIndexes(connection);
  await ensureThrottleIndexes(connection);
  await ensureEscrowIndexes(connection);
  await ensurePayoutTransferIndexes(connection);
  await ensureAssetIndexes(connection);
  await ensureRetentionIndexes(connection);
  await ensureScheduleIndexes(connection);
  await ensureResultFileIndexes(connection);
  await ensureWorkerIndexes(connection);
}
