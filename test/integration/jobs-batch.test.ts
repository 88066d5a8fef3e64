import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, payoutPayload, thumbnailPayload } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();
let app: ReturnType<typeof buildTestApp>;
beforeAll(() => {
  app = buildTestApp(db);
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

const service = bearer('service', 'svc-batch');
const thumb = (extra: Record<string, unknown> = {}) => ({ type: 'thumbnail.create', payload: thumbnailPayload(), ...extra });

describe('POST /jobs/batch', () => {
  it('validates each job on its own and answers one result per job, in order', async () => {
    const res = await request(app)
      .post('/jobs/batch')
      .set(service)
      .send({
        jobs: [
          thumb(),
          { type: 'email.send', payload: {} },
          { type: 'payout.execute', payload: payoutPayload(), priority: 90 },
          thumb({ payload: { assetId: 'a', versionNumber: '1' } }),
          { type: 42 },
          thumb({ scheduleAt: '2040-01-01T00:00:00.000Z' }),
        ],
      });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 3, existing: 0, rejected: 3 });
    const results = res.body.results as Record<string, { code?: string; details?: { field: string }[] } | string | boolean>[];
    expect(results).toHaveLength(6);
    expect(results[0]).toMatchObject({ jobId: expect.stringMatching(/^job_/), status: 'queued', type: 'thumbnail.create', created: true });
    expect(results[1]).toMatchObject({ error: { code: 'job_type_not_found' } });
    expect(results[2]).toMatchObject({ type: 'payout.execute', created: true });
    expect(results[3]).toMatchObject({ error: { code: 'payload_invalid', details: [expect.objectContaining({ field: 'payload.versionNumber' })] } });
    expect(results[4]).toMatchObject({ error: { code: 'validation_error', details: [expect.objectContaining({ field: 'body.jobs.4.type' })] } });
    expect(results[5]).toMatchObject({ nextRunAt: '2040-01-01T00:00:00.000Z', created: true });
    expect(await db.connection.collection('jobs').countDocuments()).toBe(3);
  });

  it('answers a job with unsafe keys or too deep nesting in its own result and creates the others; unsafe keys in the envelope refuse it', async () => {
    let nested: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 40; i += 1) nested = { n: nested };
    const res = await request(app)
      .post('/jobs/batch')
      .set(service)
      .send({ jobs: [thumb(), { type: 'noop', payload: { $where: '1' } }, { type: 'noop', payload: nested }, { type: 'noop', payload: {}, tags: { 'a.b': 1 } }, thumb()] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 2, existing: 0, rejected: 3 });
    const results = res.body.results as { created?: boolean; error?: { code: string; details?: { field: string }[] } }[];
    // In a payload, as its type's schema failing would be: payload_invalid, the field named from the payload.
    expect(results.map((r) => r.error?.code ?? r.created)).toEqual([true, 'payload_invalid', 'payload_invalid', 'validation_error', true]);
    expect(results[1]!.error!.details).toEqual([expect.objectContaining({ field: 'payload.$where' })]);
    expect(results[3]!.error!.details).toEqual([expect.objectContaining({ field: 'body.jobs.3.tags.a.b' })]);
    expect(await db.connection.collection('jobs').countDocuments()).toBe(2);
    const envelope = await request(app).post('/jobs/batch').set(service).send({ jobs: [thumb()], $set: { x: 1 } });
    expect(envelope.status).toBe(422);
    expect(await db.connection.collection('jobs').countDocuments()).toBe(2);
  });

  it('honours idempotency keys per job, against earlier jobs and within the batch', async () => {
    const earlier = await enqueueJob(app, thumb({ idempotencyKey: 'k-1' }), 'svc-batch');
    const res = await request(app)
      .post('/jobs/batch')
      .set(service)
      .send({ jobs: [thumb({ idempotencyKey: 'k-1' }), thumb({ idempotencyKey: 'k-2' }), thumb({ idempotencyKey: 'k-2' }), thumb()] });
    expect(res.body).toMatchObject({ created: 2, existing: 2, rejected: 0 });
    const [first, second, third] = res.body.results as { jobId: string; created: boolean }[];
    expect(first).toMatchObject({ jobId: earlier, created: false });
    expect(second!.created).toBe(true);
    expect(third).toMatchObject({ jobId: second!.jobId, created: false });
    expect(await db.connection.collection('jobs').countDocuments()).toBe(3);
  });

  it('takes 1,000 jobs and refuses 1,001 or none', async () => {
    const ok = await request(app).post('/jobs/batch').set(service).send({ jobs: Array.from({ length: 1_000 }, () => thumb()) });
    expect(ok.status).toBe(200);
    expect(ok.body.created).toBe(1_000);
    expect(await db.connection.collection('jobs').countDocuments()).toBe(1_000);
    for (const jobs of [Array.from({ length: 1_001 }, () => thumb()), []]) {
      const res = await request(app).post('/jobs/batch').set(service).send({ jobs });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('validation_error');
    }
  });

  it('is for services and admins only', async () => {
    for (const role of ['worker', 'user'] as const) {
      expect((await request(app).post('/jobs/batch').set(bearer(role)).send({ jobs: [thumb()] })).status).toBe(403);
    }
    expect((await request(app).post('/jobs/batch').set(bearer('admin')).send({ jobs: [thumb()] })).status).toBe(200);
  });
});
