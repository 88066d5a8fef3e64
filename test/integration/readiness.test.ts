import request from 'supertest';

import { createApp } from '../../src/app';
import { startJavaServer } from '../../src/embedded-db/java-server';
import type { EmbeddedDatabase } from '../../src/embedded-db/types';
import { connectDatabase } from '../../src/storage/connection';
import { wireApi } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { waitFor } from '../helpers/poll';
import { TEST_JWT_SECRET } from '../helpers/tokens';

// This file stops and restarts its own database server, so it does not share the suite's.
describe('readiness follows the database', () => {
  let server: EmbeddedDatabase | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('answers /readyz 503 while the database is stopped and 200 again once it returns', async () => {
    server = await startJavaServer({ port: 0 });
    const port = server.port;
    const connection = await connectDatabase({
      uri: server.uri,
      dbName: 'readiness',
      timeoutMs: 1_000,
      writeConcern: 'majority',
      readPreference: 'primary',
    });
    const app = createApp(wireApi({ connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 500 }));
    try {
      expect((await request(app).get('/readyz')).status).toBe(200);

      await server.stop();
      const started = Date.now();
      const down = await request(app).get('/readyz');
      expect(down.status).toBe(503);
      expect(down.body.error.code).toBe('unavailable');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await request(app).get('/healthz')).status).toBe(200);

      server = await startJavaServer({ port });
      await waitFor(async () => ((await request(app).get('/readyz')).status === 200 ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: '/readyz to answer 200 after the database returned',
      });
    } finally {
      await connection.close();
    }
  });
});
