import { JobEvents } from '../../src/jobs/job-events';
import { JobService } from '../../src/jobs/job-service';
import { JOB_TYPES } from '../../src/jobs/job-types';
import { JobRegistry } from '../../src/jobs/registry';
import type { Job } from '../../src/model/job';
import { systemClock } from '../../src/model/clock';
import type { Principal } from '../../src/model/principal';
import { type ClaimRequest, JobRepository } from '../../src/storage/job-repository';
import { KeySlotRepository } from '../../src/storage/key-slot-repository';
import { RateWindowRepository } from '../../src/storage/rate-window-repository';
import { SlotRepository } from '../../src/storage/slot-repository';
import { useTestDatabase } from '../helpers/database';
import { hold } from '../helpers/hold';

const db = useTestDatabase();

/**
 * The real repository on the real database, whose candidate reads and claims can be stopped (after
 * the read, before the claim) by worker, to put two lease calls' steps in a chosen order.
 */
class SteppedJobRepository extends JobRepository {
  readonly afterRead = new Map<string, ((found: readonly Job[]) => Promise<void>)[]>();
  readonly beforeClaim = new Map<string, (() => Promise<void>)[]>();
  /** The worker whose lease call reads next (the read carries no worker id). */
  reader: string | null = null;

  override async findAvailable(params: Parameters<JobRepository['findAvailable']>[0]): Promise<Job[]> {
    const worker = this.reader;
    const found = await super.findAvailable(params);
    const step = worker ? this.afterRead.get(worker)?.shift() : undefined;
    if (step) await step(found);
    return found;
  }

  override async claim(params: { requests: readonly ClaimRequest[]; now: Date }): Promise<Job[]> {
    const worker = params.requests[0]?.workerId;
    const step = worker ? this.beforeClaim.get(worker)?.shift() : undefined;
    if (step) await step();
    return super.claim(params);
  }
}

const SERVICE: Principal = { sub: 'svc-rounds', role: 'service' };

it('a call whose later read finds only candidates another call here is claiming reads again once they are claimed, instead of answering short', async () => {
  const jobs = new SteppedJobRepository(db.connection);
  const service = new JobService({
    jobs,
    slots: new SlotRepository(db.connection),
    keySlots: new KeySlotRepository(db.connection),
    rateWindows: new RateWindowRepository(db.connection),
    registry: new JobRegistry(JOB_TYPES),
    events: new JobEvents(),
    clock: systemClock,
    random: Math.random,
    reclaimIntervalMs: 60_000,
  });
  // Eight jobs, best first j1 … j8.
  const ids: string[] = [];
  for (let i = 0; i < 8; i += 1) ids.push((await service.enqueue(SERVICE, { type: 'noop', payload: {}, priority: 100 - i })).job.jobId);

  // X (limit 4) reads j1 … j8 and stops there; Y (limit 5) reads them too and stops before its
  // claim of j1 … j5. X, let go, takes j6 … j8; its second read finds only j1 … j5, still Y's. A
  // ninth job arrives after that read, and Y's claim goes on.
  const xFirstRead = hold();
  const yClaim = hold();
  let ninth: string | undefined;
  jobs.afterRead.set('x', [
    () => xFirstRead.arrive(),
    async (found) => {
      expect(found.map((j) => j.jobId)).toEqual(ids.slice(0, 5));
      ninth = (await service.enqueue(SERVICE, { type: 'noop', payload: {}, priority: 0 })).job.jobId;
      yClaim.release();
    },
  ]);
  jobs.beforeClaim.set('y', [() => yClaim.arrive()]);

  jobs.reader = 'x';
  const x = service.lease({ workerId: 'x', types: ['noop'], limit: 4 });
  await xFirstRead.reached;
  jobs.reader = 'y';
  const y = service.lease({ workerId: 'y', types: ['noop'], limit: 5 });
  await yClaim.reached;
  jobs.reader = 'x';
  xFirstRead.release();

  const [xJobs, yJobs] = await Promise.all([x, y]);
  expect(yJobs.jobs.map((j) => j.jobId)).toEqual(ids.slice(0, 5));
  expect(xJobs.jobs.map((j) => j.jobId)).toEqual([...ids.slice(5, 8), ninth]);
  expect(await db.connection.collection('jobs').countDocuments({ status: 'leased' })).toBe(9);
});
