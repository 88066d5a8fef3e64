import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { adminToken, call, leaseOver, serviceToken, startApiInstance, workerToken, type ApiInstance } from '../helpers/instances';
import { tokenFor } from '../helpers/tokens';

/**
 * POST /jobs/reports: each report judged as its single endpoint would judge it, the whole batch in
 * one bulk write, one bad item never failing the others.
 */
const db = useTestDatabase();
const clock = new TestClock();
let api: ApiInstance;

beforeAll(async () => {
  api = await startApiInstance(db, { clock, reclaimIntervalMs: 0 });
});
afterAll(async () => {
  await api.close();
});
beforeEach(async () => {
  for (const name of ['jobs', 'job_slots']) await db.connection.collection(name).deleteMany({});
});

const WORKER = 'batch-worker';
const reports = (items: unknown[], token = workerToken, workerId = WORKER) => call(api.baseUrl, { method: 'POST', path: '/jobs/reports', token, workerId, body: { reports: items } });

async function enqueue(count: number, body: Record<string, unknown> = {}, token = serviceToken()): Promise<string[]> {
  const res = await call(api.baseUrl, { method: 'POST', path: '/jobs/batch', token, body: { jobs: Array.from({ length: count }, () => ({ type: 'noop', payload: {}, ...body })) } });
  return (res.body.results as { jobId: string }[]).map((r) => r.jobId);
}

const stored = async (jobId: string) => (await db.connection.collection('jobs').findOne({ _id: jobId as never }))!;

