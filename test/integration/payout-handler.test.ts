import pino from 'pino';

import type { PayoutPayload } from '../../src/jobs/job-types';
import { createPayouts, ensurePayoutIndexes } from '../../src/payouts/create-payouts';
import { payoutIdempotencyKey, type Escrow, type PayoutService } from '../../src/payouts/payout-service';
import { SandboxPaymentProvider, type SandboxFailurePoint } from '../../src/payouts/sandbox-provider';
import type { JobContext } from '../../src/worker/handler';
import { PermanentJobError, RetryableJobError } from '../../src/worker/handler';
import { createPayoutHandler } from '../../src/worker/handlers/payout-execute';
import { useTestDatabase } from '../helpers/database';

const db = useTestDatabase();
const silent = pino({ level: 'silent' });
let escrowSeq = 0;

beforeAll(async () => {
  await ensurePayoutIndexes(db.connection);
});

function contextFor(payload: PayoutPayload, signal = new AbortController().signal, pointOfNoReturn = async (): Promise<void> => undefined): JobContext<PayoutPayload> {
  return { jobId: 'job_test', type: 'payout.execute', payload, attempt: 1, signal, reportProgress: () => undefined, pointOfNoReturn, checkpoint: null, saveCheckpoint: async () => undefined, uploadFile: () => Promise.reject(new Error('this handler uploads no files')), logger: silent };
}

function sandboxWith(failureRate = 0, failurePoints?: SandboxFailurePoint[]): SandboxPaymentProvider {
  return new SandboxPaymentProvider({ connection: db.connection, failureRate, ...(failurePoints ? { failurePoints } : {}) });
}

function payoutsOn(provider: SandboxPaymentProvider): PayoutService {
  return createPayouts({ connection: db.connection, provider }).payouts;
}

async function heldEscrow(overrides: { payee?: string } = {}): Promise<Escrow> {
  escrowSeq += 1;
  return payoutsOn(sandboxWith()).createEscrow({
    escrowId: `escrow_h${escrowSeq}`,
    batchId: 'batch_h',
    amount: 700,
    currency: 'GBP',
    payee: overrides.payee ?? 'acct_h',
    createdBy: 'test',
  });
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the handler to fail');
    },
    (err: unknown) => err,
  );
}

