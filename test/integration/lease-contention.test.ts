import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { call, leaseOver, serviceToken, startApiInstance } from '../helpers/instances';
import { leaseJobs } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';

const db = useTestDatabase();
let apps: ReturnType<typeof buildTestApp>[];
beforeAll(() => {
  // Two API instances on one database: lease calls race through both, as two processes' would.
  apps = [buildTestApp(db), buildTestApp(db)];
});
beforeEach(async () => {
  await db.connection.collection('jobs').deleteMany({});
});

describe('lease calls that race for the same candidates', () => {
  it('a call that lost every race to other workers tries again while work remains, instead of answering empty', async () => {
    const res = await request(apps[0]!)
      .post('/jobs/batch')
      .set(bearer('service'))
      .send({ jobs: Array.from({ length: 400 }, () => ({ type: 'noop', payload: {} })) });
    expect(res.status).toBe(200);
    const leasedIds: string[] = [];
    // Two rounds of 12 concurrent calls of up to 16 jobs (384 of 400): there is always enough work
    // for every call, but all of them read the same best candidates first.
    for (let round = 0; round < 2; round += 1) {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => leaseJobs(apps[i % 2]!, { workerId: `racer-${round}-${i}`, limit: 16, type: 'noop' })));
      const sizes = answers.map((jobs) => jobs.length);
      expect(sizes.filter((n) => n === 0)).toEqual([]);
      for (const jobs of answers) leasedIds.push(...jobs.map((j) => j.jobId));
    }
    // Nothing was handed out twice.
    expect(new Set(leasedIds).size).toBe(leasedIds.length);
    expect(await db.connection.collection('jobs').countDocuments({ status: 'leased' })).toBe(leasedIds.length);
  });
});

describe('lease calls racing on one API instance', () => {
  it('never race each other: every claim they send wins, and each job goes to one of them', async () => {
    const api = await startApiInstance(db, { reclaimIntervalMs: 0 });
    try {
      const res = await call(api.baseUrl, { method: 'POST', path: '/jobs/batch', token: serviceToken(), body: { jobs: Array.from({ length: 300 }, () => ({ type: 'noop', payload: {} })) } });
      expect(res.status).toBe(200);
      // Every claim update on the jobs, with how many of its conditional updates matched.
      const claims: { sent: number; matched: number }[] = [];
      api.connection.getClient().on('commandSucceeded', (event) => {
        const reply = event.reply as { n?: number };
        if (event.commandName === 'update' && pendingUpdates.has(event.requestId)) {
          claims.push({ sent: pendingUpdates.get(event.requestId)!, matched: reply.n ?? 0 });
        }
      });
      const pendingUpdates = new Map<number, number>();
      api.connection.getClient().on('commandStarted', (event) => {
        if (event.commandName === 'update' && event.command.update === 'jobs') pendingUpdates.set(event.requestId, (event.command.updates as unknown[]).length);
      });

      // 12 concurrent calls of up to 16 (192 of 300): all of them read the same best candidates first.
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => leaseOver(api.baseUrl, { workerId: `racer-${i}`, limit: 16, type: 'noop' })));
      const leased = answers.flatMap((jobs) => jobs.map((j) => j.jobId));
      expect(answers.map((jobs) => jobs.length)).toEqual(Array.from({ length: 12 }, () => 16));
      expect(new Set(leased).size).toBe(192);
      expect(await db.connection.collection('jobs').countDocuments({ status: 'leased' })).toBe(192);
      // No call of this instance sent a claim another call of it had already taken.
      expect(claims.length).toBeGreaterThanOrEqual(12);
      expect(claims.filter((c) => c.matched < c.sent)).toEqual([]);
    } finally {
      await api.close();
    }
  });
});
