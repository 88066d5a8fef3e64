import type { Connection } from 'mongoose';

import { createEscrowRepository } from '../storage/escrow-repository';
import { createPayoutTransferRepository } from '../storage/payout-transfer-repository';
import type { PaymentProvider } from './payment-provider';
import { PayoutService } from './payout-service';
import { SandboxPaymentProvider, type SandboxProviderOptions } from './sandbox-provider';

export interface PayoutsParams {
  connection: Connection;
  /** A real provider adapter; when absent, the sandbox provider on `connection` is used. */
  provider?: PaymentProvider;
  /** Failure injection etc. for the sandbox (ignored when `provider` is given). */
  sandbox?: Omit<SandboxProviderOptions, 'connection'>;
  now?: () => Date;
}

/** Composes the payout domain on one connection (for src/wiring.ts, main-*.ts, scripts and tests). */
export function createPayouts(params: PayoutsParams): { payouts: PayoutService; provider: PaymentProvider } {
  const provider = params.provider ?? new SandboxPaymentProvider({ ...params.sandbox, connection: params.connection });
  const payouts = new PayoutService({
    escrows: createEscrowRepository(params.connection),
    provider,
    ...(params.now ? { now: params.now } : {}),
  });
  return { payouts, provider };
}

/**
 * Creates the escrow and sandbox-transfer indexes (connections run with autoIndex off). Call once at
 * start-up; the sandbox also ensures its unique index itself before its first transfer.
 */
export async function ensurePayoutIndexes(connection: Connection): Promise<void> {
  await createEscrowRepository(connection).ensureIndexes();
  await createPayoutTransferRepository(connection).ensureIndexes();
}
