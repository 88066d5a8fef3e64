import { startApi } from '../../src/api-server';
import { loadApiConfig, loadWorkerConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { uriWithDatabase } from '../../src/mongo-uri';
import { startWorker } from '../../src/worker/worker-process';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

const db = useTestDatabase();
const logger = createLogger({ level: 'silent', name: 'database-name-test' });

describe('a MONGODB_URI that names a database', () => {
  it('is where the API and the worker keep their data, whatever MONGODB_DB_NAME says', async () => {
    const env = {
      MONGODB_URI: uriWithDatabase(testDatabaseUri(), db.dbName),
      MONGODB_DB_NAME: 'not_this_one',
      JWT_SECRET: TEST_JWT_SECRET,
      PORT: '0',
      SCHEDULER_INTERVAL_MS: '0',
      RETENTION_INTERVAL_MS: '0',
    };
    const api = await startApi({ config: loadApiConfig(env), logger });
    const baseUrl = `http://127.0.0.1:${api.port}`;
    const worker = await startWorker({
      config: loadWorkerConfig({ ...env, JOBS_API_URL: baseUrl, WORKER_TOKEN: tokenFor('worker', 'db-name-worker'), WORKER_ID: 'db-name-worker', WORKER_LEASE_WAIT_SECONDS: '1' }),
      logger,
    });
    try {
      expect(api.connection.name).toBe(db.dbName);
      expect(worker.connection.name).toBe(db.dbName);
      const res = await fetch(`${baseUrl}/jobs`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${tokenFor('service', 'db-name-service')}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'noop', payload: {} }),
      });
      expect(res.status).toBe(201);
      const { jobId } = (await res.json()) as { jobId: string };
      const done = await waitFor(async () => {
        const job = await db.connection.collection('jobs').findOne({ _id: jobId as never });
        return job?.status === 'succeeded' ? job : undefined;
      }, { what: 'the job to succeed in the database the URI names' });
      expect(done.workerId).toBe('db-name-worker');
      const elsewhere = api.connection.useDb('not_this_one');
      expect(await elsewhere.collection('jobs').countDocuments()).toBe(0);
    } finally {
      await worker.close();
      await api.close();
    }
  });
});
