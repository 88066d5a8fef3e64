import { JobRepository } from '../../src/storage/job-repository';
import { WorkerRepository } from '../../src/storage/worker-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { clearCollections, newJob, uniqueId } from '../helpers/storage';

/** The contract of WorkerRepository (sightings) and JobRepository.findLeasedBy (the jobs workers hold). */
const db = useTestDatabase();
let workers: WorkerRepository;
let jobs: JobRepository;
const clock = new TestClock();

beforeAll(() => {
  workers = new WorkerRepository(db.connection);
  jobs = new JobRepository(db.connection);
});
beforeEach(async () => {
  await clearCollections(db.connection, ['workers', 'jobs']);
});

const at = (ms: number): Date => new Date(clock.now().getTime() + ms);

it('upserts one sighting per worker; a heartbeat keeps the types of the last lease call', async () => {
  await workers.recordSeen({ workerId: 'w-1', types: ['noop'], tenant: null, at: at(0), call: 'lease' });
  await workers.recordSeen({ workerId: 'w-1', types: undefined, tenant: null, at: at(1_000), call: 'heartbeat' });
  await workers.recordSeen({ workerId: 'w-2', types: undefined, tenant: 'acme', at: at(500), call: 'heartbeat' });
  expect(await workers.findSeenSince({ since: at(0), limit: 10 })).toEqual([
    { workerId: 'w-1', types: ['noop'], tenant: null, lastSeenAt: at(1_000), lastCall: 'heartbeat' },
    { workerId: 'w-2', types: null, tenant: 'acme', lastSeenAt: at(500), lastCall: 'heartbeat' },
  ]);
  expect((await workers.findSeenSince({ since: at(600), limit: 10 })).map((w) => w.workerId)).toEqual(['w-1']);
  expect((await workers.findSeenSince({ since: at(0), tenant: 'acme', limit: 10 })).map((w) => w.workerId)).toEqual(['w-2']);
  expect(await workers.findSeenSince({ since: at(0), limit: 1 })).toHaveLength(1);
  expect(await db.connection.collection('workers').countDocuments()).toBe(2);
});

it('recordSeenMany writes several sightings at once, as recordSeen would each (new ones inserted, types kept on a heartbeat)', async () => {
  await workers.recordSeen({ workerId: 'w-1', types: ['noop'], tenant: null, at: at(0), call: 'lease' });
  await workers.recordSeenMany([
    { workerId: 'w-1', types: undefined, tenant: null, at: at(2_000), call: 'heartbeat' },
    { workerId: 'w-3', types: ['payout.execute'], tenant: 'acme', at: at(1_000), call: 'lease' },
    { workerId: 'w-4', types: undefined, tenant: null, at: at(500), call: 'heartbeat' },
  ]);
  await workers.recordSeenMany([]);
  expect(await workers.findSeenSince({ since: at(0), limit: 10 })).toEqual([
    { workerId: 'w-1', types: ['noop'], tenant: null, lastSeenAt: at(2_000), lastCall: 'heartbeat' },
    { workerId: 'w-3', types: ['payout.execute'], tenant: 'acme', lastSeenAt: at(1_000), lastCall: 'lease' },
    { workerId: 'w-4', types: null, tenant: null, lastSeenAt: at(500), lastCall: 'heartbeat' },
  ]);
});

it('findLeasedBy returns the jobs leased to the given workers now, within a tenant when asked', async () => {
  const now = clock.now();
  const leased = async (workerId: string, tenant: string | null): Promise<string> => {
    const { job } = await jobs.insert(newJob({ now, tenant }));
    const [claimed] = await jobs.claim({ requests: [{ candidate: job, leaseId: uniqueId('lease'), workerId, leaseExpiresAt: at(30_000), slotId: null }], now });
    return claimed!.jobId;
  };
  const a1 = await leased('w-a', null);
  const b1 = await leased('w-b', 'acme');
  await leased('w-c', null);
  await jobs.insert(newJob({ now }));
  const held = await jobs.findLeasedBy({ workerIds: ['w-a', 'w-b'] });
  expect(held.map((h) => [h.workerId, h.jobId]).sort()).toEqual([['w-a', a1], ['w-b', b1]].sort());
  expect(held[0]).toMatchObject({ type: 'thumbnail.create', attempt: 1, progress: 0, leaseExpiresAt: at(30_000) });
  expect((await jobs.findLeasedBy({ workerIds: ['w-a', 'w-b'], tenant: 'acme' })).map((h) => h.jobId)).toEqual([b1]);
  expect(await jobs.findLeasedBy({ workerIds: [] })).toEqual([]);
});
