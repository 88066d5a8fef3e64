import { Router } from 'express';

import { ownershipOf } from '../auth/access';
import { NotFoundError } from '../errors';
import { parseEscrowInput } from '../payouts/escrow-input';
import type { Escrow, PayoutService } from '../payouts/payout-service';
import { requirePermission } from './auth';
import { readJsonBody } from './body';
import { pageMeta, paginationQuery } from './pagination';
import { principalOf } from './request-context';
import { parseRequest } from './validation';

export interface EscrowRoutesDeps {
  payouts: Pick<PayoutService, 'createEscrow' | 'readEscrow' | 'listEscrows'>;
}

/** An escrow as answered: the creator's role is kept for access checks, not shown. */
function escrowView(escrow: Escrow): Omit<Escrow, 'createdByRole'> {
  const { createdByRole: _role, ...view } = escrow;
  return view;
}

/** Escrows are money held for payees; only admins create or read them (a tenant admin: its tenant's). */
export function escrowRoutes(deps: EscrowRoutesDeps): Router {
  const router = Router();

  router.post('/escrows', requirePermission('admin'), readJsonBody, async (req, res) => {
    const input = parseEscrowInput(req.body);
    const escrow = await deps.payouts.createEscrow({ ...input, ...ownershipOf(principalOf(req)) });
    res.status(201).json(escrowView(escrow));
  });

  router.get('/escrows', requirePermission('admin'), async (req, res) => {
    const query = parseRequest(paginationQuery, req.query, 'query');
    const page = await deps.payouts.listEscrows(principalOf(req), { page: query.page, perPage: query.per_page });
    res.json({ meta: pageMeta(page), data: page.escrows.map(escrowView) });
  });

  router.get('/escrows/:escrowId', requirePermission('admin'), async (req, res) => {
    const { escrowId } = req.params;
    // Always a string for this path; the type allows string[] for wildcard routes.
    if (typeof escrowId !== 'string') throw new NotFoundError('escrow_not_found', 'no such escrow');
    res.json(escrowView(await deps.payouts.readEscrow(principalOf(req), escrowId)));
  });

  return router;
}
