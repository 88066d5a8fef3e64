import { randomBytes } from 'node:crypto';

import { ConflictError, NotFoundError, ValidationError } from '../../src/errors';
import { createPayouts, ensurePayoutIndexes } from '../../src/payouts/create-payouts';
import type { PaymentProvider } from '../../src/payouts/payment-provider';
import { PayoutError } from '../../src/payouts/payout-errors';
import { payoutIdempotencyKey, PayoutService, type Escrow, type PayoutResult } from '../../src/payouts/payout-service';
import { SandboxPaymentProvider } from '../../src/payouts/sandbox-provider';
import { createSeededRandom } from '../../src/payouts/seeded-random';
import { createEscrowRepository } from '../../src/storage/escrow-repository';
import { useTestDatabase } from '../helpers/database';

const db = useTestDatabase();

beforeAll(async () => {
  await ensurePayoutIndexes(db.connection);
});

/** A service with its own sandbox provider instance, as a separate worker process would have. */
function payoutsWith(options: { failureRate?: number; seed?: number } = {}): { payouts: PayoutService; sandbox: SandboxPaymentProvider } {
  const sandbox = new SandboxPaymentProvider({
    connection: db.connection,
    failureRate: options.failureRate ?? 0,
    random: createSeededRandom(options.seed ?? 1),
  });
  const { payouts } = createPayouts({ connection: db.connection, provider: sandbox });
  return { payouts, sandbox };
}

async function createTestEscrow(payouts: PayoutService, overrides: Partial<Escrow> = {}): Promise<Escrow> {
  return payouts.createEscrow({
    escrowId: `escrow_${randomBytes(6).toString('hex')}`,
    batchId: 'batch_1',
    amount: 1_500,
    currency: 'EUR',
    payee: 'acct_42',
    createdBy: 'test',
    ...overrides,
  });
}

/** Calls executePayout until it succeeds, as the queue would redeliver a job after retryable failures. */
async function payUntilDone(payouts: PayoutService, escrow: Escrow, maxAttempts = 100): Promise<{ result: PayoutResult; failures: number }> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return { result: await payouts.executePayout({ escrowId: escrow.escrowId, batchId: escrow.batchId }), failures: attempt - 1 };
    } catch (err) {
      if (!(err instanceof PayoutError) || !err.retryable || attempt >= maxAttempts) throw err;
    }
  }
}

async function expectPaidExactlyOnce(sandbox: SandboxPaymentProvider, escrowId: string): Promise<string> {
  const key = payoutIdempotencyKey(escrowId);
  expect(await sandbox.countTransfers(key)).toBe(1);
  const transfer = await sandbox.findTransfer(key);
  const stored = await createEscrowRepository(db.connection).findEscrow(escrowId);
  expect(stored).toMatchObject({ status: 'paid', transferId: transfer!.transferId, paidAt: expect.any(Date) });
  return transfer!.transferId;
}

