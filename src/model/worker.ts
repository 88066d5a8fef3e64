/** A worker process as the API last saw it (a lease call or a heartbeat under its X-Worker-Id). */
export interface WorkerSighting {
  workerId: string;
  /** The types its last lease call asked for; null: every type (or not known yet). */
  types: string[] | null;
  /** The tenant of its token (null: none). */
  tenant: string | null;
  lastSeenAt: Date;
  lastCall: 'lease' | 'heartbeat';
}

/** A job a worker holds now. */
export interface HeldJob {
  jobId: string;
  type: string;
  attempt: number;
  progress: number;
  leaseExpiresAt: Date;
}

/** `GET /admin/workers`: who is working. */
export interface WorkerView extends WorkerSighting {
  jobs: HeldJob[];
}
