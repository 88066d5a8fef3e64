import { EventEmitter } from 'node:events';

import type { JobStatus } from '../model/job';

/** One event per state transition; metrics and the dashboard subscribe. */
export interface JobEventMap {
  enqueued: { jobId: string; type: string; tenant?: string | null };
  leased: { jobId: string; type: string; attempt: number; workerId: string };
  succeeded: { jobId: string; type: string; attempt: number; durationMs?: number; partial?: boolean };
  /** A failed attempt that will be retried (status back to `queued`). */
  retry_scheduled: { jobId: string; type: string; attempt: number; nextRunAt: Date; durationMs?: number };
  /** Ended `failed` (the handler said retrying cannot help). */
  failed: { jobId: string; type: string; attempt: number; durationMs?: number };
  dead_lettered: { jobId: string; type: string; attempt: number; reason: 'attempts_exhausted' | 'lease_expired'; durationMs?: number };
  /** The worker put the job back for later (snooze); the attempt did not count. */
  snoozed: { jobId: string; type: string; attempt: number; nextRunAt: Date; durationMs?: number };
  /** An expired lease returned to the queue. */
  reclaimed: { jobId: string; type: string; attempt: number; tenant?: string | null };
  cancelled: { jobId: string; type: string; from: JobStatus };
  cancel_requested: { jobId: string; type: string };
  requeued: { jobId: string; type: string; from: JobStatus; tenant?: string | null };
  /** A waiting job whose parents all succeeded became queued. */
  released: { jobId: string; type: string; tenant?: string | null };
}

export type JobEventName = keyof JobEventMap;

export class JobEvents {
  private readonly emitter = new EventEmitter();

  emit<E extends JobEventName>(event: E, payload: JobEventMap[E]): void {
    this.emitter.emit(event, payload);
  }

  on<E extends JobEventName>(event: E, listener: (payload: JobEventMap[E]) => void): () => void {
    this.emitter.on(event, listener);
    return () => this.emitter.off(event, listener);
  }
}
