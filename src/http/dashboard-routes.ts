import path from 'node:path';

import express, { Router, type RequestHandler } from 'express';

import { dashboardContractValue } from '../contract/operations';
import { ROUTES } from '../contract/routes';
import { NotFoundError } from '../errors';
import { labelRoute } from './metrics-routes';
import { ANSWERED, mountRoute } from './mount-route';

/** Plain HTML/CSS/JS, no build step; everything the page needs is served from here (no CDN). */
export const DASHBOARD_DIR = path.join(__dirname, '..', 'dashboard', 'static');

// The page talks to this origin only; no inline script or style, so an injected string cannot run.
const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  // A new deploy's page and scripts are picked up on the next load.
  res.setHeader('Cache-Control', 'no-cache');
  next();
};

/**
 * `/dashboard`: the operator page and its assets, public (API.md). The data it shows comes from the
 * admin API with the token the admin pastes in (kept in sessionStorage by the page).
 */
export function dashboardRoutes(): Router {
  const router = Router();
  const serveStatic = express.static(DASHBOARD_DIR, { index: false, fallthrough: true, dotfiles: 'ignore' });

  mountRoute(router, ROUTES.dashboard, { before: [securityHeaders] })(async ({ res }) => {
    res.sendFile(path.join(DASHBOARD_DIR, 'index.html'));
    return ANSWERED;
  });

  // The page's status lists come from here, not from copies in app.js.
  const contract = dashboardContractValue();
  mountRoute(router, ROUTES.dashboardContract, { before: [securityHeaders] })(async () => ({ status: 200, body: contract }));

  // Assets are files, not API routes: served by middleware, so the OpenAPI document lists /dashboard only.
  router.use('/dashboard', labelRoute('/dashboard/*'), securityHeaders, serveStatic, (req) => {
    throw new NotFoundError('not_found', `no dashboard file ${req.path}`);
  });

  return router;
}
