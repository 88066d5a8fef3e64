import { randomBytes } from 'node:crypto';

import type { Job, JobStatus } from '../../src/model/job';
import type { JobDocument } from '../../src/storage/job-model';

/**
 * A job document as the repository writes it, for seeding a collection directly (insertMany) with
 * states that would take many API calls to reach. Fields follow the status: a leased job has a
 * lease, a finished one has completedAt, and so on.
 */
export function jobDocument(params: {
  status: JobStatus;
  createdAt: Date;
  type?: string;
  createdBy?: string;
  completedAt?: Date | null;
  tenant?: string | null;
  partial?: boolean;
  /** Default: createdAt (due since it was created). */
  nextRunAt?: Date;
  tags?: string[];
}): JobDocument & Pick<Job, 'tags' | 'files'> & { callbackUrl: string | null; callback: null; traceparent: string | null; actsFor: null } {
  const { status, createdAt } = params;
  const type = params.type ?? 'thumbnail.create';
  const finished = status === 'succeeded' || status === 'failed' || status === 'dlq' || status === 'cancelled';
  const attempt = status === 'queued' || status === 'waiting' || status === 'cancelled' ? 0 : 1;
  const leaseId = status === 'leased' ? `lease_${randomBytes(12).toString('hex')}` : null;
  const failed = status === 'failed' || status === 'dlq';
  const completedAt = params.completedAt !== undefined ? params.completedAt : finished ? new Date(createdAt.getTime() + 1_000) : null;
  return {
    _id: `job_${randomBytes(12).toString('hex')}`,
    type,
    status,
    priority: 50,
    payload: type === 'payout.execute' ? { batchId: 'batch_1', escrowId: 'escrow_1' } : { assetId: 'asset_0123456789abcdef01234567', versionNumber: 1 },
    attempt,
    maxAttempts: 3,
    nextRunAt: params.nextRunAt ?? createdAt,
    leaseId,
    leaseExpiresAt: leaseId ? new Date(createdAt.getTime() + 300_000) : null,
    workerId: attempt > 0 ? 'worker-seed' : null,
    slotId: null,
    concurrencyKey: null,
    keySlotId: null,
    dedupe: null,
    checkpoint: null,
    progress: status === 'succeeded' ? 100 : 0,
    result: status === 'succeeded' ? { ok: true } : null,
    lastError: failed ? { code: 'boom', message: 'the handler threw' } : null,
    attempts:
      attempt > 0
        ? [
            {
              attempt: 1,
              leaseId: leaseId ?? `lease_${randomBytes(12).toString('hex')}`,
              workerId: 'worker-seed',
              leasedAt: createdAt,
              finishedAt: finished ? completedAt : null,
              outcome: status === 'succeeded' ? 'succeeded' : failed ? 'failed' : null,
              error: failed ? { code: 'boom', message: 'the handler threw' } : null,
            },
          ]
        : [],
    cancelRequested: false,
    idempotencyKey: null,
    tenant: params.tenant ?? null,
    dependsOn: [],
    pendingParents: [],
    hasChildren: false,
    tags: params.tags ?? [],
    files: [],
    callbackUrl: null,
    callback: null,
    traceparent: null,
    partial: params.partial ?? false,
    createdBy: params.createdBy ?? 'service-1',
    createdByRole: 'service',
    actsFor: null,
    cancelRequestedAt: null,
    irreversibleAt: null,
    createdAt,
    updatedAt: completedAt ?? createdAt,
    startedAt: attempt > 0 ? createdAt : null,
    completedAt,
  };
}
