import { createEscrowRepository, type EscrowRepository, type NewEscrowRecord } from '../../src/storage/escrow-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { clearCollections, uniqueId, useSecondConnection } from '../helpers/storage';

/** The contract of the escrow repository: held → paid exactly once, scoped listings, against the real test database. */
const db = useTestDatabase();
const other = useSecondConnection(db);
let escrows: EscrowRepository;
let clock: TestClock;

beforeAll(async () => {
  escrows = createEscrowRepository(db.connection);
  // Idempotent: the test database helper already created every index.
  await escrows.ensureIndexes();
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['escrows']);
});

function newEscrow(fields: Partial<NewEscrowRecord> = {}): NewEscrowRecord {
  return {
    escrowId: uniqueId('escrow'),
    batchId: 'batch_1',
    amount: 1_250,
    currency: 'EUR',
    payee: 'payee-1',
    createdBy: 'service-1',
    createdByRole: 'service',
    tenant: null,
    now: clock.now(),
    ...fields,
  };
}

describe('insertEscrow / findEscrow', () => {
  it('stores a held escrow and reads it back as the same record', async () => {
    const input = newEscrow({ tenant: 'acme' });
    const record = await escrows.insertEscrow(input);
    expect(record).toEqual({
      escrowId: input.escrowId,
      batchId: 'batch_1',
      amount: 1_250,
      currency: 'EUR',
      payee: 'payee-1',
      status: 'held',
      transferId: null,
      paidAt: null,
      createdBy: 'service-1',
      createdByRole: 'service',
      tenant: 'acme',
      createdAt: input.now,
      updatedAt: input.now,
    });
    expect(await escrows.findEscrow(input.escrowId)).toEqual(record);
    expect(await escrows.findEscrow('escrow_missing')).toBeNull();
  });

  it('rejects a duplicate escrow id with the driver code 11000, keeping the first', async () => {
    const input = newEscrow();
    await escrows.insertEscrow(input);
    await expect(escrows.insertEscrow({ ...input, amount: 1 })).rejects.toMatchObject({ code: 11000 });
    expect((await escrows.findEscrow(input.escrowId))?.amount).toBe(1_250);
  });

  it.each([
    ['a zero amount', { amount: 0 }],
    ['a fractional amount', { amount: 12.5 }],
    ['a currency that is not three capitals', { currency: 'eur' }],
  ])('refuses %s through the schema (a last line of defence behind the service)', async (_what, fields) => {
    const input = newEscrow(fields);
    await expect(escrows.insertEscrow(input)).rejects.toThrow();
    expect(await escrows.findEscrow(input.escrowId)).toBeNull();
  });

  it('reads an escrow stored before roles and tenants as createdByRole and tenant null', async () => {
    const input = newEscrow({ tenant: 'acme' });
    await escrows.insertEscrow(input);
    await db.connection.collection<{ _id: string }>('escrows').updateOne({ _id: input.escrowId }, { $unset: { createdByRole: '', tenant: '' } });
    expect(await escrows.findEscrow(input.escrowId)).toMatchObject({ createdByRole: null, tenant: null });
  });

  it('refuses to read a paid escrow without its transfer as paid (corruption is an error, not a record)', async () => {
    const input = newEscrow();
    await escrows.insertEscrow(input);
    await db.connection.collection<{ _id: string }>('escrows').updateOne({ _id: input.escrowId }, { $set: { status: 'paid' } });
    await expect(escrows.findEscrow(input.escrowId)).rejects.toThrow(/paid but has no transferId/);
  });
});

describe('markEscrowPaid', () => {
  it('moves a held escrow to paid with the transfer; a second payment is refused and keeps the first', async () => {
    const input = newEscrow();
    await escrows.insertEscrow(input);
    clock.advance(5_000);
    const now = clock.now();

    const paid = await escrows.markEscrowPaid({ escrowId: input.escrowId, transferId: 'tr_1', now });
    expect(paid).toMatchObject({ status: 'paid', transferId: 'tr_1', paidAt: now, updatedAt: now, createdAt: input.now });
    expect(await escrows.findEscrow(input.escrowId)).toEqual(paid);

    expect(await escrows.markEscrowPaid({ escrowId: input.escrowId, transferId: 'tr_2', now })).toBeNull();
    expect((await escrows.findEscrow(input.escrowId))?.transferId).toBe('tr_1');
    expect(await escrows.markEscrowPaid({ escrowId: 'escrow_missing', transferId: 'tr_3', now })).toBeNull();
  });

  it('lets exactly one of racing payments on two connections win', async () => {
    const theirs = createEscrowRepository(other.connection);
    const input = newEscrow();
    await escrows.insertEscrow(input);
    const now = clock.now();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? escrows : theirs).markEscrowPaid({ escrowId: input.escrowId, transferId: `tr_${i}`, now })),
    );
    const winners = results.filter((r) => r !== null);
    expect(winners).toHaveLength(1);
    expect((await escrows.findEscrow(input.escrowId))?.transferId).toBe(winners[0]!.transferId);
  });
});

describe('listEscrows', () => {
  beforeEach(async () => {
    // Created a second apart, except two at the same instant (the id breaks that tie).
    for (const [i, fields] of [
      { escrowId: 'escrow_a', tenant: 'acme' },
      { escrowId: 'escrow_b', tenant: null },
      { escrowId: 'escrow_c', tenant: 'acme', createdBy: 'user-1', createdByRole: 'user' as const },
      { escrowId: 'escrow_d', tenant: 'globex' },
    ].entries()) {
      if (i < 3) clock.advance(1_000);
      await escrows.insertEscrow(newEscrow({ ...fields, now: clock.now() }));
    }
  });

  const ids = async (scope: Parameters<EscrowRepository['listEscrows']>[0]['scope'], skip = 0, limit = 10): Promise<{ ids: string[]; total: number }> => {
    const page = await escrows.listEscrows({ scope, skip, limit });
    return { ids: page.escrows.map((e) => e.escrowId), total: page.total };
  };

  it('lists newest first, ties broken by id (descending), with the total of the scope', async () => {
    expect(await ids({})).toEqual({ ids: ['escrow_d', 'escrow_c', 'escrow_b', 'escrow_a'], total: 4 });
  });

  it('pages without overlap; a page past the end is empty but still counts the total', async () => {
    expect(await ids({}, 0, 2)).toEqual({ ids: ['escrow_d', 'escrow_c'], total: 4 });
    expect(await ids({}, 2, 2)).toEqual({ ids: ['escrow_b', 'escrow_a'], total: 4 });
    expect(await ids({}, 3, 2)).toEqual({ ids: ['escrow_a'], total: 4 });
    expect(await ids({}, 10, 2)).toEqual({ ids: [], total: 4 });
  });

  it('keeps to the scope: a tenant, the tenant-less, an owner', async () => {
    expect(await ids({ tenant: 'acme' })).toEqual({ ids: ['escrow_c', 'escrow_a'], total: 2 });
    expect(await ids({ tenant: null })).toEqual({ ids: ['escrow_b'], total: 1 });
    expect(await ids({ owner: { createdBy: 'user-1', createdByRole: 'user' } })).toEqual({ ids: ['escrow_c'], total: 1 });
    expect(await ids({ tenant: 'globex', owner: { createdBy: 'user-1', createdByRole: 'user' } })).toEqual({ ids: [], total: 0 });
  });
});
