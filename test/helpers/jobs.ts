import type { Express } from 'express';
import request from 'supertest';

import { bearer } from './tokens';

export const thumbnailPayload = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  assetId: 'asset_0123456789abcdef01234567',
  versionNumber: 1,
  ...overrides,
});

export const payoutPayload = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  batchId: 'batch_1',
  escrowId: `escrow_${Math.random().toString(16).slice(2, 10)}`,
  ...overrides,
});

/** Enqueues through the API as a service and returns the job id. */
export async function enqueueJob(app: Express, body: Record<string, unknown>, sub = 'service-1'): Promise<string> {
  const res = await request(app).post('/jobs').set(bearer('service', sub)).send(body);
  if (res.status !== 201) throw new Error(`enqueue failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.jobId as string;
}

export interface LeasedJobBody {
  jobId: string;
  type: string;
  payload: Record<string, unknown>;
  attempt: number;
  leaseId: string;
  leaseExpiresAt: string;
  checkpoint?: unknown;
}

export async function leaseJobs(app: Express, params: { workerId?: string; limit?: number; type?: string } = {}): Promise<LeasedJobBody[]> {
  const query: Record<string, string> = { limit: String(params.limit ?? 1) };
  if (params.type) query.type = params.type;
  const res = await request(app)
    .get('/jobs/lease')
    .query(query)
    .set(bearer('worker'))
    .set('X-Worker-Id', params.workerId ?? 'worker-a');
  if (res.status !== 200) throw new Error(`lease failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.jobs as LeasedJobBody[];
}

/** POSTs a worker report (heartbeat, succeed, fail, snooze) and returns the response. */
export function report(app: Express, jobId: string, action: 'heartbeat' | 'succeed' | 'fail' | 'snooze', body: object, workerId = 'worker-a'): request.Test {
  return request(app).post(`/jobs/${jobId}/${action}`).set(bearer('worker')).set('X-Worker-Id', workerId).send(body);
}