describe('payout.execute handler', () => {
  it('moves no money when the point of no return is refused (a cancel was acknowledged first)', async () => {
    const sandbox = sandboxWith();
    const handler = createPayoutHandler({ payouts: payoutsOn(sandbox) });
    const escrow = await heldEscrow();
    const refused = new Error('cancel requested');
    const err = await failureOf(handler(contextFor({ escrowId: escrow.escrowId, batchId: 'batch_h' }, undefined, () => Promise.reject(refused))));
    expect(err).toBe(refused);
    expect(await sandbox.findTransfer(payoutIdempotencyKey(escrow.escrowId))).toBeNull();
    expect((await payoutsOn(sandbox).getEscrow(escrow.escrowId)).status).toBe('held');
  });

  it('pays the escrow and returns the transfer', async () => {
    const sandbox = sandboxWith();
    const handler = createPayoutHandler({ payouts: payoutsOn(sandbox) });
    const escrow = await heldEscrow();
    const result = await handler(contextFor({ escrowId: escrow.escrowId, batchId: 'batch_h' }));
    expect(result).toEqual({ escrowId: escrow.escrowId, transferId: expect.stringMatching(/^tr_/), alreadyPaid: false });
    expect((await sandbox.findTransfer(payoutIdempotencyKey(escrow.escrowId)))?.transferId).toBe(result.transferId);
  });

  it('succeeds without a new transfer when the escrow is already paid (duplicate delivery)', async () => {
    const sandbox = sandboxWith();
    const handler = createPayoutHandler({ payouts: payoutsOn(sandbox) });
    const escrow = await heldEscrow();
    const first = await handler(contextFor({ escrowId: escrow.escrowId, batchId: 'batch_h' }));
    const second = await handler(contextFor({ escrowId: escrow.escrowId, batchId: 'batch_h', isRetry: true }));
    expect(second).toEqual({ ...first, alreadyPaid: true });
    expect(await sandbox.countTransfers(payoutIdempotencyKey(escrow.escrowId))).toBe(1);
  });

  it('fails permanently for an unknown escrow', async () => {
    const handler = createPayoutHandler({ payouts: payoutsOn(sandboxWith()) });
    const err = await failureOf(handler(contextFor({ escrowId: 'escrow_unknown', batchId: 'batch_h' })));
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err).toMatchObject({ code: 'escrow_not_found' });
  });

  it('fails permanently when the batch does not match the escrow', async () => {
    const sandbox = sandboxWith();
    const handler = createPayoutHandler({ payouts: payoutsOn(sandbox) });
    const escrow = await heldEscrow();
    const err = await failureOf(handler(contextFor({ escrowId: escrow.escrowId, batchId: 'batch_wrong' })));
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err).toMatchObject({ code: 'escrow_batch_mismatch' });
    expect(await sandbox.countTransfers(payoutIdempotencyKey(escrow.escrowId))).toBe(0);
  });

  it('fails permanently when the provider refuses the payee', async () => {
    const handler = createPayoutHandler({ payouts: payoutsOn(sandboxWith()) });
    const escrow = await heldEscrow({ payee: 'acct_rejected_h' });
    const err = await failureOf(handler(contextFor({ escrowId: escrow.escrowId, batchId: 'batch_h' })));
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err).toMatchObject({ code: 'transfer_rejected' });
  });

  it('fails permanently for a payload that does not match the schema', async () => {
    const handler = createPayoutHandler({ payouts: payoutsOn(sandboxWith()) });
    const payload = { escrowId: 'escrow_x' } as unknown as PayoutPayload;
    const err = await failureOf(handler(contextFor(payload)));
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err).toMatchObject({ code: 'payload_invalid' });
  });

  it.each(['before-recording', 'after-recording'] as const)(
    'asks for a retry on a transient provider failure %s, and the retry pays exactly once',
    async (point) => {
      const flaky = sandboxWith(1, [point]);
      const escrow = await heldEscrow();
      const payload = { escrowId: escrow.escrowId, batchId: 'batch_h' };
      const err = await failureOf(createPayoutHandler({ payouts: payoutsOn(flaky) })(contextFor(payload)));
      expect(err).toBeInstanceOf(RetryableJobError);
      expect(err).toMatchObject({ code: 'transfer_unavailable' });
      const key = payoutIdempotencyKey(escrow.escrowId);
      expect(await flaky.countTransfers(key)).toBe(point === 'after-recording' ? 1 : 0);

      const healthy = sandboxWith();
      const retried = await createPayoutHandler({ payouts: payoutsOn(healthy) })(contextFor({ ...payload, isRetry: true }));
      expect(retried.alreadyPaid).toBe(false);
      expect(await healthy.countTransfers(key)).toBe(1);
      expect((await healthy.findTransfer(key))?.transferId).toBe(retried.transferId);
    },
  );

  it('stops before moving money when its signal is aborted', async () => {
    const sandbox = sandboxWith();
    const handler = createPayoutHandler({ payouts: payoutsOn(sandbox) });
    const escrow = await heldEscrow();
    const controller = new AbortController();
    controller.abort(new Error('job cancelled'));
    const err = await failureOf(handler(contextFor({ escrowId: escrow.escrowId, batchId: 'batch_h' }, controller.signal)));
    expect(err).toBeInstanceOf(RetryableJobError);
    expect(err).toMatchObject({ code: 'aborted' });
    expect(await sandbox.countTransfers(payoutIdempotencyKey(escrow.escrowId))).toBe(0);
  });
});
