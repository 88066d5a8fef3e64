import type { JobStatus } from '../../src/model/job';
import type { JobDocument } from '../../src/storage/job-model';
import { createJobQueryRepository, type JobQueryRepository, type JobListFilter, type TypeStatusCount } from '../../src/storage/job-query-repository';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { clearCollections } from '../helpers/storage';

/** The contract of the operators' read-only queries (listing, stats, throughput), against the real test database. */
const db = useTestDatabase();
let queries: JobQueryRepository;

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const MINUTE = 60_000;
const at = (ms: number): Date => new Date(T0 + ms);

beforeAll(() => {
  queries = createJobQueryRepository(db.connection);
});
beforeEach(async () => {
  await clearCollections(db.connection, ['jobs']);
});

async function seed(...docs: JobDocument[]): Promise<void> {
  await db.connection.collection('jobs').insertMany(docs as unknown as Record<string, unknown>[]);
}

function job(id: string, params: Parameters<typeof jobDocument>[0]): JobDocument {
  return { ...jobDocument(params), _id: id };
}

describe('listJobs', () => {
  beforeEach(async () => {
    await seed(
      job('job_01', { status: 'queued', createdAt: at(1_000), type: 'thumbnail.create', createdBy: 'svc-a' }),
      job('job_02', { status: 'succeeded', createdAt: at(2_000), type: 'payout.execute', createdBy: 'svc-b', tenant: 'acme' }),
      job('job_03', { status: 'failed', createdAt: at(3_000), type: 'thumbnail.create', createdBy: 'svc-a', tenant: 'acme' }),
      job('job_04', { status: 'dlq', createdAt: at(3_000), type: 'payout.execute', createdBy: 'svc-a' }),
      job('job_05', { status: 'leased', createdAt: at(5_000), type: 'thumbnail.create', createdBy: 'svc-b', tenant: 'globex' }),
    );
  });

  const list = async (filter: JobListFilter, skip = 0, limit = 10): Promise<{ ids: string[]; total: number }> => {
    const page = await queries.listJobs({ filter, skip, limit });
    return { ids: page.jobs.map((j) => j.jobId), total: page.total };
  };

  it('lists every job newest first, ties (same createdAt) broken by id descending, as plain Jobs', async () => {
    expect(await list({})).toEqual({ ids: ['job_05', 'job_04', 'job_03', 'job_02', 'job_01'], total: 5 });
    const [first] = (await queries.listJobs({ filter: {}, skip: 0, limit: 1 })).jobs;
    expect(first).toMatchObject({ jobId: 'job_05', status: 'leased', tenant: 'globex' });
    expect(first).not.toHaveProperty('_id');
  });

  it('pages without overlap or gaps, even across a tie; past the end a page is empty with the total', async () => {
    const pages = [await list({}, 0, 2), await list({}, 2, 2), await list({}, 4, 2)];
    expect(pages.map((p) => p.ids)).toEqual([['job_05', 'job_04'], ['job_03', 'job_02'], ['job_01']]);
    expect(pages.every((p) => p.total === 5)).toBe(true);
    expect(await list({}, 5, 2)).toEqual({ ids: [], total: 5 });
    expect(await list({}, 100, 2)).toEqual({ ids: [], total: 5 });
  });

  it('filters by one or several statuses and types (an empty list is no filter)', async () => {
    expect(await list({ statuses: ['failed'] })).toEqual({ ids: ['job_03'], total: 1 });
    expect(await list({ statuses: ['failed', 'dlq', 'succeeded'] })).toEqual({ ids: ['job_04', 'job_03', 'job_02'], total: 3 });
    expect(await list({ types: ['payout.execute'] })).toEqual({ ids: ['job_04', 'job_02'], total: 2 });
    expect(await list({ types: ['payout.execute', 'thumbnail.create'] })).toMatchObject({ total: 5 });
    expect(await list({ statuses: [], types: [] })).toMatchObject({ total: 5 });
    expect(await list({ statuses: ['cancelled'] })).toEqual({ ids: [], total: 0 });
  });

  it('filters by creator and by tenant', async () => {
    expect(await list({ createdBy: 'svc-b' })).toEqual({ ids: ['job_05', 'job_02'], total: 2 });
    expect(await list({ tenant: 'acme' })).toEqual({ ids: ['job_03', 'job_02'], total: 2 });
    expect(await list({ tenant: 'acme', createdBy: 'svc-a', statuses: ['failed'], types: ['thumbnail.create'] })).toEqual({ ids: ['job_03'], total: 1 });
  });

  it('filters by creation time: createdFrom inclusive, createdTo exclusive', async () => {
    expect(await list({ createdFrom: at(3_000) })).toEqual({ ids: ['job_05', 'job_04', 'job_03'], total: 3 });
    expect(await list({ createdTo: at(3_000) })).toEqual({ ids: ['job_02', 'job_01'], total: 2 });
    expect(await list({ createdFrom: at(2_000), createdTo: at(5_000) })).toEqual({ ids: ['job_04', 'job_03', 'job_02'], total: 3 });
    expect(await list({ createdFrom: at(3_000), createdTo: at(3_000) })).toEqual({ ids: [], total: 0 });
  });
});

