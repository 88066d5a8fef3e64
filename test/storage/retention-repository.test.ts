import type { JobDocument } from '../../src/storage/job-model';
import { JobRepository } from '../../src/storage/job-repository';
import { RetentionRepository } from '../../src/storage/retention-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { clearCollections } from '../helpers/storage';

/** The contract of RetentionRepository: finished jobs found and deleted in bounded batches, against the real test database. */
const db = useTestDatabase();
let retention: RetentionRepository;
let clock: TestClock;

const HOUR = 3_600_000;

beforeAll(() => {
  retention = new RetentionRepository(db.connection);
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['jobs']);
});

/** A job finished `hoursAgo` before the clock's now. */
function finished(id: string, status: JobDocument['status'], hoursAgo: number): JobDocument {
  const completedAt = new Date(clock.now().getTime() - hoursAgo * HOUR);
  return { ...jobDocument({ status, createdAt: new Date(completedAt.getTime() - 1_000), completedAt }), _id: id };
}

async function seed(...docs: JobDocument[]): Promise<void> {
  await db.connection.collection('jobs').insertMany(docs as unknown as Record<string, unknown>[]);
}

async function remaining(): Promise<string[]> {
  return (await db.connection.collection<{ _id: string }>('jobs').find({}, { projection: { _id: 1 } }).toArray()).map((d) => d._id).sort();
}

describe('findExpired', () => {
  it('finds jobs of the status that finished strictly before the cutoff, oldest first, up to the limit', async () => {
    await seed(
      finished('job_s_10h', 'succeeded', 10),
      finished('job_s_30h', 'succeeded', 30),
      finished('job_s_20h', 'succeeded', 20),
      finished('job_s_at_cutoff', 'succeeded', 5),
      finished('job_s_fresh', 'succeeded', 1),
      finished('job_f_30h', 'failed', 30),
      { ...jobDocument({ status: 'queued', createdAt: new Date(clock.now().getTime() - 40 * HOUR) }), _id: 'job_queued' },
      { ...jobDocument({ status: 'leased', createdAt: new Date(clock.now().getTime() - 40 * HOUR) }), _id: 'job_leased' },
    );
    const before = new Date(clock.now().getTime() - 5 * HOUR);

    expect(await retention.findExpired({ status: 'succeeded', before, limit: 10 })).toEqual(['job_s_30h', 'job_s_20h', 'job_s_10h']);
    expect(await retention.findExpired({ status: 'succeeded', before, limit: 2 })).toEqual(['job_s_30h', 'job_s_20h']);
    expect(await retention.findExpired({ status: 'failed', before, limit: 10 })).toEqual(['job_f_30h']);
    expect(await retention.findExpired({ status: 'dlq', before, limit: 10 })).toEqual([]);
  });
});

describe('deleteExpired', () => {
  it('deletes the given jobs that still match, and nothing else', async () => {
    await seed(finished('job_a', 'cancelled', 30), finished('job_b', 'cancelled', 20), finished('job_fresh', 'cancelled', 1), finished('job_other', 'dlq', 30));
    const before = new Date(clock.now().getTime() - 5 * HOUR);
    const ids = await retention.findExpired({ status: 'cancelled', before, limit: 10 });

    // Ids of jobs that do not match (another status, too recent, unknown) are passed over.
    expect(await retention.deleteExpired({ ids: [...ids, 'job_fresh', 'job_other', 'job_missing'], status: 'cancelled', before })).toBe(2);
    expect(await remaining()).toEqual(['job_fresh', 'job_other']);
    expect(await retention.deleteExpired({ ids: [], status: 'cancelled', before })).toBe(0);
  });

  it('keeps a job requeued between the find and the delete', async () => {
    await seed(finished('job_dlq_1', 'dlq', 30), finished('job_dlq_2', 'dlq', 30));
    const before = new Date(clock.now().getTime() - 5 * HOUR);
    const ids = await retention.findExpired({ status: 'dlq', before, limit: 10 });
    await new JobRepository(db.connection).requeue({ jobId: 'job_dlq_1', now: clock.now() });

    expect(await retention.deleteExpired({ ids, status: 'dlq', before })).toBe(1);
    expect(await remaining()).toEqual(['job_dlq_1']);
  });
});
