import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { payoutPayload, thumbnailPayload } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();
const clock = new TestClock();
let app: ReturnType<typeof buildTestApp>;
beforeAll(() => {
  app = buildTestApp(db, { clock });
});

const service = bearer('service', 'svc-thumbs');

describe('POST /jobs', () => {
  it('creates a queued job (201) with attempt 0 and the type policy as maxAttempts', async () => {
    const res = await request(app).post('/jobs').set(service).send({ type: 'thumbnail.create', payload: thumbnailPayload({ sizes: [64, 128] }) });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ jobId: expect.stringMatching(/^job_[0-9a-f]{24}$/), status: 'queued', type: 'thumbnail.create', nextRunAt: clock.now().toISOString(), attempt: 0 });

    const detail = await request(app).get(`/jobs/${res.body.jobId}`).set(service);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({
      jobId: res.body.jobId,
      type: 'thumbnail.create',
      status: 'queued',
      priority: 50,
      payload: { assetId: 'asset_0123456789abcdef01234567', versionNumber: 1, sizes: [64, 128] },
      attempt: 0,
      maxAttempts: 3,
      nextRunAt: clock.now().toISOString(),
      leaseExpiresAt: null,
      workerId: null,
      progress: 0,
      result: null,
      lastError: null,
      attempts: [],
      createdBy: 'svc-thumbs',
      createdAt: clock.now().toISOString(),
      updatedAt: clock.now().toISOString(),
      startedAt: null,
      completedAt: null,
    });
  });

  it('honours priority, scheduleAt and maxAttempts', async () => {
    const scheduleAt = new Date(clock.now().getTime() + 60_000).toISOString();
    const res = await request(app)
      .post('/jobs')
      .set(service)
      .send({ type: 'payout.execute', payload: payoutPayload(), priority: 90, scheduleAt, maxAttempts: 2 });
    expect(res.status).toBe(201);
    expect(res.body.nextRunAt).toBe(scheduleAt);
    const detail = await request(app).get(`/jobs/${res.body.jobId}`).set(service);
    expect(detail.body).toMatchObject({ priority: 90, maxAttempts: 2, nextRunAt: scheduleAt });
  });

  it.each([
    ['type is not a string', { type: 42, payload: {} }, 'body.type'],
    ['type is missing', { payload: {} }, 'body.type'],
    ['priority above 100', { type: 'thumbnail.create', payload: thumbnailPayload(), priority: 101 }, 'body.priority'],
    ['priority not an integer', { type: 'thumbnail.create', payload: thumbnailPayload(), priority: 1.5 }, 'body.priority'],
    ['scheduleAt not a date', { type: 'thumbnail.create', payload: thumbnailPayload(), scheduleAt: 'tomorrow' }, 'body.scheduleAt'],
    ['maxAttempts 0', { type: 'thumbnail.create', payload: thumbnailPayload(), maxAttempts: 0 }, 'body.maxAttempts'],
    ['an empty idempotencyKey', { type: 'thumbnail.create', payload: thumbnailPayload(), idempotencyKey: '' }, 'body.idempotencyKey'],
    ['an unknown field', { type: 'thumbnail.create', payload: thumbnailPayload(), color: 'red' }, 'body'],
  ])('answers 422 validation_error when %s', async (_name, body, field) => {
    const res = await request(app).post('/jobs').set(service).send(body);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
  });

  it('answers 422 when the body is not an object', async () => {
    const res = await request(app).post('/jobs').set(service).set('Content-Type', 'application/json').send('"just a string"');
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
  });

  it('answers 404 job_type_not_found for an unregistered type', async () => {
    const res = await request(app).post('/jobs').set(service).send({ type: 'email.send', payload: {} });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('job_type_not_found');
  });

  it('answers an unsafe key or too deep nesting in a payload 422 payload_invalid, naming the field', async () => {
    let nested: Record<string, unknown> = {};
    for (let i = 0; i < 40; i += 1) nested = { n: nested };
    for (const [payload, field] of [
      [{ 'a.b': 1 }, 'payload.a.b'],
      [{ $where: '1' }, 'payload.$where'],
      [JSON.parse('{"__proto__": {"x": 1}}') as unknown, 'payload.__proto__'],
      [nested, expect.stringMatching(/^payload\.n\.n/)],
    ] as const) {
      const res = await request(app).post('/jobs').set(service).send({ type: 'noop', payload });
      expect({ status: res.status, code: res.body.error.code, fields: (res.body.error.details as { field: string }[]).map((d) => d.field) }).toEqual({ status: 422, code: 'payload_invalid', fields: [field] });
    }
  });

  it('answers 404 job_type_not_found for any string that is not registered: empty, or long (echoed in short), and 422 for a type that is not a string', async () => {
    const empty = await request(app).post('/jobs').set(service).send({ type: '', payload: {} });
    expect(empty.status).toBe(404);
    expect(empty.body.error).toEqual({ code: 'job_type_not_found', message: 'job type "" is not registered' });
    const long = await request(app).post('/jobs').set(service).send({ type: 'x'.repeat(5_000), payload: {} });
    expect(long.status).toBe(404);
    expect(long.body.error.code).toBe('job_type_not_found');
    expect(long.body.error.message.length).toBeLessThan(120);
    const batch = await request(app).post('/jobs/batch').set(service).send({ jobs: [{ type: '', payload: {} }] });
    expect(batch.status).toBe(200);
    expect(batch.body.results[0]).toMatchObject({ error: { code: 'job_type_not_found' } });
    for (const type of [42, null, ['noop']]) {
      const res = await request(app).post('/jobs').set(service).send({ type, payload: {} });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('validation_error');
    }
  });

  it.each([
    ['a missing required field', { versionNumber: 1 }, ['payload.assetId']],
    ['a wrong type', { assetId: 'a', versionNumber: '1' }, ['payload.versionNumber']],
    ['an unknown field', { assetId: 'a', versionNumber: 1, colour: 'red' }, ['payload']],
    ['a version below 1 and bad sizes', { assetId: 'a', versionNumber: 0, sizes: ['big'] }, ['payload.versionNumber', 'payload.sizes.0']],
    ['no payload at all', undefined, ['payload']],
  ])('answers 422 payload_invalid with the failing fields for %s', async (_name, payload, fields) => {
    const res = await request(app).post('/jobs').set(service).send({ type: 'thumbnail.create', payload });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('payload_invalid');
    const reported = (res.body.error.details as { field: string }[]).map((d) => d.field);
    for (const field of fields) expect(reported).toContain(field);
  });

  it('rejects payout payloads of the wrong shape', async () => {
    const res = await request(app).post('/jobs').set(service).send({ type: 'payout.execute', payload: { batchId: 'b', escrowId: 'e', isRetry: 'yes' } });
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual([expect.objectContaining({ field: 'payload.isRetry' })]);
  });

  it('returns the first job (200) for a repeated idempotency key and type', async () => {
    const body = { type: 'thumbnail.create', payload: thumbnailPayload(), idempotencyKey: 'upload-42' };
    const first = await request(app).post('/jobs').set(service).send(body);
    const second = await request(app).post('/jobs').set(service).send({ ...body, priority: 99 });
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body.jobId).toBe(first.body.jobId);
    const otherType = await request(app).post('/jobs').set(service).send({ type: 'payout.execute', payload: payoutPayload(), idempotencyKey: 'upload-42' });
    expect(otherType.status).toBe(201);
    expect(otherType.body.jobId).not.toBe(first.body.jobId);
  });

  it('creates exactly one job when 25 requests race with the same idempotency key', async () => {
    const body = { type: 'thumbnail.create', payload: thumbnailPayload(), idempotencyKey: 'race-key' };
    const responses = await Promise.all(Array.from({ length: 25 }, () => request(app).post('/jobs').set(service).send(body)));
    const ids = new Set(responses.map((r) => r.body.jobId as string));
    expect(ids.size).toBe(1);
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200)).toHaveLength(24);
    expect(await db.connection.collection('jobs').countDocuments({ idempotencyKey: 'race-key' })).toBe(1);
  });

  it.each(['worker', 'user'] as const)('answers 403 permission_denied to a %s token', async (role) => {
    const res = await request(app).post('/jobs').set(bearer(role)).send({ type: 'thumbnail.create', payload: thumbnailPayload() });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('permission_denied');
  });

  it('answers 401 without a token', async () => {
    const res = await request(app).post('/jobs').send({ type: 'thumbnail.create', payload: thumbnailPayload() });
    expect(res.status).toBe(401);
  });
});
