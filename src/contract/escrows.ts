import { z } from 'zod';

import { escrowInputSchema } from '../payouts/escrow-input';
import { pageMeta } from './admin';
import { wireDate } from './schema';

/**
 * Escrows: money held for a payee until its payout job runs. The request schema is the payouts
 * module's own (the service parses every new escrow with it, whoever the caller).
 */

export const escrowRequest = escrowInputSchema.meta({ description: 'A new escrow; `escrowId` is generated (escrow_ + hex) when omitted.' });

export const escrowIdParams = z.object({ escrowId: z.string().meta({ description: 'An escrow id (an unknown or malformed one: 404).' }) });

export const escrow = z.strictObject({
  escrowId: z.string(),
  batchId: z.string(),
  amount: z.number().int().min(1).meta({ description: 'Minor units (cents).' }),
  currency: z.string().regex(/^[A-Z]{3}$/),
  payee: z.string(),
  status: z.enum(['held', 'paid']),
  transferId: z.string().nullable().meta({ description: 'Set exactly when paid.' }),
  paidAt: wireDate.nullable(),
  createdBy: z.string(),
  tenant: z.string().nullable().meta({ description: 'The tenant of the token that created it: only that tenant (and admins without a tenant) can see it.' }),
  createdAt: wireDate,
  updatedAt: wireDate,
});

export const escrowPage = z.strictObject({ meta: pageMeta, data: z.array(escrow).meta({ description: 'Newest first.' }) });
