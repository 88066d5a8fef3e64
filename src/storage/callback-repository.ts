import type { Connection } from 'mongoose';

import type { CallbackPayload } from '../model/callback';
import type { JobError } from '../model/job';
import { jobModel, type JobDocument, type JobModel, type StoredCallback } from './job-model';

/**
 * The callback deliveries' operations, on the jobs collection: a delivery is owed while a finished
 * job has a callbackDueAt (set at enqueue, so the update that finishes the job — any of them — is the
 * one that makes it due). Attempts are leased like jobs: taking one moves callbackDueAt past the
 * attempt's lease, conditional on the value read, so two API instances never run one attempt twice;
 * its outcome is written only under that lease.
 */

const FINISHED = ['succeeded', 'failed', 'dlq', 'cancelled'];

/** A due delivery, with what taking it is conditional on. */
export interface DueCallback {
  jobId: string;
  dueAt: Date;
  /** false: the job finished and no attempt was made yet (the delivery record is created by the first). */
  started: boolean;
  url: string;
}

/** A delivery attempt this instance took: what to send, and where. */
export interface TakenCallback {
  jobId: string;
  url: string;
  deliveryId: string;
  /** This attempt's number, from 1. */
  attempt: number;
  leaseId: string;
  payload: CallbackPayload;
}

function wireError(error: JobError | null | undefined): CallbackPayload['lastError'] {
  if (!error) return null;
  return { ...(typeof error.code === 'string' ? { code: error.code } : {}), message: error.message };
}

export class CallbackRepository {
  private readonly jobs: JobModel;

  constructor(connection: Connection) {
    this.jobs = jobModel(connection);
  }

  /** Deliveries due at `now`, longest-due first (served by the partial `callbacks_due` index). */
  async findDue(params: { now: Date; limit: number }): Promise<DueCallback[]> {
    if (params.limit <= 0) return [];
    const docs = await this.jobs
      .find({ status: { $in: FINISHED }, callbackDueAt: { $lte: params.now } }, { _id: 1, callbackDueAt: 1, callback: 1, callbackUrl: 1 })
      .sort({ callbackDueAt: 1 })
      .limit(params.limit)
      .lean<Pick<JobDocument, '_id' | 'callbackDueAt' | 'callback' | 'callbackUrl'>[]>();
    return docs
      .filter((d) => typeof d.callbackUrl === 'string')
      .map((d) => ({ jobId: d._id, dueAt: d.callbackDueAt!, started: d.callback !== undefined && d.callback !== null, url: d.callbackUrl! }));
  }

  /**
   * Takes the next attempt of a due delivery until `leaseUntil`, conditional on the due time and
   * the start state read; null when another instance took it first (or it changed). The first attempt
   * creates the delivery record with `newDeliveryId`.
   */
  async take(params: { due: DueCallback; leaseId: string; leaseUntil: Date; newDeliveryId: string }): Promise<TakenCallback | null> {
    const { due } = params;
    const filter = { _id: due.jobId, status: { $in: FINISHED }, callbackDueAt: due.dueAt, callback: due.started ? { $ne: null } : null };
    const lease = { callbackDueAt: params.leaseUntil, callbackLeaseId: params.leaseId };
    const update = due.started
      ? { $set: lease, $inc: { 'callback.attempts': 1 } }
      : {
          $set: {
            ...lease,
            callback: { url: due.url, status: 'pending', attempts: 1, lastError: null, deliveredAt: null, deliveryId: params.newDeliveryId } satisfies StoredCallback,
          },
        };
    const doc = await this.jobs.findOneAndUpdate(filter, update, { new: true }).lean<JobDocument>();
    if (!doc || !doc.callback || !doc.callbackUrl) return null;
    return {
      jobId: doc._id,
      url: doc.callbackUrl,
      deliveryId: doc.callback.deliveryId,
      attempt: doc.callback.attempts,
      leaseId: params.leaseId,
      payload: {
        jobId: doc._id,
        type: doc.type,
        status: doc.status,
        attempt: doc.attempt,
        result: doc.result ?? null,
        lastError: wireError(doc.lastError),
        completedAt: doc.completedAt ? doc.completedAt.toISOString() : null,
      },
    };
  }

  /** The attempt got a 2xx: delivered, nothing more owed. False when the lease was no longer ours. */
  async recordDelivered(params: { jobId: string; leaseId: string; now: Date }): Promise<boolean> {
    const result = await this.jobs.updateOne(
      { _id: params.jobId, callbackLeaseId: params.leaseId },
      { $set: { 'callback.status': 'delivered', 'callback.deliveredAt': params.now, 'callback.lastError': null }, $unset: { callbackDueAt: '', callbackLeaseId: '' } },
    );
    return result.matchedCount === 1;
  }

  /** The attempt failed: retried at `retryAt`, or (null) given up as failed. False when the lease was no longer ours. */
  async recordFailed(params: { jobId: string; leaseId: string; error: string; retryAt: Date | null }): Promise<boolean> {
    const result = await this.jobs.updateOne(
      { _id: params.jobId, callbackLeaseId: params.leaseId },
      params.retryAt
        ? { $set: { 'callback.lastError': params.error, callbackDueAt: params.retryAt }, $unset: { callbackLeaseId: '' } }
        : { $set: { 'callback.lastError': params.error, 'callback.status': 'failed' }, $unset: { callbackDueAt: '', callbackLeaseId: '' } },
    );
    return result.matchedCount === 1;
  }
}
