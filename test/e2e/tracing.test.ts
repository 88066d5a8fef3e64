import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { testDatabaseUri, useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { ROOT, startApiProcess, startWorkerProcess, type ServiceProcess } from '../helpers/processes';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * Tracing end to end: a real API process and a real worker process, configured by the standard
 * OTEL_* variables only (OTLP over HTTP, JSON), export to an in-process OTLP/HTTP receiver; one job
 * enqueued with a `traceparent` makes one trace from `POST /jobs` to the worker's `job.run`, with the
 * lease and the report in between. Without the variables, nothing of OpenTelemetry is loaded.
 */
jest.setTimeout(90_000);
const db = useTestDatabase();

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
  service: string;
}

const spans: OtlpSpan[] = [];
let receiver: http.Server;
let endpoint = '';
const processes: ServiceProcess[] = [];

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  if (!value) return undefined;
  return value.stringValue ?? (value.intValue === undefined ? value.boolValue : Number(value.intValue));
}

beforeAll(async () => {
  // A minimal OTLP/HTTP collector: POST /v1/traces with a JSON ExportTraceServiceRequest.
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && String(req.headers['content-type']).startsWith('application/json')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: Omit<OtlpSpan, 'service'>[] }[] }[];
        };
        for (const rs of body.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
          for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ ...span, service });
        }
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const p of processes) await p.stop();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

it('one trace runs from POST /jobs (continuing its traceparent) through the lease to job.run and its report', async () => {
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '200' };
  const { api, baseUrl } = await startApiProcess({ MONGODB_URI: testDatabaseUri(), MONGODB_DB_NAME: db.dbName, JWT_SECRET: TEST_JWT_SECRET, ...otel });
  processes.push(api);
  await api.waitForLine(/"tracing":true/);
  const worker = startWorkerProcess({
    JOBS_API_URL: baseUrl,
    WORKER_TOKEN: tokenFor('worker', 'traced-worker'),
    WORKER_ID: 'traced-worker-1',
    WORKER_TYPES: 'noop',
    WORKER_LEASE_WAIT_SECONDS: '1',
    MONGODB_URI: testDatabaseUri(),
    MONGODB_DB_NAME: db.dbName,
    ...otel,
  });
  processes.push(worker);
  await worker.waitForLine(/worker started/);

  const traceId = randomBytes(16).toString('hex');
  const callerSpanId = randomBytes(8).toString('hex');
  const res = await fetch(`${baseUrl}/jobs`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${tokenFor('service', 'traced')}`, 'Content-Type': 'application/json', traceparent: `00-${traceId}-${callerSpanId}-01` },
    body: JSON.stringify({ type: 'noop', payload: { sleepMs: 50 } }),
  });
  expect(res.status).toBe(201);
  const { jobId } = (await res.json()) as { jobId: string };
  await waitFor(
    async () => {
      const job = (await (await fetch(`${baseUrl}/jobs/${jobId}`, { headers: { Authorization: `Bearer ${tokenFor('service', 'traced')}` } })).json()) as { status: string };
      return job.status === 'succeeded' ? true : undefined;
    },
    { what: 'the job to succeed', timeoutMs: 30_000 },
  );

  const inTrace = (): OtlpSpan[] => spans.filter((s) => s.traceId === traceId);
  const named = (name: string, service?: string): OtlpSpan | undefined => inTrace().find((s) => s.name === name && (service === undefined || s.service === service));
  await waitFor(() => (named('job.run') && named('POST /jobs/:jobId/succeed', 'jobs-api') ? true : undefined), { what: 'the spans of the trace', timeoutMs: 20_000 });

  const enqueue = named('POST /jobs', 'jobs-api')!;
  expect(enqueue).toBeDefined();
  // The API's span continues the caller's trace.
  expect(enqueue.parentSpanId).toBe(callerSpanId);
  expect(attribute(enqueue, 'http.response.status_code')).toBe(201);
  const leased = named('job.leased', 'jobs-api')!;
  expect(leased.parentSpanId).toBe(enqueue.spanId);
  expect(attribute(leased, 'job.id')).toBe(jobId);
  const run = named('job.run', 'jobs-worker')!;
  expect(run.parentSpanId).toBe(enqueue.spanId);
  expect({ id: attribute(run, 'job.id'), type: attribute(run, 'job.type'), attempt: attribute(run, 'job.attempt') }).toEqual({ id: jobId, type: 'noop', attempt: 1 });
  // The worker's report is a client span of job.run, and the API's handling of it a server span under that.
  const report = named('POST /jobs/:jobId/succeed', 'jobs-worker')!;
  expect(report.parentSpanId).toBe(run.spanId);
  expect(named('POST /jobs/:jobId/succeed', 'jobs-api')!.parentSpanId).toBe(report.spanId);
  // The lease call itself belongs to the worker's polling, not to the job's trace.
  expect(spans.some((s) => s.name === 'GET /jobs/lease' && s.service === 'jobs-worker' && s.traceId !== traceId)).toBe(true);
  process.stdout.write(`tracing: one trace of ${inTrace().length} spans: ${[...new Set(inTrace().map((s) => `${s.service}:${s.name}`))].join(', ')}\n`);
});

it('without OTEL_* variables, loading and starting the service loads nothing of the OpenTelemetry SDK', () => {
  const script = [
    "const { startTracing } = require('./src/tracing/tracing');",
    "require('./src/api-server'); require('./src/worker/worker-process');",
    "startTracing({ env: {}, serviceName: 'x' }).then((t) => {",
    // prom-client always loads @opentelemetry/api (its dependency, for exemplars): a no-op facade. The SDK is what must stay out.
    "  const loaded = Object.keys(require.cache).filter((k) => k.includes('@opentelemetry') && !k.includes('@opentelemetry/api/'));",
    '  process.stdout.write(JSON.stringify({ enabled: t.enabled, loaded }));',
    '});',
  ].join('\n');
  const result = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  expect(result.status).toBe(0);
  expect(JSON.parse(result.stdout)).toEqual({ enabled: false, loaded: [] });
});
