import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
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