describe('escrows', () => {
  it('creates a held escrow and reads it back', async () => {
    const { payouts } = payoutsWith();
    const escrow = await createTestEscrow(payouts);
    expect(escrow).toMatchObject({ status: 'held', transferId: null, paidAt: null, amount: 1_500 });
    expect(await payouts.getEscrow(escrow.escrowId)).toEqual(escrow);
  });

  it('generates an escrow id when none is given', async () => {
    const { payouts } = payoutsWith();
    const escrow = await payouts.createEscrow({ batchId: 'b', amount: 1, currency: 'USD', payee: 'acct_1', createdBy: 'test' });
    expect(escrow.escrowId).toMatch(/^escrow_[0-9a-f]{24}$/);
  });

  it('rejects invalid values from typed callers too', async () => {
    const { payouts } = payoutsWith();
    const err: unknown = await createTestEscrow(payouts, { amount: 0, currency: 'euro' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).details).toEqual([
      { field: 'amount', message: expect.any(String) },
      { field: 'currency', message: expect.any(String) },
    ]);
  });

  it('refuses a duplicate escrow id with ConflictError', async () => {
    const { payouts } = payoutsWith();
    const escrow = await createTestEscrow(payouts);
    await expect(createTestEscrow(payouts, { escrowId: escrow.escrowId })).rejects.toBeInstanceOf(ConflictError);
  });

  it('answers an unknown escrow with escrow_not_found', async () => {
    const { payouts } = payoutsWith();
    const err: unknown = await payouts.getEscrow('escrow_missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: 'escrow_not_found' });
  });
});

describe('executePayout', () => {
  it('pays a held escrow once and answers later calls with the same transfer', async () => {
    const { payouts, sandbox } = payoutsWith();
    const escrow = await createTestEscrow(payouts);
    const first = await payouts.executePayout({ escrowId: escrow.escrowId, batchId: 'batch_1' });
    expect(first).toEqual({ escrowId: escrow.escrowId, transferId: expect.stringMatching(/^tr_/), alreadyPaid: false });
    const again = await payouts.executePayout({ escrowId: escrow.escrowId, batchId: 'batch_1' });
    expect(again).toEqual({ ...first, alreadyPaid: true });
    expect(await expectPaidExactlyOnce(sandbox, escrow.escrowId)).toBe(first.transferId);
  });

  it('fails permanently for an unknown escrow', async () => {
    const { payouts } = payoutsWith();
    await expect(payouts.executePayout({ escrowId: 'escrow_missing', batchId: 'batch_1' })).rejects.toMatchObject({
      code: 'escrow_not_found',
      retryable: false,
    });
  });

  it('fails permanently, moving nothing, when the batch does not match the escrow', async () => {
    const { payouts, sandbox } = payoutsWith();
    const escrow = await createTestEscrow(payouts);
    await expect(payouts.executePayout({ escrowId: escrow.escrowId, batchId: 'batch_other' })).rejects.toMatchObject({
      code: 'escrow_batch_mismatch',
      retryable: false,
    });
    expect(await sandbox.countTransfers(payoutIdempotencyKey(escrow.escrowId))).toBe(0);
    expect((await payouts.getEscrow(escrow.escrowId)).status).toBe('held');
  });

  it('fails permanently when the provider refuses the payee', async () => {
    const { payouts } = payoutsWith();
    const escrow = await createTestEscrow(payouts, { payee: 'acct_rejected_1' });
    await expect(payouts.executePayout({ escrowId: escrow.escrowId, batchId: 'batch_1' })).rejects.toMatchObject({
      code: 'transfer_rejected',
      retryable: false,
    });
  });

  it('reports a transient provider failure as retryable and leaves the escrow held', async () => {
    const { payouts, sandbox } = payoutsWith({ failureRate: 1 });
    const escrow = await createTestEscrow(payouts);
    await expect(payouts.executePayout({ escrowId: escrow.escrowId, batchId: 'batch_1' })).rejects.toMatchObject({
      code: 'transfer_unavailable',
      retryable: true,
    });
    expect(await sandbox.countTransfers(payoutIdempotencyKey(escrow.escrowId))).toBe(0);
    expect((await payouts.getEscrow(escrow.escrowId)).status).toBe('held');
  });

  it('after a crash between the transfer and marking the escrow, the next attempt reuses that transfer', async () => {
    const { payouts, sandbox } = payoutsWith();
    const escrow = await createTestEscrow(payouts);
    // What the crashed attempt left behind: money moved, escrow still held.
    const moved = await sandbox.transfer({
      idempotencyKey: payoutIdempotencyKey(escrow.escrowId),
      amount: escrow.amount,
      currency: escrow.currency,
      payee: escrow.payee,
    });
    const result = await payouts.executePayout({ escrowId: escrow.escrowId, batchId: 'batch_1' });
    expect(result).toEqual({ escrowId: escrow.escrowId, transferId: moved.transferId, alreadyPaid: false });
    await expectPaidExactlyOnce(sandbox, escrow.escrowId);
  });

  it('does not start when the signal is already aborted', async () => {
    const { payouts, sandbox } = payoutsWith();
    const escrow = await createTestEscrow(payouts);
    const controller = new AbortController();
    controller.abort();
    await expect(payouts.executePayout({ escrowId: escrow.escrowId, batchId: 'batch_1', signal: controller.signal })).rejects.toMatchObject({
      code: 'aborted',
      retryable: true,
    });
    expect(await sandbox.countTransfers(payoutIdempotencyKey(escrow.escrowId))).toBe(0);
  });

  it('refuses to answer when the escrow was paid by a different transfer than the provider returned', async () => {
    const escrows = createEscrowRepository(db.connection);
    // A broken provider: something else pays the escrow while it answers with its own transfer id.
    const broken: PaymentProvider = {
      async transfer(request) {
        const escrowId = request.idempotencyKey.slice('escrow:'.length);
        await escrows.markEscrowPaid({ escrowId, transferId: 'tr_someone_else', now: new Date() });
        return { transferId: 'tr_mine', status: 'succeeded' };
      },
    };
    const payouts = new PayoutService({ escrows, provider: broken });
    const escrow = await createTestEscrow(payouts);
    await expect(payouts.executePayout({ escrowId: escrow.escrowId, batchId: 'batch_1' })).rejects.toMatchObject({
      code: 'transfer_conflict',
      retryable: false,
    });
  });

  describe('with transient failures injected before and after recording', () => {
    it('called many times in sequence, pays each escrow exactly once', async () => {
      const { payouts, sandbox } = payoutsWith({ failureRate: 0.5, seed: 7 });
      const escrows = await Promise.all(Array.from({ length: 10 }, () => createTestEscrow(payouts)));
      let failures = 0;
      for (const escrow of escrows) {
        const results: PayoutResult[] = [];
        // Duplicate deliveries: five successful runs per escrow, with every failure retried in between.
        for (let delivery = 0; delivery < 5; delivery += 1) {
          const run = await payUntilDone(payouts, escrow);
          failures += run.failures;
          results.push(run.result);
        }
        const transferId = await expectPaidExactlyOnce(sandbox, escrow.escrowId);
        expect(results.map((r) => r.transferId)).toEqual(Array<string>(5).fill(transferId));
        expect(results.map((r) => r.alreadyPaid)).toEqual([false, true, true, true, true]);
      }
      expect(failures).toBeGreaterThan(0);
      const counts = await sandbox.countTransfersByKey();
      for (const escrow of escrows) expect(counts.get(payoutIdempotencyKey(escrow.escrowId))).toBe(1);
    });

    it('called by 20 concurrent workers per escrow, pays each escrow exactly once', async () => {
      const { payouts: creator } = payoutsWith();
      const escrows = await Promise.all(Array.from({ length: 5 }, () => createTestEscrow(creator)));
      // 20 workers, each its own service and provider instance with its own failure stream.
      const workers = Array.from({ length: 20 }, (_, i) => payoutsWith({ failureRate: 0.4, seed: 100 + i }));
      const runs = await Promise.all(
        escrows.flatMap((escrow) => workers.map(async ({ payouts }) => ({ escrow, ...(await payUntilDone(payouts, escrow)) }))),
      );
      expect(runs.reduce((sum, run) => sum + run.failures, 0)).toBeGreaterThan(0);
      for (const escrow of escrows) {
        const transferId = await expectPaidExactlyOnce(workers[0]!.sandbox, escrow.escrowId);
        const forEscrow = runs.filter((run) => run.escrow.escrowId === escrow.escrowId).map((run) => run.result);
        expect(forEscrow).toHaveLength(20);
        expect(new Set(forEscrow.map((r) => r.transferId))).toEqual(new Set([transferId]));
        // Exactly one caller made the held → paid transition.
        expect(forEscrow.filter((r) => !r.alreadyPaid)).toHaveLength(1);
      }
    });
  });
});
