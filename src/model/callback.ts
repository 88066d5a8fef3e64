/**
 * Callbacks: when a job with a `callbackUrl` finishes, the API POSTs its outcome there (signed), retrying
 * until a 2xx or the attempts run out. One delivery per ending of the job; its id is stable across attempts.
 */
export const CALLBACK_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type CallbackStatus = (typeof CALLBACK_STATUSES)[number];

export interface CallbackDelivery {
  url: string;
  status: CallbackStatus;
  /** Attempts made so far (the one in flight included). */
  attempts: number;
  /** Why the last attempt failed (a status, a network error, a refused address). */
  lastError: string | null;
  deliveredAt: Date | null;
  /** Sent as X-Jobs-Delivery with every attempt, so a receiver can drop repeats (null before the first). */
  deliveryId: string | null;
  /** When the next attempt is due (null once delivered or failed). */
  nextAttemptAt: Date | null;
}

/** What the receiver gets: the job's outcome at its ending. */
export interface CallbackPayload {
  jobId: string;
  type: string;
  status: string;
  attempt: number;
  result: unknown;
  lastError: { code?: string; message: string } | null;
  completedAt: string | null;
}
