import 'dotenv/config';

import { parseArgs } from 'node:util';

import { localDataDir, readLocalDatabaseUri } from '../src/local-secret';
import { databaseNameInUri } from '../src/mongo-uri';
import { createPayouts, ensurePayoutIndexes } from '../src/payouts/create-payouts';
import { connectDatabase } from '../src/storage/connection';

/**
 * `tsx scripts/seed-escrows.ts --count 20 --batch batch_1 [--amount 1000] [--currency EUR]`:
 * creates held escrows in MONGODB_URI (or, unset, the database `npm start` runs, from .data/mongodb-uri;
 * database: the one the URI names, else MONGODB_DB_NAME, else `jobs`) and prints their ids, one per
 * line, ready to enqueue as `payout.execute` jobs.
 */
function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '10' },
      batch: { type: 'string' },
      amount: { type: 'string', default: '1000' },
      currency: { type: 'string', default: 'EUR' },
    },
  });
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 10_000) fail('--count must be an integer from 1 to 10000');
  const amount = Number(values.amount);
  if (!Number.isSafeInteger(amount) || amount < 1) fail('--amount must be a positive integer of minor units');
  if (!values.batch) fail('--batch is required (e.g. --batch batch_1)');
  const uri = process.env.MONGODB_URI || readLocalDatabaseUri(localDataDir(process.env.LOCAL_DATA_DIR));
  if (!uri) fail('MONGODB_URI is not set and `npm start` is not running (set it, or start `npm start` first)');

  const connection = await connectDatabase({
    uri,
    dbName: databaseNameInUri(uri) ?? (process.env.MONGODB_DB_NAME || 'jobs'),
    timeoutMs: 5_000,
    writeConcern: 'majority',
    readPreference: 'primary',
  });
  try {
    await ensurePayoutIndexes(connection);
    const { payouts } = createPayouts({ connection });
    for (let i = 0; i < count; i += 1) {
      const escrow = await payouts.createEscrow({
        batchId: values.batch,
        amount,
        currency: values.currency,
        payee: `acct_seed_${String(i + 1).padStart(4, '0')}`,
        createdBy: 'seed-escrows',
      });
      process.stdout.write(`${escrow.escrowId}\n`);
    }
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  fail(`seed-escrows: ${err instanceof Error ? err.message : String(err)}`);
});
