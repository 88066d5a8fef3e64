import type { z } from 'zod';

import type { pageMeta, queuePage, queueStats, throughput, workerList } from '../contract/admin';
import type { WorkerView } from '../model/worker';
import type { asset, uploadReceipt } from '../contract/assets';
import type { escrow } from '../contract/escrows';
import type { enqueueResponse, failResponse, heartbeatResponse, jobDocument, leaseResponse, resultFileReceipt, resultFileWire, snoozeResponse } from '../contract/jobs';
import type { schedule } from '../contract/schedules';
import { toWireDate, toWireDateOrNull } from '../contract/schema';
import type { QueuePage, QueueStats, Throughput } from '../jobs/admin-service';
import type { Asset, UploadReceipt } from '../model/asset';
import type { EscrowRecord } from '../model/escrow';
import type { Job, JobError, LeasedJob, ResultFile } from '../model/job';
import type { Schedule } from '../model/schedule';

/**
 * Domain objects to the wire: one function per shape, typed against the contract's response
 * schema (z.input), so a field added to a schema does not compile until it is mapped here, and a
 * field the domain gains does not reach the wire by accident.
 */

type Wire<S extends z.ZodType> = z.input<S>;

function wireError(error: JobError): { code?: string; message: string } {
  return { ...(typeof error.code === 'string' ? { code: error.code } : {}), message: error.message };
}

export function toJobWire(job: Job): Wire<typeof jobDocument> {
  return {
    jobId: job.jobId,
    type: job.type,
    status: job.status,
    priority: job.priority,
    payload: job.payload,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    nextRunAt: toWireDate(job.nextRunAt),
    leaseId: job.leaseId,
    leaseExpiresAt: toWireDateOrNull(job.leaseExpiresAt),
    workerId: job.workerId,
    progress: job.progress,
    result: job.result,
    lastError: job.lastError ? wireError(job.lastError) : null,
    attempts: job.attempts.map((a) => ({
      attempt: a.attempt,
      leaseId: a.leaseId,
      workerId: a.workerId,
      leasedAt: toWireDate(a.leasedAt),
      finishedAt: toWireDateOrNull(a.finishedAt),
      outcome: a.outcome,
      error: a.error ? wireError(a.error) : null,
    })),
    cancelRequested: job.cancelRequested,
    idempotencyKey: job.idempotencyKey,
    tenant: job.tenant,
    dependsOn: [...job.dependsOn],
    pendingParents: [...job.pendingParents],
    partial: job.partial,
    concurrencyKey: job.concurrencyKey,
    dedupe: job.dedupe ? { key: job.dedupe.key, mode: job.dedupe.mode, ...(job.dedupe.seconds === undefined ? {} : { seconds: job.dedupe.seconds }) } : null,
    checkpoint: job.checkpoint ?? null,
    tags: [...job.tags],
    files: job.files.map((f) => toResultFileWire(job.jobId, f)),
    callbackUrl: job.callbackUrl,
    callback: job.callback
      ? {
          url: job.callback.url,
          status: job.callback.status,
          attempts: job.callback.attempts,
          ...(job.callback.lastError === null ? {} : { lastError: job.callback.lastError }),
          ...(job.callback.deliveredAt === null ? {} : { deliveredAt: toWireDate(job.callback.deliveredAt) }),
          ...(job.callback.deliveryId === null ? {} : { deliveryId: job.callback.deliveryId }),
          ...(job.callback.nextAttemptAt === null ? {} : { nextAttemptAt: toWireDate(job.callback.nextAttemptAt) }),
        }
      : null,
    createdBy: job.createdBy,
    createdByRole: job.createdByRole,
    cancelRequestedAt: toWireDateOrNull(job.cancelRequestedAt),
    irreversibleAt: toWireDateOrNull(job.irreversibleAt),
    createdAt: toWireDate(job.createdAt),
    updatedAt: toWireDate(job.updatedAt),
    startedAt: toWireDateOrNull(job.startedAt),
    completedAt: toWireDateOrNull(job.completedAt),
  };
}

/** A result file as the job document lists it, with the URL it is downloaded from. */
export function toResultFileWire(jobId: string, file: ResultFile): Wire<typeof resultFileWire> {
  return { fileId: file.fileId, name: file.name, contentType: file.contentType, size: file.size, url: `/jobs/${jobId}/files/${file.fileId}` };
}

export function toResultFileReceiptWire(file: ResultFile): Wire<typeof resultFileReceipt> {
  return { fileId: file.fileId, name: file.name, contentType: file.contentType, size: file.size };
}

/** `deduplicated` only for enqueues that asked for dedupe (a plain enqueue's answer is as before). */
export function toEnqueueWire(job: Job, deduplicated?: boolean): Wire<typeof enqueueResponse> {
  return {
    jobId: job.jobId,
    status: job.status,
    type: job.type,
    nextRunAt: toWireDate(job.nextRunAt),
    attempt: job.attempt,
    ...(deduplicated === undefined ? {} : { deduplicated }),
  };
}

export function toLeaseWire(lease: { leasedAt: Date; jobs: readonly LeasedJob[] }): Wire<typeof leaseResponse> {
  return {
    leasedAt: toWireDate(lease.leasedAt),
    jobs: lease.jobs.map((j) => ({
      jobId: j.jobId,
      type: j.type,
      payload: j.payload,
      attempt: j.attempt,
      leaseId: j.leaseId,
      leaseExpiresAt: toWireDate(j.leaseExpiresAt),
      checkpoint: j.checkpoint ?? null,
      // Only for a job enqueued with tracing on: the answer is unchanged otherwise.
      ...(j.traceparent === null ? {} : { traceparent: j.traceparent }),
      owner: { sub: j.owner.sub, role: j.owner.role, tenant: j.owner.tenant },
    })),
  };
}