describe('listJobs by tags, idempotency key and access scope', () => {
  beforeEach(async () => {
    const owned = (id: string, createdAt: number, extra: Partial<JobDocument>): JobDocument => ({ ...job(id, { status: 'queued', createdAt: at(createdAt) }), ...extra });
    await seed(
      owned('job_t1', 1_000, { tags: ['import:7', 'customer:42'], createdBy: 'svc-a', createdByRole: 'service' }),
      owned('job_t2', 2_000, { tags: ['import:7'], createdBy: 'svc-a', createdByRole: 'service', idempotencyKey: 'k-1' }),
      owned('job_t3', 3_000, { tags: ['customer:42'], createdBy: 'svc-a', createdByRole: 'user' }),
      owned('job_t4', 4_000, { createdBy: 'svc-a', createdByRole: null }),
      owned('job_t5', 5_000, { tags: ['import:7'], createdBy: 'svc-a', createdByRole: 'service', tenant: 'acme' }),
      owned('job_t6', 6_000, { tags: ['import:7'], createdBy: 'svc-b', createdByRole: 'service', idempotencyKey: 'k-1' }),
    );
    // A job stored without the field at all (the form a job enqueued without tags takes).
    await db.connection.collection('jobs').updateOne({ _id: 'job_t4' as never }, { $unset: { tags: '' } });
  });

  const list = async (filter: JobListFilter): Promise<{ ids: string[]; total: number }> => {
    const page = await queries.listJobs({ filter, skip: 0, limit: 10 });
    return { ids: page.jobs.map((j) => j.jobId), total: page.total };
  };

  it('matches jobs carrying every tag asked for; a job without the field reads as no tags', async () => {
    expect(await list({ tags: ['import:7'] })).toEqual({ ids: ['job_t6', 'job_t5', 'job_t2', 'job_t1'], total: 4 });
    expect(await list({ tags: ['import:7', 'customer:42'] })).toEqual({ ids: ['job_t1'], total: 1 });
    expect(await list({ tags: ['customer:42', 'nope'] })).toEqual({ ids: [], total: 0 });
    expect(await list({ tags: [] })).toMatchObject({ total: 6 });
    const [untagged] = (await queries.listJobs({ filter: { createdFrom: at(4_000), createdTo: at(4_001) }, skip: 0, limit: 1 })).jobs;
    expect(untagged).toMatchObject({ jobId: 'job_t4', tags: [] });
  });

  it('filters by idempotency key (any creator)', async () => {
    expect(await list({ idempotencyKey: 'k-1' })).toEqual({ ids: ['job_t6', 'job_t2'], total: 2 });
  });

  it("an owner scope keeps the owner's jobs only: sub, role (no stored role counts as service) and tenant", async () => {
    const service = { tenant: null, owner: { createdBy: 'svc-a', createdByRole: 'service' as const } };
    expect(await list({ scope: service })).toEqual({ ids: ['job_t4', 'job_t2', 'job_t1'], total: 3 });
    expect(await list({ scope: { tenant: null, owner: { createdBy: 'svc-a', createdByRole: 'user' } } })).toEqual({ ids: ['job_t3'], total: 1 });
    expect(await list({ scope: { tenant: 'acme', owner: { createdBy: 'svc-a', createdByRole: 'service' } } })).toEqual({ ids: ['job_t5'], total: 1 });
    expect(await list({ scope: service, tags: ['import:7'] })).toEqual({ ids: ['job_t2', 'job_t1'], total: 2 });
    // A tenant-only scope (a tenant admin) and a filter on the same field must both hold.
    expect(await list({ scope: { tenant: 'acme' } })).toEqual({ ids: ['job_t5'], total: 1 });
    expect(await list({ scope: { tenant: 'acme' }, tenant: 'globex' })).toEqual({ ids: [], total: 0 });
  });
});

