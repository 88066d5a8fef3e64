import request from 'supertest';

import { PartialResult } from '../../src/worker/handler';
import { createNoopHandler } from '../../src/worker/handlers/noop';
import { buildTestApp, silentLogger } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, leaseJobs, report } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();
let app: ReturnType<typeof buildTestApp>;
beforeAll(() => {
  app = buildTestApp(db);
});

describe('partial results', () => {
  it('a job that succeeds with some items failed is succeeded, marked partial and counted apart', async () => {
    const partialJob = await enqueueJob(app, { type: 'noop', payload: {} });
    const fullJob = await enqueueJob(app, { type: 'noop', payload: {} });
    const leased = await leaseJobs(app, { limit: 2 });
    const result = { processed: 8, partial: true, itemErrors: [{ item: 'photo-3.png', code: 'not_an_image', message: 'bytes are not an image' }, { item: 7, message: 'timed out' }] };
    for (const job of leased) {
      const body = job.jobId === partialJob ? { leaseId: job.leaseId, result } : { leaseId: job.leaseId, result: { processed: 10 } };
      expect((await report(app, job.jobId, 'succeed', body)).status).toBe(200);
    }
    const detail = await request(app).get(`/jobs/${partialJob}`).set(bearer('admin'));
    expect(detail.body).toMatchObject({ status: 'succeeded', partial: true, result });
    expect((await request(app).get(`/jobs/${fullJob}`).set(bearer('admin'))).body.partial).toBe(false);
    const stats = await request(app).get('/admin/jobs/stats').set(bearer('admin'));
    expect(stats.body).toMatchObject({ partialSucceeded: 1, partialSucceededByType: { noop: 1 } });
    expect(stats.body.statusCounts.succeeded).toBe(2);
  });

  it.each([
    ['no itemErrors', { partial: true }],
    ['itemErrors without messages', { partial: true, itemErrors: [{ item: 'a' }] }],
    ['itemErrors that are not a list', { partial: true, itemErrors: 'some failed' }],
  ])('refuses a partial result with %s (422) and leaves the lease in place', async (_name, result) => {
    const jobId = await enqueueJob(app, { type: 'noop', payload: {} });
    const [job] = await leaseJobs(app);
    const res = await report(app, jobId, 'succeed', { leaseId: job!.leaseId, result });
    expect(res.status).toBe(422);
    expect((await request(app).get(`/jobs/${jobId}`).set(bearer('admin'))).body.status).toBe('leased');
    expect((await report(app, jobId, 'succeed', { leaseId: job!.leaseId })).status).toBe(200);
  });

  it('a handler returns a PartialResult, which the runner reports in that shape', async () => {
    const handler = createNoopHandler();
    const outcome = await handler({
      jobId: 'job_x',
      type: 'noop',
      payload: { failItems: ['a', 'b'] },
      attempt: 1,
      signal: new AbortController().signal,
      reportProgress: () => undefined,
      pointOfNoReturn: async () => undefined,
      checkpoint: null,
      saveCheckpoint: async () => undefined,
      uploadFile: () => Promise.reject(new Error('this handler uploads no files')),
      logger: silentLogger,
    });
    expect(outcome).toBeInstanceOf(PartialResult);
    expect(JSON.parse(JSON.stringify(outcome))).toEqual({
      sleptMs: 0,
      partial: true,
      itemErrors: [
        { item: 'a', code: 'item_failed', message: 'item a failed (as asked)' },
        { item: 'b', code: 'item_failed', message: 'item b failed (as asked)' },
      ],
    });
  });
});
