import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium, type BrowserContext, type Page } from 'playwright-core';

import { createApp } from '../../src/app';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from '../helpers/app';
import { startReceiver } from '../helpers/callback-receiver';
import { chromiumForTests } from '../helpers/chromium';
import { useTestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/poll';
import { HttpWorker, listen } from '../helpers/server';
import { TEST_JWT_SECRET, tokenFor } from '../helpers/tokens';

/**
 * The dashboard's operations views in Chromium: bulk requeue and cancel of the filtered queue (the
 * dry-run count shown before anything changes), a URL per filter and per job, search by job id or
 * idempotency key, the callback state and result files of a job, the workers view, and a layout
 * that fits a phone's width.
 */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');

const db = useTestDatabase();
let services: ApiServices;
let server: Awaited<ReturnType<typeof listen>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let context: BrowserContext;
let userDataDir: string;
const pageErrors: string[] = [];
const ADMIN = tokenFor('admin', 'alice');
const SERVICE = tokenFor('service', 'billing');

beforeAll(async () => {
  const executablePath = chromiumForTests();
  receiver = await startReceiver();
  const params: ApiWiringParams = {
    connection: db.connection,
    logger: silentLogger,
    jwtSecret: TEST_JWT_SECRET,
    readyTimeoutMs: 1_000,
    reclaimIntervalMs: 0,
    callbacks: { allowedHosts: receiver.host, secret: 'dashboard-callback-secret-0123', pollIntervalMs: 100, maxPollIntervalMs: 200 },
  };
  services = wireServices(params);
  services.callbacks?.start();
  server = await listen(createApp(wireApi(params, services)));
  userDataDir = mkdtempSync(path.join(os.tmpdir(), 'jobs-dashboard-ops-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, { executablePath, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
  context.on('weberror', (err) => pageErrors.push(err.error().message));
}, 60_000);

afterAll(async () => {
  await context?.close();
  await services?.callbacks?.stop();
  services?.jobs.close();
  await server?.close();
  await receiver?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

async function call(method: string, p: string, body?: unknown, token = SERVICE, extra: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.baseUrl}${p}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...extra },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status >= 300) throw new Error(`${method} ${p} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? '').trim();
}

async function signedIn(url: string, viewport?: { width: number; height: number }): Promise<Page> {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  await page.goto(url);
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#token-input', ADMIN);
  await page.click('#login-button');
  await page.locator('#dashboard').waitFor({ state: 'visible' });
  return page;
}

/** Three dead payouts, two queued noops (tagged), and a noop with a callback and a result file, run by a worker that still holds another job. */
async function seed(): Promise<{ dead: string[]; queued: string[]; withExtras: string; held: string }> {
  const worker = new HttpWorker(server.baseUrl, tokenFor('worker'), 'dash-worker-1');
  const dead: string[] = [];
  for (let i = 0; i < 3; i += 1) {
    const { jobId } = await call('POST', '/jobs', { type: 'payout.execute', payload: { batchId: 'b', escrowId: `escrow_${i}` }, maxAttempts: 1 });
    const [lease] = await worker.lease({ limit: 1, type: 'payout.execute' });
    await worker.report(lease!.jobId, 'fail', { leaseId: lease!.leaseId, error: { message: 'provider down' } });
    dead.push(jobId as string);
  }
  const { jobId: withExtras } = await call('POST', '/jobs', { type: 'noop', payload: {}, callbackUrl: receiver.url, idempotencyKey: 'order-4711', tags: ['export'] });
  const [lease] = await worker.lease({ limit: 1, type: 'noop' });
  expect(lease!.jobId).toBe(withExtras);
  const upload = await fetch(`${server.baseUrl}/jobs/${withExtras as string}/files?name=report.csv&leaseId=${lease!.leaseId}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${tokenFor('worker')}`, 'X-Worker-Id': 'dash-worker-1', 'Content-Type': 'text/csv' },
    body: 'a,b\n1,2\n',
  });
  expect(upload.status).toBe(201);
  await worker.report(withExtras as string, 'succeed', { leaseId: lease!.leaseId, result: { rows: 1 } });
  await waitFor(async () => (((await call('GET', `/jobs/${withExtras as string}`)).callback as { status?: string } | null)?.status === 'delivered' ? true : undefined), { what: 'the callback' });
  const queued: string[] = [];
  for (let i = 0; i < 2; i += 1) queued.push((await call('POST', '/jobs', { type: 'noop', payload: {}, tags: ['import-7'] })).jobId as string);
  // One more the worker holds (it shows in the workers view).
  const { jobId: held } = await call('POST', '/jobs', { type: 'thumbnail.create', payload: { assetId: 'asset_0123456789abcdef01234567', versionNumber: 1 } });
  const [holding] = await worker.lease({ limit: 1, type: 'thumbnail.create' });
  expect(holding!.jobId).toBe(held);
  await worker.report(held as string, 'heartbeat', { leaseId: holding!.leaseId, progress: 30 });
  return { dead, queued, withExtras: withExtras as string, held: held as string };
}

it('bulk actions with a dry-run count first, URLs per filter and job, search, callback state, files and the workers view', async () => {
  const { dead, queued, withExtras, held } = await seed();

  // A shared link with a filter opens the queue filtered.
  const page = await signedIn(`${server.baseUrl}/dashboard#/jobs?status=dlq`);
  await waitFor(async () => ((await page.locator('#jobs-body tr').count()) === 3 ? true : undefined), { what: 'the dlq filter from the URL' });
  expect(await page.inputValue('#filter-status')).toBe('dlq');

  // Requeue all matching: the count comes first, and nothing changes until it is confirmed.
  await page.click('#bulk-requeue');
  await page.locator('#bulk-confirm').waitFor({ state: 'visible' });
  expect(await text(page, '#bulk-confirm-text')).toBe('Requeue 3 matching jobs?');
  expect(((await call('GET', `/jobs/${dead[0]!}`, undefined, ADMIN)).status)).toBe('dlq');
  await page.click('#bulk-confirm-no');
  expect(await text(page, '#bulk-message')).toBe('Nothing was changed.');
  await page.click('#bulk-requeue');
  await page.locator('#bulk-confirm').waitFor({ state: 'visible' });
  await page.click('#bulk-confirm-yes');
  await waitFor(async () => ((await text(page, '#bulk-message')) === '3 jobs requeued.' ? true : undefined), { what: 'the bulk requeue' });
  for (const id of dead) expect((await call('GET', `/jobs/${id}`, undefined, ADMIN)).status).toBe('queued');

  // Cancel all matching, by type and tag (typed into the filters).
  await page.selectOption('#filter-status', '');
  await page.selectOption('#filter-type', 'noop');
  await page.fill('#filter-tag', 'import-7');
  await waitFor(async () => ((await page.locator('#jobs-body tr').count()) === 2 ? true : undefined), { what: 'the tag filter' });
  expect(new URL(page.url()).hash).toBe('#/jobs?type=noop&tag=import-7');
  await page.click('#bulk-cancel');
  await waitFor(async () => ((await text(page, '#bulk-confirm-text')) === 'Cancel 2 matching jobs?' ? true : undefined), { what: 'the cancel count' });
  await page.click('#bulk-confirm-yes');
  await waitFor(async () => ((await text(page, '#bulk-message')).startsWith('2 jobs cancelled') ? true : undefined), { what: 'the bulk cancel' });
  for (const id of queued) expect((await call('GET', `/jobs/${id}`, undefined, ADMIN)).status).toBe('cancelled');
  // Without a status or type, bulk actions are not offered.
  await page.selectOption('#filter-type', '');
  await page.fill('#filter-tag', '');
  await waitFor(async () => ((await page.isDisabled('#bulk-requeue')) ? true : undefined), { what: 'the buttons to turn off' });

  // Search by idempotency key lists that job; by job id opens it, with its own URL. A tag filter
  // still being typed when the search is typed applies without wiping the search box.
  await page.fill('#filter-tag', 'import');
  await page.fill('#search-input', 'order-4711');
  await waitFor(async () => (new URL(page.url()).hash === '#/jobs?tag=import' ? true : undefined), { what: 'the typed tag filter' });
  expect(await page.inputValue('#search-input')).toBe('order-4711');
  await page.click('#search-button');
  await waitFor(async () => ((await page.locator('#jobs-body tr').count()) === 1 ? true : undefined), { what: 'the idempotency key search' }).catch(async (err: unknown) => {
    throw new Error(`${String(err)}: ${page.url()} rows ${await page.locator('#jobs-body tr').count()} error ${await text(page, '#dashboard-error')} info ${await text(page, '#page-info')}`);
  });
  expect(await page.getAttribute('#jobs-body tr', 'data-job-id')).toBe(withExtras);
  await page.fill('#search-input', withExtras);
  await page.click('#search-button');
  await page.locator('#job-detail').waitFor({ state: 'visible' });
  expect(await text(page, '#detail-job-id')).toBe(withExtras);
  expect(new URL(page.url()).hash.startsWith(`#/job/${withExtras}`)).toBe(true);
  // The callback's state and the result file.
  await waitFor(async () => ((await text(page, '#detail-callback-status')) === 'delivered' ? true : undefined), { what: 'the callback state' });
  expect(await text(page, '#detail-callback-attempts')).toBe('1');
  expect(await page.locator('#detail-files-list li').count()).toBe(1);
  expect(await text(page, '#detail-files-list li code')).toBe('report.csv');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#detail-files-list li button')]);
  expect(download.suggestedFilename()).toBe('report.csv');

  // A job's URL opens it directly in a new tab.
  const direct = await signedIn(`${server.baseUrl}/dashboard#/job/${dead[1]!}`);
  await waitFor(async () => ((await text(direct, '#detail-job-id')) === dead[1] ? true : undefined), { what: 'the job from its URL' });
  await direct.close();

  // The workers view: the worker, what it asks for, the job it holds and its progress.
  await page.click('#view-workers');
  await page.locator('#workers-view').waitFor({ state: 'visible' });
  await waitFor(async () => ((await page.locator('#workers-body tr[data-worker-id="dash-worker-1"]').count()) === 1 ? true : undefined), { what: 'the worker row' });
  const row = page.locator('#workers-body tr[data-worker-id="dash-worker-1"]');
  expect(await row.locator('a[data-job-id]').getAttribute('data-job-id')).toBe(held);
  expect(await row.locator('td').nth(1).textContent()).toBe('thumbnail.create');
  expect(new URL(page.url()).hash).toBe('#/workers');
  expect(await page.isHidden('#jobs-view')).toBe(true);
  // Its job links to the job's detail.
  await row.locator('a[data-job-id]').click();
  await waitFor(async () => ((await text(page, '#detail-job-id')) === held ? true : undefined), { what: 'the held job' });
  expect(await page.isHidden('#workers-view')).toBe(true);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-operations.png'), fullPage: true });
  await page.close();
  expect(pageErrors).toEqual([]);
}, 90_000);

it('fits a phone’s width: nothing is wider than the screen, in the jobs view, a job and the workers view', async () => {
  const phone = { width: 390, height: 844 };
  const page = await signedIn(`${server.baseUrl}/dashboard#/jobs`, phone);
  await waitFor(async () => ((await text(page, '#updated-at')).startsWith('Updated') ? true : undefined), { what: 'the first refresh' });
  const overflow = (): Promise<number> => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(await overflow()).toBeLessThanOrEqual(0);
  await page.locator('#jobs-body tr').first().click();
  await page.locator('#job-detail').waitFor({ state: 'visible' });
  expect(await overflow()).toBeLessThanOrEqual(0);
  await page.click('#view-workers');
  await page.locator('#workers-view').waitFor({ state: 'visible' });
  await waitFor(async () => ((await page.locator('#workers-body tr').count()) > 0 ? true : undefined), { what: 'the workers' });
  expect(await overflow()).toBeLessThanOrEqual(0);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
  await page.close();
  expect(pageErrors).toEqual([]);
}, 60_000);