describe('countByTypeAndStatus', () => {
  const now = at(10 * MINUTE);
  const key = (c: TypeStatusCount): string => `${c.type}/${c.status}${c.partial ? '/partial' : ''}${c.scheduled ? '/scheduled' : ''}`;
  const byKey = (counts: TypeStatusCount[]): Map<string, TypeStatusCount> => new Map(counts.map((c) => [key(c), c]));

  beforeEach(async () => {
    const queued = (id: string, nextRunAt: Date, type = 'thumbnail.create', tenant: string | null = null): JobDocument =>
      job(id, { status: 'queued', createdAt: at(0), nextRunAt, type, tenant });
    await seed(
      queued('job_q_due_early', at(1 * MINUTE)),
      queued('job_q_due_late', at(5 * MINUTE), 'thumbnail.create', 'acme'),
      queued('job_q_due_now', now),
      queued('job_q_later', at(20 * MINUTE)),
      queued('job_q_much_later', at(30 * MINUTE), 'thumbnail.create', 'acme'),
      queued('job_q_payout', at(2 * MINUTE), 'payout.execute', 'acme'),
      job('job_s_full', { status: 'succeeded', createdAt: at(0), type: 'payout.execute' }),
      job('job_s_partial', { status: 'succeeded', createdAt: at(0), type: 'payout.execute', partial: true }),
      job('job_s_partial_2', { status: 'succeeded', createdAt: at(0), type: 'payout.execute', partial: true, tenant: 'acme' }),
      job('job_dlq', { status: 'dlq', createdAt: at(0), type: 'thumbnail.create' }),
    );
  });

  it('counts per type and status in one pass; queued split into due and scheduled as of now; partial successes apart', async () => {
    const counts = byKey(await queries.countByTypeAndStatus({ now }));
    expect([...counts.keys()].sort()).toEqual([
      'payout.execute/queued',
      'payout.execute/succeeded',
      'payout.execute/succeeded/partial',
      'thumbnail.create/dlq',
      'thumbnail.create/queued',
      'thumbnail.create/queued/scheduled',
    ]);
    // Due at now counts as due; the earliest nextRunAt of the due ones is the one waiting longest.
    expect(counts.get('thumbnail.create/queued')).toMatchObject({ count: 3, earliestNextRunAt: at(1 * MINUTE), scheduled: false });
    expect(counts.get('thumbnail.create/queued/scheduled')).toMatchObject({ count: 2, earliestNextRunAt: at(20 * MINUTE), scheduled: true });
    expect(counts.get('payout.execute/queued')).toMatchObject({ count: 1, earliestNextRunAt: at(2 * MINUTE) });
    expect(counts.get('payout.execute/succeeded')).toMatchObject({ count: 1, partial: false });
    expect(counts.get('payout.execute/succeeded/partial')).toMatchObject({ count: 2, partial: true });
    expect(counts.get('thumbnail.create/dlq')?.count).toBe(1);
  });

  it('moves jobs from scheduled to due as now advances', async () => {
    const counts = byKey(await queries.countByTypeAndStatus({ now: at(20 * MINUTE) }));
    expect(counts.get('thumbnail.create/queued')?.count).toBe(4);
    expect(counts.get('thumbnail.create/queued/scheduled')?.count).toBe(1);
  });

  it('keeps to a tenant when one is given', async () => {
    const counts = byKey(await queries.countByTypeAndStatus({ now, tenant: 'acme' }));
    expect(new Map([...counts].map(([k, c]) => [k, c.count]))).toEqual(
      new Map([
        ['thumbnail.create/queued', 1],
        ['thumbnail.create/queued/scheduled', 1],
        ['payout.execute/queued', 1],
        ['payout.execute/succeeded/partial', 1],
      ]),
    );
    expect(await queries.countByTypeAndStatus({ now, tenant: 'nobody' })).toEqual([]);
  });

  it('counts a job stored before `partial` existed as not partial', async () => {
    await clearCollections(db.connection, ['jobs']);
    const legacy: Record<string, unknown> = { ...job('job_legacy', { status: 'succeeded', createdAt: at(0) }) };
    delete legacy.partial;
    await db.connection.collection('jobs').insertOne(legacy);
    expect(await queries.countByTypeAndStatus({ now })).toEqual([
      { type: 'thumbnail.create', status: 'succeeded', count: 1, earliestNextRunAt: at(0), partial: false, scheduled: false },
    ]);
  });
});

