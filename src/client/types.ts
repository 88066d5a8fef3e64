/** Shapes of the jobs API as seen on the wire (dates are ISO-8601 strings). See ../shared/API.md. */
export type JobStatus = 'queued' | 'leased' | 'succeeded' | 'failed' | 'cancelled' | 'dlq';

export interface EnqueueRequest {
  type: string;
  payload: unknown;
  priority?: number;
  scheduleAt?: string;
  maxAttempts?: number;
  idempotencyKey?: string;
}

export interface EnqueueResponse {
  jobId: string;
  status: JobStatus;
  type: string;
  nextRunAt: string;
  /** false when an earlier job with the same idempotency key was returned (HTTP 200). */
  created: boolean;
}

export interface LeasedJobWire {
  jobId: string;
  type: string;
  payload: unknown;
  attempt: number;
  leaseId: string;
  leaseExpiresAt: string;
}

export interface LeaseResponse {
  leasedAt: string;
  jobs: LeasedJobWire[];
}

export interface HeartbeatResponse {
  jobId: string;
  leaseExpiresAt: string;
  cancelRequested: boolean;
}

export interface FailRequest {
  leaseId?: string;
  error: { message: string; code?: string; retryable?: boolean };
  durationMs?: number;
}

export interface FailResponse {
  jobId: string;
  status: JobStatus;
  attempt: number;
  nextRunAt: string;
}

export interface AttemptWire {
  attempt: number;
  workerId: string;
  leasedAt: string;
  finishedAt: string | null;
  outcome: string | null;
  error: { code?: string; message: string } | null;
}

export interface JobWire {
  jobId: string;
  type: string;
  status: JobStatus;
  priority: number;
  payload: unknown;
  attempt: number;
  maxAttempts: number;
  nextRunAt: string;
  leaseExpiresAt: string | null;
  workerId: string | null;
  progress: number;
  result: unknown;
  lastError: { code?: string; message: string } | null;
  attempts: AttemptWire[];
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  completedAt: string | null;
}
