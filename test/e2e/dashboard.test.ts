import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium, type BrowserContext, type Page } from 'playwright-core';
import request from 'supertest';

import { buildTestApp } from '../helpers/app';
import { chromiumForTests } from '../helpers/chromium';
import { useTestDatabase } from '../helpers/database';
import { jobDocument } from '../helpers/job-documents';
import { enqueueJob, leaseJobs, payoutPayload, report, thumbnailPayload } from '../helpers/jobs';
import { waitFor } from '../helpers/poll';
import { listen } from '../helpers/server';
import { bearer, tokenFor } from '../helpers/tokens';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');

const db = useTestDatabase();
let app: ReturnType<typeof buildTestApp>;
let server: Awaited<ReturnType<typeof listen>>;
let context: BrowserContext;
let userDataDir: string;
const requestedUrls: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  // Found or installed once per run by the test setup (test/helpers/chromium.ts).
  const executablePath = chromiumForTests();
  app = buildTestApp(db);
  server = await listen(app);
  userDataDir = mkdtempSync(path.join(os.tmpdir(), 'jobs-dashboard-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 1000 },
  });
  context.on('request', (req) => requestedUrls.push(req.url()));
  context.on('weberror', (err) => pageErrors.push(err.error().message));
}, 60_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

/** A realistic mix: jobs driven through the API (one dead, one failed, some done), plus an hour of history. */
async function seedJobs(): Promise<{ deadJobId: string }> {
  const now = Date.now();
  const history = Array.from({ length: 40 }, (_, i) =>
    jobDocument({
      status: i % 9 === 4 ? 'failed' : 'succeeded',
      type: i % 3 === 0 ? 'payout.execute' : 'thumbnail.create',
      createdAt: new Date(now - (i + 1) * 90_000 - 5_000),
      completedAt: new Date(now - (i + 1) * 90_000),
      createdBy: i % 2 === 0 ? 'media' : 'billing',
    }),
  );
  await db.connection.collection('jobs').insertMany(history as unknown as Record<string, unknown>[]);

  const deadJobId = await enqueueJob(app, { type: 'payout.execute', payload: payoutPayload(), maxAttempts: 1 }, 'billing');
  const [dead] = await leaseJobs(app, { type: 'payout.execute' });
  await report(app, deadJobId, 'fail', { leaseId: dead!.leaseId, error: { code: 'provider_down', message: 'payment provider answered 503 three times' } });
  for (let i = 0; i < 3; i += 1) await enqueueJob(app, { type: 'thumbnail.create', payload: thumbnailPayload({ versionNumber: i + 1 }) }, 'media');
  const [running] = await leaseJobs(app, { type: 'thumbnail.create' });
  expect(running).toBeDefined();
  // Due in an hour: counted as scheduled, not as a backlog.
  await enqueueJob(app, { type: 'noop', payload: {}, scheduleAt: new Date(Date.now() + 3_600_000).toISOString() }, 'media');
  for (const schedule of [
    { name: 'nightly-thumbnails', cron: '0 3 * * *', timeZone: 'Europe/Berlin' },
    { name: 'hourly-payouts', cron: '0 * * * *', paused: true, type: 'payout.execute', payload: payoutPayload() },
  ]) {
    const res = await request(app).post('/admin/schedules').set(bearer('admin')).send({ type: 'thumbnail.create', payload: thumbnailPayload(), ...schedule });
    expect(res.status).toBe(201);
  }
  return { deadJobId };
}

async function apiStats(): Promise<{
  totalJobs: number;
  statusCounts: Record<string, number>;
  byType: Record<string, Record<string, number>>;
  scheduled: number;
  scheduledByType: Record<string, number>;
}> {
  return (await request(app).get('/admin/jobs/stats').set(bearer('admin'))).body;
}

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? '').trim();
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.fill('#token-input', token);
  await page.click('#login-button');
}

