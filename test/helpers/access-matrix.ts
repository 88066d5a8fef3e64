import type { Role } from '../../src/model/principal';

/**
 * Who may call each route, written by hand from API.md: an oracle independent of the route table
 * (src/contract/routes.ts). test/integration/auth-matrix.test.ts tries every role against it;
 * test/integration/contract.test.ts checks the route table's access agrees with it.
 */

export type Access = 'public' | 'any-role' | readonly Role[];

const ADMIN: readonly Role[] = ['admin'];
const ENQUEUERS: readonly Role[] = ['admin', 'service'];
const WORKERS: readonly Role[] = ['admin', 'worker'];
const JOB_READERS: readonly Role[] = ['admin', 'service', 'user'];
const ASSET_READERS: readonly Role[] = ['admin', 'service', 'worker'];

export const ACCESS_MATRIX: Readonly<Record<string, Access>> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /openapi.json': 'public',
  'GET /docs': 'public',
  'GET /dashboard': 'public',
  'GET /dashboard/contract.json': 'public',
  'GET /auth/whoami': 'any-role',
  'POST /jobs': ENQUEUERS,
  'POST /jobs/batch': ENQUEUERS,
  'GET /jobs': JOB_READERS,
  'GET /jobs/lease': WORKERS,
  'POST /jobs/:jobId/heartbeat': WORKERS,
  'POST /jobs/:jobId/succeed': WORKERS,
  'POST /jobs/:jobId/fail': WORKERS,
  'POST /jobs/:jobId/snooze': WORKERS,
  'POST /jobs/reports': WORKERS,
  'POST /jobs/:jobId/files': WORKERS,
  'GET /jobs/:jobId/files/:fileId': JOB_READERS,
  'POST /jobs/:jobId/cancel': JOB_READERS,
  'GET /jobs/:jobId': JOB_READERS,
  'GET /admin/jobs/queue': ADMIN,
  'GET /admin/jobs/stats': ADMIN,
  'GET /admin/jobs/throughput': ADMIN,
  'POST /admin/jobs/bulk': ADMIN,
  'GET /admin/workers': ADMIN,
  'POST /admin/jobs/:jobId/requeue': ADMIN,
  'GET /admin/types': ADMIN,
  'PATCH /admin/types/:type': ADMIN,
  'POST /admin/schedules': ADMIN,
  'GET /admin/schedules': ADMIN,
  'GET /admin/schedules/:name': ADMIN,
  'PATCH /admin/schedules/:name': ADMIN,
  'DELETE /admin/schedules/:name': ADMIN,
  'POST /assets': ENQUEUERS,
  'POST /assets/:assetId': ENQUEUERS,
  'GET /assets/:assetId': ASSET_READERS,
  'GET /assets/:assetId/content': ASSET_READERS,
  'POST /escrows': ADMIN,
  'GET /escrows': ADMIN,
  'GET /escrows/:escrowId': ADMIN,
};
