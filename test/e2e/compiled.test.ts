import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { apiNodeFlags } from '../../bench/lib/services';
import { uriWithDatabase } from '../../src/mongo-uri';
import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { ROOT, ServiceProcess } from '../helpers/processes';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

// The production form: compiled JavaScript from dist/ (what `npm run api` and the Docker image run).
jest.setTimeout(240_000);
const db = useTestDatabase();
let api: ServiceProcess | undefined;

/** The node flags of `npm run api` (package.json) and of the image's CMD (Dockerfile). */
function productionApiFlags(): { npm: string[]; docker: string[] } {
  const npm = apiNodeFlags();
  const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))![1]!;
  const docker = (JSON.parse(cmd) as string[]).slice(1, -1);
  return { npm, docker };
}

beforeAll(() => {
  // What `npm run api` does first: builds dist/ when src/ changed (a no-op when it is fresh).
  const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--if-stale'], { cwd: ROOT, encoding: 'utf8', timeout: 200_000 });
  if (build.status !== 0) throw new Error(`build failed: ${build.stderr}${build.stdout}`);
});

afterAll(async () => {
  await api?.stop();
});

describe('the compiled API (dist/)', () => {
  it('holds the service and its static files, and no test code', () => {
    for (const file of ['main-api.js', 'main-worker.js', 'main-local.js', 'dashboard/static/index.html', 'dashboard/static/app.js']) {
      expect(existsSync(path.join(ROOT, 'dist', file))).toBe(true);
    }
    expect(existsSync(path.join(ROOT, 'dist', 'test'))).toBe(false);
  });

  it('is started with the same node flags by npm run api and by the container image (the V8 heap settings that bound its memory)', () => {
    const { npm, docker } = productionApiFlags();
    expect(npm).toContain('--heap-growing-percent=50');
    expect(docker).toEqual(npm);
  });

  it('serves with plain node: probes, the dashboard, the API reference and an enqueue; SIGTERM exits 0', async () => {
    api = new ServiceProcess({
      command: process.execPath,
      args: [...productionApiFlags().npm, path.join(ROOT, 'dist', 'main-api.js')],
      env: { MONGODB_URI: uriWithDatabase(testDatabaseUri(), db.dbName), JWT_SECRET: TEST_JWT_SECRET, PORT: '0', SCHEDULER_INTERVAL_MS: '0', RETENTION_INTERVAL_MS: '0', NODE_ENV: 'production' },
    });
    const port = (JSON.parse(await api.waitForLine(/"msg":"API listening"/, 30_000)) as { port: number }).port;
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const dashboard = await fetch(`${base}/dashboard`);
    expect(dashboard.status).toBe(200);
    expect(await dashboard.text()).toContain('<html');
    expect((await fetch(`${base}/dashboard/app.js`)).status).toBe(200);
    expect((await fetch(`${base}/docs/`)).status).toBe(200);
    expect((await fetch(`${base}/openapi.json`)).status).toBe(200);
    const enqueued = await fetch(`${base}/jobs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokenFor('service', 'compiled-check')}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'noop', payload: {} }),
    });
    expect(enqueued.status).toBe(201);
    expect(await db.connection.collection('jobs').countDocuments()).toBe(1);
    api.signal('SIGTERM');
    expect(await api.exited).toEqual({ code: 0, signal: null });
  });
});
