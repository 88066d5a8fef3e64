import type { PayoutTransferRecord } from '../../src/model/payout-transfer';
import { createPayoutTransferRepository, type PayoutTransferRepository } from '../../src/storage/payout-transfer-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { clearCollections, uniqueId, useSecondConnection } from '../helpers/storage';

/** The contract of the sandbox provider's ledger: money moves at most once per idempotency key, against the real test database. */
const db = useTestDatabase();
const other = useSecondConnection(db);
let transfers: PayoutTransferRepository;
let clock: TestClock;

beforeAll(async () => {
  transfers = createPayoutTransferRepository(db.connection);
  await transfers.ensureIndexes();
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['sandbox_payout_transfers']);
});

function transfer(fields: Partial<PayoutTransferRecord> = {}): PayoutTransferRecord {
  return {
    transferId: uniqueId('tr'),
    idempotencyKey: 'payout:batch_1:escrow_1',
    amount: 1_250,
    currency: 'EUR',
    payee: 'payee-1',
    status: 'succeeded',
    createdAt: clock.now(),
    ...fields,
  };
}

it('records a transfer and finds it by its idempotency key', async () => {
  const record = transfer();
  await transfers.insertTransfer(record);
  expect(await transfers.findTransferByKey(record.idempotencyKey)).toEqual(record);
  expect(await transfers.findTransferByKey('payout:other')).toBeNull();
});

it('rejects a second transfer with the same idempotency key with code 11000, recording nothing', async () => {
  const first = transfer();
  await transfers.insertTransfer(first);
  await expect(transfers.insertTransfer(transfer({ amount: 99 }))).rejects.toMatchObject({ code: 11000 });
  expect(await transfers.countTransfers(first.idempotencyKey)).toBe(1);
  expect(await transfers.findTransferByKey(first.idempotencyKey)).toEqual(first);
});

it('rejects a repeated transfer id with code 11000 too', async () => {
  const first = transfer();
  await transfers.insertTransfer(first);
  await expect(transfers.insertTransfer(transfer({ transferId: first.transferId, idempotencyKey: 'payout:other' }))).rejects.toMatchObject({ code: 11000 });
  expect(await transfers.countTransfers('payout:other')).toBe(0);
});

it('of racing transfers with one key on two connections, exactly one is recorded; the others get 11000', async () => {
  const theirs = createPayoutTransferRepository(other.connection);
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? transfers : theirs).insertTransfer(transfer())));

  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 11000 });
  expect(await transfers.countTransfers('payout:batch_1:escrow_1')).toBe(1);
});

it('counts transfers per key, for one key and for all keys that have any', async () => {
  await transfers.insertTransfer(transfer({ idempotencyKey: 'k1' }));
  await transfers.insertTransfer(transfer({ idempotencyKey: 'k2' }));
  await transfers.insertTransfer(transfer({ idempotencyKey: 'k3' }));
  expect(await transfers.countTransfers('k1')).toBe(1);
  expect(await transfers.countTransfers('k0')).toBe(0);
  expect(await transfers.countTransfersByKey()).toEqual(new Map([['k1', 1], ['k2', 1], ['k3', 1]]));
  await clearCollections(db.connection, ['sandbox_payout_transfers']);
  expect(await transfers.countTransfersByKey()).toEqual(new Map());
});
