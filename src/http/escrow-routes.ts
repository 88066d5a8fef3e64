import { Router } from 'express';

import { ROUTES } from '../contract/routes';
import { ownershipOf } from '../auth/access';
import { parseEscrowInput } from '../payouts/escrow-input';
import type { PayoutService } from '../payouts/payout-service';
import { mountRoute } from './mount-route';
import { toEscrowWire, toPageMetaWire } from './wire';

export interface EscrowRoutesDeps {
  payouts: Pick<PayoutService, 'createEscrow' | 'readEscrow' | 'listEscrows'>;
}

/** Escrows are money held for payees; only admins create or read them (a tenant admin: its tenant's). */
export function escrowRoutes(deps: EscrowRoutesDeps): Router {
  const router = Router();

  // The payouts module's own parser: it names failing fields as it does for every other caller.
  mountRoute(router, ROUTES.createEscrow, { parseBody: parseEscrowInput })(async ({ principal, body }) => {
    const escrow = await deps.payouts.createEscrow({ ...body, ...ownershipOf(principal) });
    return { status: 201, body: toEscrowWire(escrow) };
  });

  mountRoute(router, ROUTES.listEscrows)(async ({ principal, query }) => {
    const page = await deps.payouts.listEscrows(principal, { page: query.page, perPage: query.per_page });
    return { status: 200, body: { meta: toPageMetaWire(page), data: page.escrows.map(toEscrowWire) } };
  });

  mountRoute(router, ROUTES.getEscrow)(async ({ principal, params }) => ({ status: 200, body: toEscrowWire(await deps.payouts.readEscrow(principal, params.escrowId)) }));

  return router;
}