export function toHeartbeatWire(beat: { jobId: string; leaseExpiresAt: Date; cancelRequested: boolean }): Wire<typeof heartbeatResponse> {
  return { jobId: beat.jobId, leaseExpiresAt: toWireDate(beat.leaseExpiresAt), cancelRequested: beat.cancelRequested };
}

export function toSnoozeWire(snoozed: { jobId: string; status: 'queued' | 'cancelled'; attempt: number; nextRunAt: Date }): Wire<typeof snoozeResponse> {
  return { jobId: snoozed.jobId, status: snoozed.status, attempt: snoozed.attempt, nextRunAt: toWireDate(snoozed.nextRunAt) };
}

export function toFailWire(failed: { jobId: string; status: Job['status']; attempt: number; nextRunAt: Date }): Wire<typeof failResponse> {
  return { jobId: failed.jobId, status: failed.status, attempt: failed.attempt, nextRunAt: toWireDate(failed.nextRunAt) };
}

export function toPageMetaWire(page: { page: number; perPage: number; total: number; totalPages: number }): Wire<typeof pageMeta> {
  return { page: page.page, per_page: page.perPage, total: page.total, total_pages: page.totalPages };
}

export function toQueuePageWire(page: QueuePage): Wire<typeof queuePage> {
  return { meta: toPageMetaWire(page), data: page.jobs.map(toJobWire) };
}

export function toQueueStatsWire(stats: QueueStats): Wire<typeof queueStats> {
  return {
    totalJobs: stats.totalJobs,
    statusCounts: { ...stats.statusCounts },
    oldestQueuedJobAgeMs: stats.oldestQueuedJobAgeMs,
    byType: { ...stats.byType },
    oldestQueuedJobAgeMsByType: { ...stats.oldestQueuedJobAgeMsByType },
    scheduled: stats.scheduled,
    scheduledByType: { ...stats.scheduledByType },
    partialSucceeded: stats.partialSucceeded,
    partialSucceededByType: { ...stats.partialSucceededByType },
    generatedAt: toWireDate(stats.generatedAt),
  };
}

export function toThroughputWire(chart: Throughput): Wire<typeof throughput> {
  return {
    from: toWireDate(chart.from),
    to: toWireDate(chart.to),
    bucketSeconds: 60,
    buckets: chart.buckets.map((b) => ({ start: toWireDate(b.start), succeeded: b.succeeded, failed: b.failed, dlq: b.dlq })),
  };
}

export function toWorkerListWire(workers: readonly WorkerView[]): Wire<typeof workerList> {
  return {
    data: workers.map((w) => ({
      workerId: w.workerId,
      types: w.types === null ? null : [...w.types],
      tenant: w.tenant,
      lastSeenAt: toWireDate(w.lastSeenAt),
      lastCall: w.lastCall,
      jobs: w.jobs.map((j) => ({ jobId: j.jobId, type: j.type, attempt: j.attempt, progress: j.progress, leaseExpiresAt: toWireDate(j.leaseExpiresAt) })),
    })),
  };
}

export function toScheduleWire(s: Schedule): Wire<typeof schedule> {
  return {
    name: s.name,
    type: s.type,
    payload: s.payload,
    cron: s.cron,
    timeZone: s.timeZone,
    paused: s.paused,
    catchUp: s.catchUp,
    priority: s.priority,
    nextRunAt: toWireDateOrNull(s.nextRunAt),
    lastRunAt: toWireDateOrNull(s.lastRunAt),
    lastJobId: s.lastJobId,
    lastError: s.lastError ? { ...(typeof s.lastError.code === 'string' ? { code: s.lastError.code } : {}), message: s.lastError.message, at: toWireDate(s.lastError.at) } : null,
    createdBy: s.createdBy,
    tenant: s.tenant,
    createdAt: toWireDate(s.createdAt),
    updatedAt: toWireDate(s.updatedAt),
  };
}

export function toUploadReceiptWire(receipt: UploadReceipt): Wire<typeof uploadReceipt> {
  return { assetId: receipt.assetId, versionNumber: receipt.versionNumber, contentType: receipt.contentType, size: receipt.size };
}

/** Everything but storage ids (the GridFS file of each version). */
export function toAssetWire(a: Asset): Wire<typeof asset> {
  return {
    assetId: a.assetId,
    filename: a.filename,
    contentType: a.contentType,
    size: a.size,
    versionNumber: a.versionNumber,
    processed: a.processed,
    thumbnailAssetIds: [...a.thumbnailAssetIds],
    derivedFrom: a.derivedFrom ? { assetId: a.derivedFrom.assetId, versionNumber: a.derivedFrom.versionNumber, width: a.derivedFrom.width } : null,
    versions: a.versions.map((v) => ({ versionNumber: v.versionNumber, contentType: v.contentType, size: v.size, createdAt: toWireDate(v.createdAt) })),
    createdBy: a.createdBy,
    createdByRole: a.createdByRole,
    tenant: a.tenant,
    createdAt: toWireDate(a.createdAt),
    updatedAt: toWireDate(a.updatedAt),
  };
}

/** The creator's role is kept for access checks, not shown. */
export function toEscrowWire(e: EscrowRecord): Wire<typeof escrow> {
  return {
    escrowId: e.escrowId,
    batchId: e.batchId,
    amount: e.amount,
    currency: e.currency,
    payee: e.payee,
    status: e.status,
    transferId: e.transferId,
    paidAt: toWireDateOrNull(e.paidAt),
    createdBy: e.createdBy,
    tenant: e.tenant,
    createdAt: toWireDate(e.createdAt),
    updatedAt: toWireDate(e.updatedAt),
  };
}