describe('countCompletionsPerMinute', () => {
  function done(id: string, status: JobStatus, completedAtMs: number, tenant: string | null = null): JobDocument {
    return job(id, { status, createdAt: at(0), completedAt: at(completedAtMs), tenant });
  }

  beforeEach(async () => {
    await seed(
      done('job_s1', 'succeeded', 1 * MINUTE),
      done('job_s2', 'succeeded', 1 * MINUTE + 59_999, 'acme'),
      done('job_f1', 'failed', 1 * MINUTE + 30_000),
      done('job_s3', 'succeeded', 2 * MINUTE),
      done('job_d1', 'dlq', 2 * MINUTE + 1, 'acme'),
      done('job_before', 'succeeded', 1 * MINUTE - 1),
      done('job_at_to', 'succeeded', 3 * MINUTE),
      done('job_cancelled', 'cancelled', 1 * MINUTE + 10),
      job('job_queued', { status: 'queued', createdAt: at(0) }),
    );
  });

  const sorted = (rows: { minute: Date; status: string; count: number }[]) =>
    rows.map((r) => [r.minute.toISOString(), r.status, r.count]).sort((a, b) => `${a[0]}${a[1]}`.localeCompare(`${b[0]}${b[1]}`));

  it('counts succeeded, failed and dlq jobs per UTC minute of completedAt, within [from, to)', async () => {
    const rows = await queries.countCompletionsPerMinute({ from: at(1 * MINUTE), to: at(3 * MINUTE) });
    expect(sorted(rows)).toEqual([
      ['2030-01-01T00:01:00.000Z', 'failed', 1],
      ['2030-01-01T00:01:00.000Z', 'succeeded', 2],
      ['2030-01-01T00:02:00.000Z', 'dlq', 1],
      ['2030-01-01T00:02:00.000Z', 'succeeded', 1],
    ]);
    expect(rows.every((r) => r.minute instanceof Date)).toBe(true);
  });

  it('keeps to a tenant, and is empty for a window with no completions', async () => {
    expect(sorted(await queries.countCompletionsPerMinute({ from: at(0), to: at(10 * MINUTE), tenant: 'acme' }))).toEqual([
      ['2030-01-01T00:01:00.000Z', 'succeeded', 1],
      ['2030-01-01T00:02:00.000Z', 'dlq', 1],
    ]);
    expect(await queries.countCompletionsPerMinute({ from: at(10 * MINUTE), to: at(20 * MINUTE) })).toEqual([]);
  });
});