describe('POST /jobs/reports', () => {
  it('answers a batch mixing good, stale and malformed reports item by item, in order, and applies exactly the good ones', async () => {
    await enqueue(6, { maxAttempts: 3 });
    await enqueue(1, { type: 'payout.execute', payload: { batchId: 'b', escrowId: 'e' } });
    const leased = await leaseOver(api.baseUrl, { workerId: WORKER, limit: 10 });
    expect(leased).toHaveLength(7);
    const noops = leased.filter((j) => j.type === 'noop');
    const payout = leased.find((j) => j.type === 'payout.execute')!;
    // One of them was reclaimed and leased again by another worker: its old lease is stale.
    clock.advance(30_000);
    await call(api.baseUrl, { method: 'POST', path: `/jobs/${noops[4]!.jobId}/heartbeat`, token: workerToken, workerId: WORKER, body: { leaseId: noops[4]!.leaseId } });
    for (const j of [noops[0]!, noops[1]!, noops[2]!, noops[3]!, payout]) await call(api.baseUrl, { method: 'POST', path: `/jobs/${j.jobId}/heartbeat`, token: workerToken, workerId: WORKER, body: { leaseId: j.leaseId } });
    clock.advance(1_000);
    const [stolen] = await leaseOver(api.baseUrl, { workerId: 'other-worker', type: 'noop' });
    expect(stolen!.jobId).toBe(noops[5]!.jobId);

    const answer = await reports([
      { jobId: noops[0]!.jobId, leaseId: noops[0]!.leaseId, outcome: 'succeeded', result: { n: 1 }, durationMs: 12 },
      { jobId: noops[1]!.jobId, leaseId: noops[1]!.leaseId, outcome: 'failed', error: { message: 'try again' } },
      { jobId: noops[2]!.jobId, leaseId: noops[2]!.leaseId, outcome: 'failed', error: { message: 'give up', code: 'bad_input', retryable: false } },
      { jobId: noops[3]!.jobId, leaseId: noops[3]!.leaseId, outcome: 'snoozed', seconds: 120 },
      { jobId: noops[5]!.jobId, leaseId: noops[5]!.leaseId, outcome: 'succeeded' },
      { jobId: noops[4]!.jobId, leaseId: noops[4]!.leaseId, outcome: 'succeeded', result: { partial: true } },
      { jobId: noops[4]!.jobId, leaseId: noops[4]!.leaseId, outcome: 'snoozed', seconds: 0 },
      { jobId: 'job_000000000000000000000000', leaseId: 'lease_x', outcome: 'succeeded' },
      { jobId: noops[4]!.jobId, leaseId: noops[4]!.leaseId, outcome: 'finished' },
      { leaseId: 'lease_x', outcome: 'succeeded' },
      'not an object',
      { jobId: payout.jobId, leaseId: payout.leaseId, outcome: 'succeeded', result: { paid: true } },
      { jobId: noops[0]!.jobId, leaseId: noops[0]!.leaseId, outcome: 'succeeded' },
      { jobId: noops[4]!.jobId, leaseId: noops[4]!.leaseId, outcome: 'succeeded', seconds: 5 },
    ]);
    expect(answer.status).toBe(200);
    const results = answer.body.results as { jobId: string | null; status?: string; error?: { code: string; details?: { field: string }[] } }[];
    const summary = results.map((r) => r.status ?? r.error!.code);
    expect(summary).toEqual([
      'succeeded',
      'queued',
      'failed',
      'queued',
      'lease_conflict',
      'validation_error',
      'validation_error',
      'job_not_found',
      'validation_error',
      'validation_error',
      'validation_error',
      'succeeded',
      'lease_conflict',
      'validation_error',
    ]);
    expect(results.map((r) => r.jobId)).toEqual([
      noops[0]!.jobId,
      noops[1]!.jobId,
      noops[2]!.jobId,
      noops[3]!.jobId,
      noops[5]!.jobId,
      noops[4]!.jobId,
      noops[4]!.jobId,
      'job_000000000000000000000000',
      noops[4]!.jobId,
      null,
      null,
      payout.jobId,
      noops[0]!.jobId,
      noops[4]!.jobId,
    ]);
    // Validation errors name their fields inside the batch.
    expect(results[6]!.error!.details).toEqual([expect.objectContaining({ field: 'body.reports.6.seconds' })]);
    expect(results[5]!.error!.details).toEqual([expect.objectContaining({ field: 'body.reports.5.result.itemErrors' })]);

    expect(await stored(noops[0]!.jobId)).toMatchObject({ status: 'succeeded', result: { n: 1 }, progress: 100 });
    expect(await stored(noops[1]!.jobId)).toMatchObject({ status: 'queued', attempt: 1, lastError: { message: 'try again' } });
    expect(await stored(noops[2]!.jobId)).toMatchObject({ status: 'failed', lastError: { code: 'bad_input', message: 'give up' } });
    expect(await stored(noops[3]!.jobId)).toMatchObject({ status: 'queued', attempt: 0, nextRunAt: new Date(clock.now().getTime() + 120_000) });
    expect(await stored(noops[4]!.jobId)).toMatchObject({ status: 'leased', leaseId: noops[4]!.leaseId });
    expect(await stored(noops[5]!.jobId)).toMatchObject({ status: 'leased', leaseId: stolen!.leaseId, workerId: 'other-worker' });
    expect(await stored(payout.jobId)).toMatchObject({ status: 'succeeded', slotId: null });
    // The payout's concurrency slot was released with its report.
    expect(await db.connection.collection('job_slots').countDocuments({ leaseId: payout.leaseId })).toBe(0);
    const history = (await stored(noops[3]!.jobId)).attempts as { outcome: string }[];
    expect(history.map((a) => a.outcome)).toEqual(['snoozed']);
  });

  it('answers an item with unsafe keys or too deep nesting in its own result, as its single endpoint would, and applies the others', async () => {
    await enqueue(6);
    const leased = await leaseOver(api.baseUrl, { workerId: WORKER, limit: 6 });
    expect(leased).toHaveLength(6);
    const [good, dollar, proto, deep, detailsKey, lastGood] = leased as [(typeof leased)[0], ...typeof leased];
    let nested: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 40; i += 1) nested = { n: nested };
    const item = (job: { jobId: string; leaseId: string }, rest: Record<string, unknown>) => ({ jobId: job.jobId, leaseId: job.leaseId, ...rest });
    // `__proto__` as an own key, as JSON.parse makes it (an object literal would set the prototype).
    const protoResult = JSON.parse('{"__proto__": {"polluted": true}}') as unknown;
    const answer = await reports([
      item(good, { outcome: 'succeeded', result: { ok: true } }),
      item(dollar!, { outcome: 'succeeded', result: { $where: 1 } }),
      item(proto!, { outcome: 'succeeded', result: protoResult }),
      item(deep!, { outcome: 'succeeded', result: nested }),
      item(detailsKey!, { outcome: 'failed', error: { message: 'x', details: { $gt: 1 } } }),
      item(lastGood!, { outcome: 'failed', error: { message: 'again' } }),
    ]);
    expect(answer.status).toBe(200);
    const results = answer.body.results as { jobId: string; status?: string; error?: { code: string; details?: { field: string }[] } }[];
    expect(results.map((r) => r.status ?? r.error!.code)).toEqual(['succeeded', 'validation_error', 'validation_error', 'validation_error', 'validation_error', 'queued']);
    expect(results[1]!.error!.details).toEqual([expect.objectContaining({ field: 'body.reports.1.result.$where' })]);
    expect(results[2]!.error!.details).toEqual([expect.objectContaining({ field: 'body.reports.2.result.__proto__' })]);
    expect(results[4]!.error!.details).toEqual([expect.objectContaining({ field: 'body.reports.4.error.details.$gt' })]);
    expect(await stored(good.jobId)).toMatchObject({ status: 'succeeded', result: { ok: true } });
    expect(await stored(lastGood!.jobId)).toMatchObject({ status: 'queued', attempt: 1 });
    for (const job of [dollar, proto, deep, detailsKey]) expect(await stored(job!.jobId)).toMatchObject({ status: 'leased', leaseId: job!.leaseId });
    // The single endpoint answers the same item the same way.
    const single = await call(api.baseUrl, { method: 'POST', path: `/jobs/${dollar!.jobId}/succeed`, token: workerToken, workerId: WORKER, body: { leaseId: dollar!.leaseId, result: { $where: 1 } } });
    expect(single.status).toBe(422);
    expect(single.body.error?.code).toBe('validation_error');
  });

  it('still refuses unsafe keys in the envelope itself', async () => {
    const answer = await call(api.baseUrl, { method: 'POST', path: '/jobs/reports', token: workerToken, workerId: WORKER, body: { reports: [{ jobId: 'job_1', leaseId: 'l', outcome: 'succeeded' }], $x: 1 } });
    expect(answer.status).toBe(422);
    expect((answer.body.error as { details?: unknown } | undefined)?.details).toEqual([expect.objectContaining({ field: 'body.$x' })]);
  });

  it('writes a batch of 50 reports in a fixed handful of round trips, not one per job', async () => {
    await enqueue(50);
    const leased = await leaseOver(api.baseUrl, { workerId: WORKER, limit: 50 });
    api.commands.length = 0;
    const answer = await reports(leased.map((j, i) => (i % 2 === 0 ? { jobId: j.jobId, leaseId: j.leaseId, outcome: 'succeeded' } : { jobId: j.jobId, leaseId: j.leaseId, outcome: 'failed', error: { message: 'x' } })));
    expect((answer.body.results as { status: string }[]).every((r) => r.status === 'succeeded' || r.status === 'queued')).toBe(true);
    process.stdout.write(`batch of 50 reports: ${api.commands.join(', ')}\n`);
    // One read of the 50 jobs, one bulk write.
    expect(api.commands).toEqual(['find jobs', 'update jobs']);
  });

  it('a cancel acknowledged before the batch wins over its failure and its snooze; a tenant token reports only on its tenant', async () => {
    const [failing, snoozing] = await enqueue(2);
    const [acme] = await enqueue(1, {}, serviceToken('svc', 'acme'));
    const leased = await leaseOver(api.baseUrl, { workerId: WORKER, limit: 3 });
    for (const jobId of [failing!, snoozing!]) expect((await call(api.baseUrl, { method: 'POST', path: `/jobs/${jobId}/cancel`, token: serviceToken() })).body.status).toBe('leased');
    const lease = (jobId: string) => leased.find((j) => j.jobId === jobId)!.leaseId;
    const globexWorker = tokenFor('worker', 'w', { tenant: 'globex' });
    const foreign = await reports([{ jobId: acme!, leaseId: lease(acme!), outcome: 'succeeded' }], globexWorker);
    expect((foreign.body.results as { error: { code: string } }[])[0]!.error.code).toBe('job_not_found');
    const answer = await reports([
      { jobId: failing!, leaseId: lease(failing!), outcome: 'failed', error: { message: 'x' } },
      { jobId: snoozing!, leaseId: lease(snoozing!), outcome: 'snoozed', seconds: 5 },
      { jobId: acme!, leaseId: lease(acme!), outcome: 'succeeded' },
    ]);
    expect((answer.body.results as { status: string }[]).map((r) => r.status)).toEqual(['cancelled', 'cancelled', 'succeeded']);
    expect((await stored(failing!)).status).toBe('cancelled');
  });

  it('refuses a malformed envelope with 422 (nothing applied), and other roles before the body', async () => {
    const [jobId] = await enqueue(1);
    const [leased] = await leaseOver(api.baseUrl, { workerId: WORKER });
    const item = { jobId, leaseId: leased!.leaseId, outcome: 'succeeded' };
    for (const body of [{}, { reports: [] }, { reports: Array(101).fill(item) }, { reports: item }, { reports: [item], extra: 1 }, []]) {
      const res = await call(api.baseUrl, { method: 'POST', path: '/jobs/reports', token: workerToken, workerId: WORKER, body });
      expect({ body: JSON.stringify(body).slice(0, 40), status: res.status, code: res.body.error?.code }).toEqual({ body: JSON.stringify(body).slice(0, 40), status: 422, code: 'validation_error' });
    }
    expect((await call(api.baseUrl, { method: 'POST', path: '/jobs/reports', token: serviceToken(), body: { reports: [item] } })).status).toBe(403);
    expect((await call(api.baseUrl, { method: 'POST', path: '/jobs/reports', token: workerToken, body: { reports: [item] } })).status).toBe(422);
    expect((await stored(jobId!)).status).toBe('leased');
    // An admin may report with the lease id alone (as on the single endpoints).
    const asAdmin = await reports([item], adminToken, 'some-admin-tool');
    expect((asAdmin.body.results as { status: string }[])[0]!.status).toBe('succeeded');
  });
});
