import type { OperationId } from '../contract/routes';

export interface ClientOperation {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** As in the route table (Express style): each `:name` segment is filled from the call. */
  path: string;
  /** The JobsClient method that calls the route (checked against the class in jobs-client.ts). */
  clientMethod: string;
}

/**
 * Every route of the contract's table (src/contract/routes.ts) as the client calls it; null for the
 * pages a browser opens. A route added to the table without an entry here does not compile: give it
 * a JobsClient method and an entry. test/integration/client.test.ts checks each entry's method and
 * path against the table and calls every method against the real API.
 */
export const CLIENT_OPERATIONS = {
  healthz: { method: 'GET', path: '/healthz', clientMethod: 'health' },
  readyz: { method: 'GET', path: '/readyz', clientMethod: 'ready' },
  metrics: { method: 'GET', path: '/metrics', clientMethod: 'metrics' },
  openapi: { method: 'GET', path: '/openapi.json', clientMethod: 'openApiDocument' },
  docs: null,
  dashboard: null,
  // The dashboard page's own data (status lists), not part of what a service calls.
  dashboardContract: null,
  whoami: { method: 'GET', path: '/auth/whoami', clientMethod: 'whoami' },

  enqueueJob: { method: 'POST', path: '/jobs', clientMethod: 'enqueue' },
  enqueueJobs: { method: 'POST', path: '/jobs/batch', clientMethod: 'enqueueBatch' },
  listJobs: { method: 'GET', path: '/jobs', clientMethod: 'listOwnJobs' },
  leaseJobs: { method: 'GET', path: '/jobs/lease', clientMethod: 'lease' },
  heartbeatJob: { method: 'POST', path: '/jobs/:jobId/heartbeat', clientMethod: 'heartbeat' },
  succeedJob: { method: 'POST', path: '/jobs/:jobId/succeed', clientMethod: 'succeed' },
  failJob: { method: 'POST', path: '/jobs/:jobId/fail', clientMethod: 'fail' },
  snoozeJob: { method: 'POST', path: '/jobs/:jobId/snooze', clientMethod: 'snooze' },
  reportJobs: { method: 'POST', path: '/jobs/reports', clientMethod: 'reportBatch' },
  uploadResultFile: { method: 'POST', path: '/jobs/:jobId/files', clientMethod: 'uploadFile' },
  getResultFile: { method: 'GET', path: '/jobs/:jobId/files/:fileId', clientMethod: 'downloadFile' },
  cancelJob: { method: 'POST', path: '/jobs/:jobId/cancel', clientMethod: 'cancel' },
  getJob: { method: 'GET', path: '/jobs/:jobId', clientMethod: 'getJob' },

  createEscrow: { method: 'POST', path: '/escrows', clientMethod: 'createEscrow' },
  listEscrows: { method: 'GET', path: '/escrows', clientMethod: 'listEscrows' },
  getEscrow: { method: 'GET', path: '/escrows/:escrowId', clientMethod: 'getEscrow' },

  createAsset: { method: 'POST', path: '/assets', clientMethod: 'uploadAsset' },
  addAssetVersion: { method: 'POST', path: '/assets/:assetId', clientMethod: 'uploadAssetVersion' },
  getAsset: { method: 'GET', path: '/assets/:assetId', clientMethod: 'getAsset' },
  getAssetContent: { method: 'GET', path: '/assets/:assetId/content', clientMethod: 'getAssetContent' },

  listQueue: { method: 'GET', path: '/admin/jobs/queue', clientMethod: 'listJobs' },
  queueStats: { method: 'GET', path: '/admin/jobs/stats', clientMethod: 'stats' },
  throughput: { method: 'GET', path: '/admin/jobs/throughput', clientMethod: 'throughput' },
  bulkJobs: { method: 'POST', path: '/admin/jobs/bulk', clientMethod: 'bulkJobs' },
  listWorkers: { method: 'GET', path: '/admin/workers', clientMethod: 'listWorkers' },
  requeueJob: { method: 'POST', path: '/admin/jobs/:jobId/requeue', clientMethod: 'requeue' },
  listJobTypes: { method: 'GET', path: '/admin/types', clientMethod: 'listTypes' },
  updateJobType: { method: 'PATCH', path: '/admin/types/:type', clientMethod: 'updateType' },

  createSchedule: { method: 'POST', path: '/admin/schedules', clientMethod: 'createSchedule' },
  listSchedules: { method: 'GET', path: '/admin/schedules', clientMethod: 'listSchedules' },
  getSchedule: { method: 'GET', path: '/admin/schedules/:name', clientMethod: 'getSchedule' },
  updateSchedule: { method: 'PATCH', path: '/admin/schedules/:name', clientMethod: 'updateSchedule' },
  deleteSchedule: { method: 'DELETE', path: '/admin/schedules/:name', clientMethod: 'deleteSchedule' },
} as const satisfies Record<OperationId, ClientOperation | null>;

export type ClientOperationId = { [K in keyof typeof CLIENT_OPERATIONS]: (typeof CLIENT_OPERATIONS)[K] extends null ? never : K }[keyof typeof CLIENT_OPERATIONS];