it('lets an admin sign in, see the queue, filter it, and requeue a dead job', async () => {
  const { deadJobId } = await seedJobs();
  const page = await context.newPage();
  await page.goto(`${server.baseUrl}/dashboard`);
  await page.locator('#login').waitFor({ state: 'visible' });

  // A refused token and a non-admin token each get a clear message.
  await signIn(page, tokenFor('admin', 'old', { exp: Math.floor(Date.now() / 1000) - 60 }));
  await waitFor(async () => ((await text(page, '#login-error')).includes('not valid or has expired') ? true : undefined), { what: 'the expired-token message' });
  await signIn(page, tokenFor('user', 'someone'));
  await waitFor(async () => ((await text(page, '#login-error')).includes('needs an admin token') ? true : undefined), { what: 'the non-admin message' });
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

  await signIn(page, tokenFor('admin', 'alice'));
  await page.locator('#dashboard').waitFor({ state: 'visible' });
  expect(await text(page, '#whoami')).toBe('alice (admin)');

  // Counts match the API (once the first refresh has drawn everything).
  const stats = await apiStats();
  await waitFor(async () => ((await text(page, '#updated-at')).startsWith('Updated') ? true : undefined), { what: 'the first refresh' });
  await waitFor(async () => ((await text(page, '#count-total')) === String(stats.totalJobs) ? true : undefined), { what: 'the total count' });
  for (const [status, count] of Object.entries(stats.statusCounts)) expect({ status, shown: await text(page, `#count-${status}`) }).toEqual({ status, shown: String(count) });
  for (const [type, counts] of Object.entries(stats.byType)) {
    for (const [status, count] of Object.entries(counts)) {
      expect({ type, status, shown: await text(page, `#by-type-body tr[data-type="${type}"] td[data-status="${status}"]`) }).toEqual({ type, status, shown: String(count) });
    }
  }
  expect(stats.statusCounts.dlq).toBe(1);
  expect({ scheduled: stats.scheduled, shown: await text(page, '#count-scheduled') }).toEqual({ scheduled: 1, shown: '1' });
  for (const [type, count] of Object.entries(stats.scheduledByType)) {
    expect({ type, shown: await text(page, `#by-type-body tr[data-type="${type}"] td[data-count="scheduled"]`) }).toEqual({ type, shown: String(count) });
  }
  // Schedules, by name, each with its next run (none while paused).
  await waitFor(async () => ((await page.locator('#schedules-body tr').count()) === 2 ? true : undefined), { what: 'the schedules list' });
  expect(await page.locator('#schedules-body tr').evaluateAll((rows) => rows.map((r) => `${(r as HTMLElement).dataset.schedule}:${(r as HTMLElement).dataset.state}`))).toEqual([
    'hourly-payouts:paused',
    'nightly-thumbnails:active',
  ]);
  expect(await text(page, '#schedules-body tr[data-schedule="nightly-thumbnails"] td.next-run')).toMatch(/\(in \d+/);
  expect(await text(page, '#schedules-body tr[data-schedule="hourly-payouts"] td.next-run')).toBe('–');
  expect(await page.isHidden('#schedules-empty')).toBe(true);
  expect(await page.locator('#throughput-chart rect.bar-succeeded').count()).toBeGreaterThan(10);
  expect(await page.locator('#throughput-chart rect.bar-failed').count()).toBeGreaterThan(0);

  // The table pages 20 at a time, newest first.
  const pageInfo = `Page 1 of ${Math.ceil(stats.totalJobs / 20)} · ${stats.totalJobs} jobs`;
  await waitFor(async () => ((await text(page, '#page-info')) === pageInfo ? true : undefined), { what: 'the first page of jobs' });
  expect(await page.locator('#jobs-body tr').count()).toBe(20);

  // Filter to dead jobs: only the dead one is left.
  await page.selectOption('#filter-status', 'dlq');
  await waitFor(async () => ((await page.locator('#jobs-body tr').count()) === 1 ? true : undefined), { what: 'the dlq filter' });
  expect(await page.getAttribute('#jobs-body tr', 'data-job-id')).toBe(deadJobId);
  await page.selectOption('#filter-type', 'thumbnail.create');
  await waitFor(async () => ((await text(page, '#page-info')) === 'No jobs' ? true : undefined), { what: 'the type filter' });
  await page.selectOption('#filter-type', '');
  await page.locator(`#jobs-body tr[data-job-id="${deadJobId}"]`).waitFor();

  // Open it: status, last error and attempt history.
  await page.click(`#jobs-body tr[data-job-id="${deadJobId}"]`);
  await page.locator('#job-detail').waitFor({ state: 'visible' });
  expect(await text(page, '#detail-job-id')).toBe(deadJobId);
  expect(await text(page, '#detail-status')).toBe('dlq');
  expect(await text(page, '#detail-last-error-text')).toBe('[provider_down] payment provider answered 503 three times');
  expect(await page.locator('#attempts-body tr').count()).toBe(1);
  expect(await page.isEnabled('#requeue-button')).toBe(true);
  expect(await page.isEnabled('#cancel-button')).toBe(false);

  // Requeue: the page and the API agree it is queued again, with its history kept.
  await page.click('#requeue-button');
  await waitFor(async () => ((await text(page, '#detail-status')) === 'queued' ? true : undefined), { what: 'the requeued status' });
  expect(await text(page, '#action-message')).toContain('Requeued');
  expect(await page.locator('#attempts-body tr').count()).toBe(1);
  const job = (await request(app).get(`/jobs/${deadJobId}`).set(bearer('admin'))).body;
  expect(job).toMatchObject({ status: 'queued', attempt: 0 });
  await waitFor(async () => ((await text(page, '#count-dlq')) === '0' ? true : undefined), { what: 'the dlq count to drop' });
  expect(await page.isEnabled('#cancel-button')).toBe(true);

  await page.selectOption('#filter-status', '');
  await waitFor(async () => ((await page.locator('#jobs-body tr').count()) === 20 ? true : undefined), { what: 'the unfiltered table' });
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

  // The token lives in this tab's sessionStorage only; nothing was fetched from another origin.
  expect(await page.evaluate(() => ({ session: sessionStorage.getItem('jobs.dashboard.token') !== null, local: localStorage.length }))).toEqual({ session: true, local: 0 });
  expect(requestedUrls.filter((url) => !url.startsWith(server.baseUrl) && !url.startsWith('data:'))).toEqual([]);
  expect(pageErrors).toEqual([]);

  // Signing out forgets the token.
  await page.click('#logout-button');
  await page.locator('#login').waitFor({ state: 'visible' });
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  await page.close();
}, 60_000);

it('serves interactive API docs that render from local assets', async () => {
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  await page.goto(`${server.baseUrl}/docs`);
  await waitFor(async () => ((await page.locator('.opblock').count()) >= 20 ? true : undefined), { what: 'Swagger UI to render the operations' });
  expect(await page.locator('.opblock-summary-path', { hasText: '/admin/jobs/stats' }).count()).toBe(1);
  // "Try it out" on POST /jobs starts from a body the API accepts (its first example), not a generated
  // sample without `type`.
  const enqueue = page.locator('#operations-jobs-enqueueJob');
  await enqueue.locator('.opblock-summary').click();
  await enqueue.locator('button.try-out__btn').click();
  const body = enqueue.locator('textarea.body-param__text');
  await body.waitFor({ state: 'visible' });
  expect(JSON.parse(await body.inputValue())).toEqual({ type: 'noop', payload: { sleepMs: 1000 } });
  expect(consoleErrors).toEqual([]);
  expect(requestedUrls.filter((url) => !url.startsWith(server.baseUrl) && !url.startsWith('data:'))).toEqual([]);
  await page.close();
}, 60_000);

it('offers cancel for a waiting job, with its status lists from the service', async () => {
  // A parent due in an hour keeps its child waiting.
  const parent = await enqueueJob(app, { type: 'noop', payload: {}, scheduleAt: new Date(Date.now() + 3_600_000).toISOString() }, 'media');
  const child = await request(app).post('/jobs').set(bearer('service', 'media')).send({ type: 'noop', payload: {}, dependsOn: [parent] });
  expect(child.body.status).toBe('waiting');
  const page = await context.newPage();
  await page.goto(`${server.baseUrl}/dashboard`);
  await page.locator('#login').waitFor({ state: 'visible' });
  await signIn(page, tokenFor('admin', 'alice'));
  await page.locator('#dashboard').waitFor({ state: 'visible' });
  // The count cells and the status filter are drawn from /dashboard/contract.json.
  const contract = (await request(app).get('/dashboard/contract.json')).body as { statuses: string[] };
  expect(await page.locator('#counts .count[class*="status-"] .value[id^="count-"]').evaluateAll((cells) => cells.map((c) => c.id))).toEqual([
    ...contract.statuses.map((s) => `count-${s}`),
    'count-partial',
  ]);
  await page.selectOption('#filter-status', 'waiting');
  await page.locator(`#jobs-body tr[data-job-id="${child.body.jobId as string}"]`).click();
  await waitFor(async () => ((await text(page, '#detail-status')) === 'waiting' ? true : undefined), { what: 'the waiting job' });
  expect(await page.isEnabled('#cancel-button')).toBe(true);
  await page.click('#cancel-button');
  await waitFor(async () => ((await text(page, '#detail-status')) === 'cancelled' ? true : undefined), { what: 'the cancelled status' });
  expect((await request(app).get(`/jobs/${child.body.jobId as string}`).set(bearer('admin'))).body.status).toBe('cancelled');
  expect(pageErrors).toEqual([]);
  await page.close();
}, 60_000);

it('shows each job type with its limits and depth, and pauses and resumes it', async () => {
  await request(app).patch('/admin/types/thumbnail.create').set(bearer('admin')).send({ keyConcurrencyLimit: 2, rateLimit: { jobs: 10, perSeconds: 60 } });
  const page = await context.newPage();
  await page.goto(`${server.baseUrl}/dashboard`);
  await page.locator('#login').waitFor({ state: 'visible' });
  await signIn(page, tokenFor('admin', 'alice'));
  await page.locator('#types-body tr[data-type="noop"]').waitFor();
  const types = (await request(app).get('/admin/types').set(bearer('admin'))).body.data as { type: string; counts: { queued: number; leased: number } }[];
  expect(await page.locator('#types-body tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.type))).toEqual(types.map((t) => t.type));
  for (const entry of types) {
    expect({ type: entry.type, queued: await text(page, `#types-body tr[data-type="${entry.type}"] td[data-count="queued"]`) }).toEqual({ type: entry.type, queued: String(entry.counts.queued) });
  }
  // The limits, run-time ones marked: the registry's payout concurrency, thumbnail's run-time key and rate limits.
  expect(await text(page, '#types-body tr[data-type="payout.execute"] td[data-field="concurrencyLimit"]')).toBe('5');
  expect(await text(page, '#types-body tr[data-type="thumbnail.create"] td[data-field="keyConcurrencyLimit"]')).toBe('2run time');
  expect(await text(page, '#types-body tr[data-type="thumbnail.create"] td[data-field="rateLimit"]')).toBe('10 / 60 srun time');

  // Pause noop from the page: the API says so, and a lease gets nothing of it.
  await enqueueJob(app, { type: 'noop', payload: {} }, 'media');
  await page.click('#types-body tr[data-type="noop"] button[data-action="pause"]');
  await page.locator('#types-body tr[data-type="noop"][data-state="paused"]').waitFor();
  expect(await text(page, '#types-message')).toContain('noop is paused');
  expect((await request(app).get('/admin/types').set(bearer('admin'))).body.data.find((t: { type: string }) => t.type === 'noop')).toMatchObject({ paused: true, overrides: { paused: true } });
  expect(await leaseJobs(app, { type: 'noop' })).toEqual([]);
  // Resume: the run-time setting is removed, and the job is leased.
  await page.click('#types-body tr[data-type="noop"] button[data-action="resume"]');
  await page.locator('#types-body tr[data-type="noop"][data-state="active"]').waitFor();
  expect((await request(app).get('/admin/types').set(bearer('admin'))).body.data.find((t: { type: string }) => t.type === 'noop')).toMatchObject({ paused: false, overrides: {} });
  expect((await leaseJobs(app, { type: 'noop', limit: 10 })).length).toBeGreaterThan(0);
  await request(app).patch('/admin/types/thumbnail.create').set(bearer('admin')).send({ keyConcurrencyLimit: null, rateLimit: null });
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-types.png'), fullPage: true });
  expect(pageErrors).toEqual([]);

  // A tenant admin sees the types but cannot change them.
  const tenantPage = await context.newPage();
  await tenantPage.goto(`${server.baseUrl}/dashboard`);
  await tenantPage.locator('#login').waitFor({ state: 'visible' });
  await signIn(tenantPage, tokenFor('admin', 'acme-admin', { tenant: 'acme' }));
  await tenantPage.locator('#types-body tr[data-type="noop"]').waitFor();
  expect(await tenantPage.isDisabled('#types-body tr[data-type="noop"] button')).toBe(true);
  await tenantPage.close();
  await page.close();
}, 60_000);
