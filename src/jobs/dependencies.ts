import type { Job, JobError, JobStatus } from '../model/job';
import type { QueueDeps } from './queue-deps';

/** Endings of a parent that cancel its waiting children. */
export const BAD_ENDINGS: ReadonlySet<JobStatus> = new Set<JobStatus>(['failed', 'dlq', 'cancelled']);

export function dependencyError(parentId: string, status: JobStatus): JobError {
  return { code: 'dependency_failed', message: `job ${parentId} it depends on ended ${status}` };
}

/**
 * Job dependencies after the fact: when a parent finishes, its waiting children are released (all
 * parents succeeded) or cancelled (one ended badly), and theirs in turn. Every step is idempotent,
 * so the parent's side and a child's own enqueue-time check may both run it.
 */
export class Dependencies {
  constructor(private readonly deps: Pick<QueueDeps, 'jobs' | 'events'>) {}

  /** Whether this call released the child (its last pending parent succeeded). */
  async releaseChild(params: { childId: string; succeededParents: readonly string[]; nextRunAt: Date; now: Date }): Promise<boolean> {
    const released = await this.deps.jobs.settleParents(params);
    if (released) this.deps.events.emit('released', { jobId: released.jobId, type: released.type, tenant: released.tenant });
    return released !== null;
  }

  async cancelChild(params: { childId: string; error: JobError; now: Date }): Promise<Job | null> {
    const cancelled = await this.deps.jobs.cancelWaiting(params);
    if (cancelled) this.deps.events.emit('cancelled', { jobId: cancelled.jobId, type: cancelled.type, from: 'waiting' });
    return cancelled;
  }

  /**
   * A parent finished: release the children waiting only for it, or cancel them all (and theirs)
   * when it ended badly. Runs only for jobs that have children; costs a query and an update or two
   * per child, never a scan.
   */
  async settleChildren(parent: Pick<Job, 'jobId' | 'hasChildren'>, outcome: JobStatus, now: Date): Promise<void> {
    if (!parent.hasChildren) return;
    const children = await this.deps.jobs.findWaitingChildren(parent.jobId);
    for (const child of children) {
      if (outcome === 'succeeded') {
        await this.releaseChild({ childId: child.jobId, succeededParents: [parent.jobId], nextRunAt: child.nextRunAt, now });
        continue;
      }
      const cancelled = await this.cancelChild({ childId: child.jobId, error: dependencyError(parent.jobId, outcome), now });
      if (cancelled) await this.settleChildren(cancelled, 'cancelled', now);
    }
  }
}
