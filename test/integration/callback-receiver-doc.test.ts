import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { createApp } from '../../src/app';
import { wireApi, wireServices, type ApiServices } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { startReceiver, type ReceivedCallback } from '../helpers/callback-receiver';
import { useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { ROOT, ServiceProcess } from '../helpers/processes';
import { HttpWorker, listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * The callback receiver that docs/results.md shows ("Verifying a callback") works as printed: its
 * code block, read from the document, runs as a real Node process; an API instance delivers a job's
 * callback to it over a real socket (it verifies and answers 2xx, so the job shows it delivered),
 * and a genuine delivery captured elsewhere is accepted while the same request with its body
 * tampered with, another `t`, a stale `t` or another secret's signature is refused.
 */
const db = useTestDatabase();
const SECRET = 'docs-receiver-secret-0123456789';
const SERVICE = tokenFor('service', 'doc-reader');

function receiverFromDocs(): string {
  const doc = readFileSync(path.join(ROOT, 'docs/results.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### Verifying a callback'));
  const block = /```js\n([\s\S]*?)```/.exec(section);
  if (!block || !block[1]!.includes('function verifySignature')) throw new Error('docs/results.md has no receiver code block under "Verifying a callback"');
  return block[1]!;
}

let dir: string;
let receiver: ServiceProcess;
let receiverUrl: string;
let capture: Awaited<ReturnType<typeof startReceiver>>;
let services: ApiServices;
let api: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'jobs-doc-receiver-'));
  const file = path.join(dir, 'receiver.mjs');
  writeFileSync(file, receiverFromDocs());
  receiver = new ServiceProcess({ command: process.execPath, args: [file], env: { CALLBACK_SECRET: SECRET, PORT: '0' } });
  const port = /listening on port (\d+)/.exec(await receiver.waitForLine(/listening on port \d+/))![1]!;
  receiverUrl = `http://127.0.0.1:${port}/hooks/jobs`;
  capture = await startReceiver();
  const params = {
    connection: db.connection,
    logger: silentLogger,
    jwtSecret: TEST_JWT_SECRET,
    readyTimeoutMs: 1_000,
    reclaimIntervalMs: 0,
    callbacks: { allowedHosts: `127.0.0.1:${port},${capture.host}`, secret: SECRET, retryDelaysMs: [200, 200], pollIntervalMs: 100, maxPollIntervalMs: 200 },
  };
  services = wireServices(params);
  api = await listen(createApp(wireApi(params, services)));
  services.callbacks!.start();
});

afterAll(async () => {
  await services.callbacks?.stop();
  services.jobs.close();
  await api.close();
  await capture.close();
  await receiver.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function finishedJobWithCallback(callbackUrl: string, result: unknown): Promise<string> {
  const res = await fetch(`${api.baseUrl}/jobs`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${SERVICE}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'noop', payload: {}, callbackUrl }),
  });
  expect(res.status).toBe(201);
  const { jobId } = (await res.json()) as { jobId: string };
  const worker = new HttpWorker(api.baseUrl, tokenFor('worker'), 'doc-worker-1');
  const [lease] = await worker.lease({ limit: 1 });
  expect(lease?.jobId).toBe(jobId);
  expect((await worker.report(jobId, 'succeed', { leaseId: lease!.leaseId, result })).status).toBe(200);
  return jobId;
}

async function callbackOf(jobId: string): Promise<Record<string, unknown> | null> {
  const res = await fetch(`${api.baseUrl}/jobs/${jobId}`, { headers: { Authorization: `Bearer ${SERVICE}` } });
  return ((await res.json()) as { callback: Record<string, unknown> | null }).callback;
}

/** Sends a request to the documented receiver as the API would; resolves with its status. */
async function sendToReceiver(params: { body: string; signature: string; deliveryId: string }): Promise<number> {
  const res = await fetch(receiverUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Jobs-Delivery': params.deliveryId, 'X-Jobs-Signature': params.signature },
    body: params.body,
  });
  await res.arrayBuffer();
  return res.status;
}

function signed(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

it('verifies a real delivery from the API and answers 2xx, so the job shows its callback delivered', async () => {
  const jobId = await finishedJobWithCallback(receiverUrl, { rows: 3 });
  const callback = await waitFor(async () => {
    const c = await callbackOf(jobId);
    return c?.status === 'delivered' ? c : undefined;
  }, { what: 'the delivery to the documented receiver' });
  expect(callback).toMatchObject({ url: receiverUrl, status: 'delivered', attempts: 1 });
  await receiver.waitForLine(new RegExp(`^verified ${String(callback.deliveryId)}: job ${jobId} succeeded \\{"rows":3\\}$`), 5_000);
  expect(receiver.lines.filter((line) => line.startsWith('refused'))).toEqual([]);
});

it('accepts a genuine delivery captured from the API and refuses it tampered with, re-timed, stale or signed with another secret', async () => {
  const jobId = await finishedJobWithCallback(capture.url, { total: 42 });
  const got: ReceivedCallback = await waitFor(() => capture.received.find((r) => r.body.includes(jobId)), { what: 'the captured delivery' });
  const signature = String(got.headers['x-jobs-signature']);
  const deliveryId = String(got.headers['x-jobs-delivery']);
  const t = Number(/^t=(\d+),/.exec(signature)![1]);
  const now = Math.floor(Date.now() / 1000);

  const cases = {
    genuine: await sendToReceiver({ body: got.body, signature, deliveryId }),
    tamperedBody: await sendToReceiver({ body: got.body.replace('"succeeded"', '"failed"'), signature, deliveryId }),
    spaceAdded: await sendToReceiver({ body: `${got.body} `, signature, deliveryId }),
    otherT: await sendToReceiver({ body: got.body, signature: signature.replace(`t=${t},`, `t=${t + 1},`), deliveryId }),
    staleButSigned: await sendToReceiver({ body: got.body, signature: signed(SECRET, now - 600, got.body), deliveryId }),
    otherSecret: await sendToReceiver({ body: got.body, signature: signed('another-secret-0123456789', now, got.body), deliveryId }),
    noSignature: await sendToReceiver({ body: got.body, signature: '', deliveryId }),
  };
  expect(cases).toEqual({ genuine: 204, tamperedBody: 401, spaceAdded: 401, otherT: 401, staleButSigned: 401, otherSecret: 401, noSignature: 401 });
  await receiver.waitForLine(new RegExp(`^verified ${deliveryId}: job ${jobId} succeeded \\{"total":42\\}$`), 5_000);
  expect(receiver.lines.filter((line) => line.startsWith('refused'))).toHaveLength(6);
});
