import { Router } from 'express';

import { NotFoundError } from '../errors';
import { parseEscrowInput } from '../payouts/escrow-input';
import type { PayoutService } from '../payouts/payout-service';
import { requirePermission } from './auth';
import { principalOf } from './request-context';

export interface EscrowRoutesDeps {
  payouts: Pick<PayoutService, 'createEscrow' | 'getEscrow'>;
}

/** Escrows are money held for payees; only admins create or read them. */
export function escrowRoutes(deps: EscrowRoutesDeps): Router {
  const router = Router();

  router.post('/escrows', requirePermission('admin'), async (req, res) => {
    const input = parseEscrowInput(req.body);
    const escrow = await deps.payouts.createEscrow({ ...input, createdBy: principalOf(req).sub });
    res.status(201).json(escrow);
  });

  router.get('/escrows/:escrowId', requirePermission('admin'), async (req, res) => {
    const { escrowId } = req.params;
    // Always a string for this path; the type allows string[] for wildcard routes.
    if (typeof escrowId !== 'string') throw new NotFoundError('escrow_not_found', 'no such escrow');
    res.json(await deps.payouts.getEscrow(escrowId));
  });

  return router;
}
