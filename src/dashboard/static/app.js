// The operator dashboard: plain browser JavaScript, no build step, no third-party code.
// Data comes from this service's admin API with the token the admin pastes in; the token is kept in
// sessionStorage (this tab only) and never leaves this origin. Every value from the API is written
// with textContent, never parsed as HTML.
'use strict';

(function dashboard() {
  const TOKEN_KEY = 'jobs.dashboard.token';
  const REFRESH_MS = 5000;
  // The status lists are the service's (GET /dashboard/contract.json, generated from its model), not copies.
  const contract = { statuses: [], statusLabels: {}, requeueable: [], cancellable: [] };
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    page: 1,
    perPage: 20,
    status: '',
    type: '',
    createdBy: '',
    tag: '',
    idempotencyKey: '',
    // 'jobs' (counts, chart, queue, detail, schedules) or 'workers'; both are in the URL (#/jobs?..., #/job/<id>, #/workers).
    view: 'jobs',
    totalPages: 0,
    selectedJobId: null,
    timer: null,
    refreshing: null,
    refreshAgain: false,
    knownTypes: new Set(),
    /** The signed-in admin's tenant claim (null: none); a tenant admin may not change job types. */
    tenant: null,
    typing: null,
  };

  // ---- API ------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, options = {}, token = state.token) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (options.json !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method: options.method || 'GET',
        headers,
        cache: 'no-store',
        ...(options.json === undefined ? {} : { body: JSON.stringify(options.json) }),
      });
    } catch {
      throw new ApiError(0, 'network', 'The service cannot be reached.');
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok) {
      const error = body && body.error ? body.error : { code: 'http_' + res.status, message: res.statusText };
      throw new ApiError(res.status, error.code, error.message);
    }
    return body;
  }

  /** A refused token while signed in ends the session with a clear reason. */
  function handleAuthError(err) {
    if (!(err instanceof ApiError)) return false;
    if (err.status === 401) {
      signOut('Your token was refused (' + err.message + '). It may have expired: paste a new admin token.');
      return true;
    }
    if (err.status === 403 && err.code === 'permission_denied') {
      signOut('This token may not use the dashboard: it needs an admin token.');
      return true;
    }
    return false;
  }

  // ---- Formatting -----------------------------------------------------------------------------

  function formatAge(ms) {
    if (ms === null || ms === undefined) return '–';
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + (m % 60) + 'm';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
  }

  function formatTime(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function formatJson(value) {
    if (value === null || value === undefined) return '—';
    return JSON.stringify(value, null, 2);
  }

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === 'text') node.textContent = value;
      else if (key === 'className') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.appendChild(child);
    return node;
  }

  function badge(status) {
    return el('span', { className: 'badge status-' + status, text: status });
  }

  const OUTCOME_STYLE = { succeeded: 'succeeded', failed: 'failed', expired: 'leased', cancelled: 'cancelled', abandoned: 'cancelled', snoozed: 'queued' };

  function outcomeBadge(outcome) {
    return el('span', { className: 'badge status-' + (OUTCOME_STYLE[outcome] || 'cancelled'), text: outcome });
  }

  function showMessage(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }

  // ---- Session --------------------------------------------------------------------------------

  async function signIn(token) {
    showMessage($('login-error'), '');
    let principal;
    try {
      principal = await api('/auth/whoami', {}, token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        showMessage($('login-error'), 'That token is not valid or has expired (' + err.message + '). Mint a new one and paste it again.');
      } else {
        showMessage($('login-error'), 'Could not check the token: ' + err.message);
      }
      return false;
    }
    if (principal.role !== 'admin') {
      showMessage(
        $('login-error'),
        'This token belongs to "' + principal.sub + '" with role "' + principal.role + '": the dashboard needs an admin token.',
      );
      return false;
    }
    state.token = token;
    // Types are global configuration: an admin of one tenant sees them but may not change them.
    state.tenant = principal.tenant || null;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('whoami').textContent = principal.sub + ' (admin)';
    $('login').hidden = true;
    $('session').hidden = false;
    $('dashboard').hidden = false;
    // The URL says what to show (a shared link: a view, a job, filters).
    readHash();
    applyState();
    if (state.view === 'jobs' && state.selectedJobId) await openJob(state.selectedJobId);
    await refreshAll();
    startTimer();
    return true;
  }

  function signOut(reason) {
    stopTimer();
    state.token = null;
    state.selectedJobId = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $('dashboard').hidden = true;
    $('session').hidden = true;
    $('job-detail').hidden = true;
    $('login').hidden = false;
    $('token-input').value = '';
    showMessage($('login-error'), reason || '');
  }

  function startTimer() {
    stopTimer();
    state.timer = setInterval(() => {
      if (!document.hidden) refreshAll();
    }, REFRESH_MS);
  }

  function stopTimer() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  // ---- Refresh --------------------------------------------------------------------------------

  /**
   * One refresh at a time. Asked again while one runs (a filter changed mid-refresh), it runs once
   * more when the current one ends, so the newest filters always win.
   */
  function refreshAll() {
    if (!state.token) return Promise.resolve();
    if (state.refreshing) {
      state.refreshAgain = true;
      return state.refreshing;
    }
    state.refreshing = (async () => {
      do {
        state.refreshAgain = false;
        await refreshOnce();
      } while (state.refreshAgain && state.token);
    })().finally(() => {
      state.refreshing = null;
    });
    return state.refreshing;
  }

  async function refreshOnce() {
    try {
      const tasks = state.view === 'workers' ? [refreshWorkers()] : [refreshStats(), refreshChart(), refreshJobs(), refreshSchedules(), refreshTypes()];
      if (state.selectedJobId && state.view === 'jobs') tasks.push(refreshDetail());
      await Promise.all(tasks);
      showMessage($('dashboard-error'), '');
      $('updated-at').textContent = 'Updated ' + new Date().toLocaleTimeString() + ' · every ' + REFRESH_MS / 1000 + ' s';
    } catch (err) {
      if (!handleAuthError(err)) showMessage($('dashboard-error'), 'Refresh failed: ' + err.message);
    }
  }

  async function refreshStats() {
    const stats = await api('/admin/jobs/stats');
    $('count-total').textContent = String(stats.totalJobs);
    for (const status of contract.statuses) $('count-' + status).textContent = String(stats.statusCounts[status]);
    $('count-partial').textContent = String(stats.partialSucceeded ?? 0);
    $('count-scheduled').textContent = String(stats.scheduled ?? 0);
    $('oldest-queued').textContent = formatAge(stats.oldestQueuedJobAgeMs);

    const body = $('by-type-body');
    body.replaceChildren();
    for (const [type, counts] of Object.entries(stats.byType)) {
      const row = el('tr', { dataset: { type } }, [el('td', { text: type })]);
      for (const status of contract.statuses) row.appendChild(el('td', { text: String(counts[status]), dataset: { status } }));
      row.appendChild(el('td', { text: String((stats.scheduledByType || {})[type] ?? 0), dataset: { count: 'scheduled' } }));
      row.appendChild(el('td', { text: formatAge(stats.oldestQueuedJobAgeMsByType[type]) }));
      body.appendChild(row);
      addTypeOption(type);
    }
  }

  function addTypeOption(type) {
    if (state.knownTypes.has(type)) return;
    state.knownTypes.add(type);
    $('filter-type').appendChild(el('option', { value: type, text: type }));
  }

  async function refreshJobs() {
    const params = new URLSearchParams({ page: String(state.page), per_page: String(state.perPage) });
    if (state.status) params.set('status', state.status);
    if (state.type) params.set('type', state.type);
    if (state.createdBy) params.set('createdBy', state.createdBy);
    if (state.tag) params.set('tag', state.tag);
    if (state.idempotencyKey) params.set('idempotencyKey', state.idempotencyKey);
    const result = await api('/admin/jobs/queue?' + params.toString());
    const { meta, data } = result;
    // The last page shrank under us (jobs requeued, filters changed): go to the new last page.
    if (data.length === 0 && meta.total > 0 && state.page > meta.total_pages) {
      state.page = meta.total_pages;
      return refreshJobs();
    }
    state.totalPages = meta.total_pages;
    const body = $('jobs-body');
    body.replaceChildren();
    for (const job of data) {
      const row = el('tr', { dataset: { jobId: job.jobId, status: job.status } }, [
        el('td', {}, [el('code', { text: job.jobId })]),
        el('td', { text: job.type }),
        el('td', {}, job.partial ? [badge(job.status), el('span', { className: 'badge status-partial', text: 'partial' })] : [badge(job.status)]),
        el('td', { text: job.attempt + ' / ' + job.maxAttempts }),
        el('td', { text: formatTime(job.createdAt) }),
        el('td', { text: job.createdBy }),
        el('td', { className: 'error-cell', text: job.lastError ? job.lastError.message : '' }),
      ]);
      if (job.jobId === state.selectedJobId) row.classList.add('selected');
      row.tabIndex = 0;
      row.addEventListener('click', () => openJob(job.jobId));
      row.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          openJob(job.jobId);
        }
      });
      body.appendChild(row);
    }
    $('jobs-empty').hidden = data.length > 0;
    $('page-info').textContent =
      meta.total === 0 ? 'No jobs' : 'Page ' + meta.page + ' of ' + meta.total_pages + ' · ' + meta.total + ' job' + (meta.total === 1 ? '' : 's');
    $('page-prev').disabled = state.page <= 1;
    $('page-next').disabled = state.page >= meta.total_pages;
  }

  // ---- Job types ------------------------------------------------------------------------------

  /** A policy value, marked when it is a run-time setting. */
  function policyCell(text, runtime, field) {
    const cell = el('td', { dataset: { field } }, [el('span', { className: 'value', text })]);
    if (runtime) cell.appendChild(el('span', { className: 'runtime', text: 'run time' }));
    return cell;
  }

  async function refreshTypes() {
    const { data } = await api('/admin/types');
    const body = $('types-body');
    body.replaceChildren();
    for (const entry of data) {
      const { policy, overrides } = entry;
      const mode = entry.paused ? 'paused' : 'active';
      const button = el('button', {
        type: 'button',
        className: entry.paused ? '' : 'secondary',
        text: entry.paused ? 'Resume' : 'Pause',
        dataset: { action: entry.paused ? 'resume' : 'pause' },
      });
      if (state.tenant) button.disabled = true;
      button.addEventListener('click', () => setPaused(entry.type, !entry.paused));
      const rate = policy.rateLimit ? policy.rateLimit.jobs + ' / ' + policy.rateLimit.perSeconds + ' s' : '–';
      body.appendChild(
        el('tr', { dataset: { type: entry.type, state: mode } }, [
          el('td', {}, [el('code', { text: entry.type })]),
          el('td', {}, [el('span', { className: 'badge type-' + mode, text: mode })]),
          el('td', { text: String(entry.counts.queued), dataset: { count: 'queued' } }),
          el('td', { text: String(entry.counts.leased), dataset: { count: 'leased' } }),
          policyCell(policy.concurrencyLimit === null ? '–' : String(policy.concurrencyLimit), overrides.concurrencyLimit !== undefined, 'concurrencyLimit'),
          policyCell(policy.keyConcurrencyLimit === null ? '–' : String(policy.keyConcurrencyLimit), overrides.keyConcurrencyLimit !== undefined, 'keyConcurrencyLimit'),
          policyCell(rate, overrides.rateLimit !== undefined, 'rateLimit'),
          el('td', { text: policy.timeoutSeconds + ' s · ' + policy.maxAttempts }),
          el('td', { className: 'actions' }, [button]),
        ]),
      );
    }
  }

  async function setPaused(type, paused) {
    const buttons = $('types-body').querySelectorAll('button');
    for (const button of buttons) button.disabled = true;
    try {
      // Resuming removes the run-time setting (null), so the type runs as configured.
      await api('/admin/types/' + encodeURIComponent(type), { method: 'PATCH', json: { paused: paused ? true : null } });
      showMessage($('types-message'), paused ? type + ' is paused: no job of it is leased until it is resumed.' : type + ' is resumed.');
    } catch (err) {
      // A tenant admin may read types but not change them: say so, stay signed in.
      if (err instanceof ApiError && err.status === 403) showMessage($('types-message'), 'Could not change ' + type + ': ' + err.message);
      else if (!handleAuthError(err)) showMessage($('types-message'), 'Could not change ' + type + ': ' + err.message);
    }
    await refreshAll();
  }

  // ---- Schedules ------------------------------------------------------------------------------

  function formatNextRun(iso) {
    if (!iso) return '–';
    const ms = new Date(iso).getTime() - Date.now();
    return formatTime(iso) + (ms > 0 ? ' (in ' + formatAge(ms) + ')' : ' (due)');
  }

  async function refreshSchedules() {
    const { data } = await api('/admin/schedules');
    const body = $('schedules-body');
    body.replaceChildren();
    for (const schedule of data) {
      const state = schedule.paused ? 'paused' : 'active';
      body.appendChild(
        el('tr', { dataset: { schedule: schedule.name, state } }, [
          el('td', {}, [el('code', { text: schedule.name })]),
          el('td', { text: schedule.type }),
          el('td', {}, [el('code', { text: schedule.cron })]),
          el('td', { text: schedule.timeZone }),
          el('td', {}, [el('span', { className: 'badge schedule-' + state, text: state })]),
          el('td', { className: 'next-run', text: formatNextRun(schedule.nextRunAt) }),
          el('td', { className: 'last-run', text: formatTime(schedule.lastRunAt) }),
          el('td', { className: 'error-cell', text: schedule.lastError ? schedule.lastError.message : '' }),
        ]),
      );
    }
    $('schedules-empty').hidden = data.length > 0;
  }

  // ---- Chart ----------------------------------------------------------------------------------

  function niceMax(value) {
    if (value <= 4) return 4;
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
    return 10 * magnitude;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function refreshChart() {
    const data = await api('/admin/jobs/throughput?minutes=60');
    const buckets = data.buckets;
    const W = 640;
    const H = 200;
    const pad = { left: 34, right: 8, top: 10, bottom: 22 };
    const plotW = W - pad.left - pad.right;
    const plotH = H - pad.top - pad.bottom;
    const totals = buckets.map((b) => b.succeeded + b.failed + b.dlq);
    const max = niceMax(Math.max(0, ...totals));
    const slot = plotW / buckets.length;
    const barW = Math.max(1, slot - 2);
    const y = (v) => pad.top + plotH - (v / max) * plotH;

    const root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, id: 'throughput-chart', role: 'img', 'aria-label': 'Jobs finished per minute over the last hour' });
    for (let i = 0; i <= 4; i += 1) {
      const value = (max / 4) * i;
      root.appendChild(svg('line', { x1: pad.left, x2: W - pad.right, y1: y(value), y2: y(value), class: 'axis' }));
      root.appendChild(svg('text', { x: pad.left - 6, y: y(value) + 3, 'text-anchor': 'end', class: 'tick' }, String(Math.round(value * 10) / 10)));
    }
    let succeeded = 0;
    let failures = 0;
    buckets.forEach((bucket, i) => {
      const x = pad.left + i * slot + 1;
      const failed = bucket.failed + bucket.dlq;
      succeeded += bucket.succeeded;
      failures += failed;
      const label = formatTime(bucket.start) + ': ' + bucket.succeeded + ' succeeded, ' + bucket.failed + ' failed, ' + bucket.dlq + ' dead-lettered';
      if (bucket.succeeded > 0) {
        const rect = svg('rect', { x, y: y(bucket.succeeded), width: barW, height: y(0) - y(bucket.succeeded), class: 'bar-succeeded' });
        rect.appendChild(svg('title', {}, label));
        root.appendChild(rect);
      }
      if (failed > 0) {
        const top = y(bucket.succeeded + failed);
        const rect = svg('rect', { x, y: top, width: barW, height: y(bucket.succeeded) - top, class: 'bar-failed' });
        rect.appendChild(svg('title', {}, label));
        root.appendChild(rect);
      }
      if (i % 10 === 0 || i === buckets.length - 1) {
        const time = new Date(bucket.start).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
        const last = i === buckets.length - 1;
        root.appendChild(svg('text', { x: last ? W - pad.right : x + barW / 2, y: H - 6, 'text-anchor': last ? 'end' : 'middle', class: 'tick' }, time));
      }
    });
    $('chart').replaceChildren(root);
    $('chart-succeeded').textContent = String(succeeded);
    $('chart-failures').textContent = String(failures);
  }

  // ---- Job detail -----------------------------------------------------------------------------

  async function openJob(jobId) {
    state.selectedJobId = jobId;
    writeHash();
    showMessage($('action-message'), '');
    for (const row of $('jobs-body').children) row.classList.toggle('selected', row.dataset.jobId === jobId);
    try {
      await refreshDetail();
      $('job-detail').scrollIntoView({ block: 'nearest' });
    } catch (err) {
      if (!handleAuthError(err)) showMessage($('dashboard-error'), 'Could not load job ' + jobId + ': ' + err.message);
    }
  }

  async function refreshDetail() {
    const jobId = state.selectedJobId;
    if (!jobId) return;
    const job = await api('/jobs/' + encodeURIComponent(jobId));
    if (state.selectedJobId !== jobId) return;
    renderDetail(job);
  }

  function renderDetail(job) {
    $('job-detail').hidden = false;
    $('job-detail').dataset.jobId = job.jobId;
    $('detail-job-id').textContent = job.jobId;
    const status = $('detail-status');
    status.className = 'badge status-' + job.status;
    status.textContent = job.status + (job.partial ? ' · partial' : '') + (job.cancelRequested ? ' · cancel requested' : '');

    const fields = [
      ['Type', job.type],
      ['Attempt', job.attempt + ' of ' + job.maxAttempts],
      ['Priority', String(job.priority)],
      ['Progress', job.progress + '%'],
      ['Created by', job.createdBy],
      ['Created', formatTime(job.createdAt)],
      ['Next run', formatTime(job.nextRunAt)],
      ['Completed', formatTime(job.completedAt)],
      ['Worker', job.workerId || '–'],
      ['Lease expires', formatTime(job.leaseExpiresAt)],
      ['Started', formatTime(job.startedAt)],
      ['Updated', formatTime(job.updatedAt)],
    ];
    if (job.tenant) fields.push(['Tenant', job.tenant]);
    if (job.tags && job.tags.length > 0) fields.push(['Tags', job.tags.join(', ')]);
    if (job.idempotencyKey) fields.push(['Idempotency key', job.idempotencyKey]);
    if (job.dependsOn && job.dependsOn.length > 0) {
      fields.push(['Depends on', job.dependsOn.join(', ')]);
      fields.push(['Waiting for', job.pendingParents && job.pendingParents.length > 0 ? job.pendingParents.join(', ') : '–']);
    }
    if (job.partial && job.result && Array.isArray(job.result.itemErrors)) {
      fields.push(['Failed items', job.result.itemErrors.map((e) => String(e.item) + ': ' + e.message).join('; ')]);
    }
    $('detail-fields').replaceChildren(...fields.map(([name, value]) => el('div', {}, [el('dt', { text: name }), el('dd', { text: value })])));

    const lastError = job.lastError;
    $('detail-last-error').hidden = !lastError;
    $('detail-last-error-text').textContent = lastError ? (lastError.code ? '[' + lastError.code + '] ' : '') + lastError.message : '';

    const attempts = job.attempts || [];
    $('attempts-body').replaceChildren(
      ...attempts
        .slice()
        .reverse()
        .map((a) =>
          el('tr', {}, [
            el('td', { text: String(a.attempt) }),
            el('td', { text: a.workerId }),
            el('td', { text: formatTime(a.leasedAt) }),
            el('td', { text: formatTime(a.finishedAt) }),
            el('td', {}, [a.outcome ? outcomeBadge(a.outcome) : el('span', { className: 'muted', text: 'running' })]),
            el('td', { className: 'error-cell', text: a.error ? a.error.message : '' }),
          ]),
        ),
    );
    $('attempts-table').hidden = attempts.length === 0;
    $('attempts-empty').hidden = attempts.length > 0;
    renderCallback(job);
    renderFiles(job);
    $('detail-payload').textContent = formatJson(job.payload);
    $('detail-result').textContent = formatJson(job.result);

    $('requeue-button').disabled = !contract.requeueable.includes(job.status);
    $('cancel-button').disabled = !contract.cancellable.includes(job.status) || job.cancelRequested;
  }

  /** The callback's delivery: where, its state, attempts, and the last error or delivery time. */
  function renderCallback(job) {
    const box = $('detail-callback');
    box.hidden = !job.callbackUrl;
    if (!job.callbackUrl) return;
    const cb = job.callback;
    const state = cb ? cb.status : 'waiting for the job to finish';
    const stateNode = el('span', { className: 'badge callback-' + (cb ? cb.status : 'none'), text: state });
    stateNode.id = 'detail-callback-status';
    const items = [
      el('div', {}, [el('dt', { text: 'URL' }), el('dd', { text: job.callbackUrl })]),
      el('div', {}, [el('dt', { text: 'State' }), el('dd', {}, [stateNode])]),
    ];
    if (cb) {
      items.push(el('div', {}, [el('dt', { text: 'Attempts' }), el('dd', { id: 'detail-callback-attempts', text: String(cb.attempts) })]));
      if (cb.deliveredAt) items.push(el('div', {}, [el('dt', { text: 'Delivered' }), el('dd', { text: formatTime(cb.deliveredAt) })]));
      if (cb.nextAttemptAt) items.push(el('div', {}, [el('dt', { text: 'Next attempt' }), el('dd', { text: formatTime(cb.nextAttemptAt) })]));
      if (cb.lastError) items.push(el('div', {}, [el('dt', { text: 'Last error' }), el('dd', { className: 'error-text', id: 'detail-callback-error', text: cb.lastError })]));
      if (cb.deliveryId) items.push(el('div', {}, [el('dt', { text: 'Delivery id' }), el('dd', {}, [el('code', { text: cb.deliveryId })])]));
    }
    $('detail-callback-fields').replaceChildren(...items);
  }

  function formatSize(bytes) {
    if (bytes < 1024) return bytes + ' B';
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + ' KB';
    return (bytes / 1024 / 1024).toFixed(1) + ' MB';
  }

  function renderFiles(job) {
    const files = job.files || [];
    $('detail-files').hidden = files.length === 0;
    $('detail-files-list').replaceChildren(
      ...files.map((file) => {
        const download = el('button', { type: 'button', className: 'secondary', text: 'Download' });
        download.addEventListener('click', () => downloadFile(file));
        return el('li', { dataset: { fileId: file.fileId } }, [el('code', { text: file.name }), el('span', { className: 'muted', text: ' · ' + file.contentType + ' · ' + formatSize(file.size) }), download]);
      }),
    );
  }

  /** Downloads need the token, so the bytes are fetched here and handed to the browser as a file. */
  async function downloadFile(file) {
    try {
      const res = await fetch(file.url, { headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' });
      if (!res.ok) throw new ApiError(res.status, 'http_' + res.status, res.statusText);
      const url = URL.createObjectURL(await res.blob());
      const link = el('a', { href: url, download: file.name });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      if (!handleAuthError(err)) showMessage($('action-message'), 'Could not download ' + file.name + ': ' + err.message);
    }
  }

  // ---- Bulk actions ---------------------------------------------------------------------------

  const BULK_WORDS = { requeue: ['requeued', 'Requeue'], cancel: ['cancelled (or asked to stop, when running)', 'Cancel'] };

  /** The queue's current filters as a bulk filter; null when it names neither a status nor a type. */
  function bulkFilter() {
    const filter = {};
    if (state.status) filter.status = state.status.split(',');
    if (state.type) filter.type = state.type;
    if (state.tag) filter.tag = state.tag.split(',').map((t) => t.trim()).filter(Boolean);
    if (state.createdBy) filter.createdBy = state.createdBy;
    return filter.status || filter.type ? filter : null;
  }

  let pendingBulk = null;

  /** First a dry run: the count is shown, and nothing changes until it is confirmed. */
  async function askBulk(action) {
    showMessage($('bulk-message'), '');
    const filter = bulkFilter();
    if (!filter) {
      showMessage($('bulk-message'), 'Choose a status or a type first: bulk actions apply to a filtered queue.');
      return;
    }
    try {
      const dry = await api('/admin/jobs/bulk', { method: 'POST', json: { action, filter, dryRun: true } });
      if (dry.matched === 0) {
        showMessage($('bulk-message'), 'No job matching these filters can be ' + BULK_WORDS[action][0] + '.');
        return;
      }
      pendingBulk = { action, filter, matched: dry.matched };
      $('bulk-confirm-text').textContent = BULK_WORDS[action][1] + ' ' + dry.matched + ' matching job' + (dry.matched === 1 ? '' : 's') + '?';
      $('bulk-confirm').hidden = false;
      $('bulk-confirm').dataset.action = action;
      $('bulk-confirm').dataset.matched = String(dry.matched);
    } catch (err) {
      if (!handleAuthError(err)) showMessage($('bulk-message'), 'Could not count the matching jobs: ' + err.message);
    }
  }

  async function confirmBulk() {
    const pending = pendingBulk;
    pendingBulk = null;
    $('bulk-confirm').hidden = true;
    if (!pending) return;
    let affected = 0;
    try {
      // A call works for a bounded time; with many jobs it answers complete: false and is asked again.
      for (let round = 0; round < 100; round += 1) {
        const result = await api('/admin/jobs/bulk', { method: 'POST', json: { action: pending.action, filter: pending.filter } });
        affected += result.affected;
        if (result.complete) break;
        showMessage($('bulk-message'), affected + ' so far…');
      }
      showMessage($('bulk-message'), affected + ' job' + (affected === 1 ? '' : 's') + ' ' + BULK_WORDS[pending.action][0] + '.');
    } catch (err) {
      if (!handleAuthError(err)) showMessage($('bulk-message'), 'Stopped after ' + affected + ' jobs: ' + err.message);
    }
    await refreshAll();
  }

  function updateBulkHint() {
    const ready = bulkFilter() !== null;
    $('bulk-requeue').disabled = !ready;
    $('bulk-cancel').disabled = !ready;
    $('bulk-hint').textContent = ready ? '' : 'Filter by status or type to act on all matching jobs.';
  }

  // ---- Workers --------------------------------------------------------------------------------

  async function refreshWorkers() {
    const { data } = await api('/admin/workers');
    $('workers-body').replaceChildren(
      ...data.map((worker) =>
        el('tr', { dataset: { workerId: worker.workerId } }, [
          el('td', {}, [el('code', { text: worker.workerId })]),
          el('td', { text: worker.types === null ? 'every type' : worker.types.join(', ') }),
          el('td', {}, [
            el(
            'div',
            { className: 'held' },
            worker.jobs.length === 0
              ? [el('span', { className: 'muted', text: 'idle' })]
              : worker.jobs.map((job) => {
                  const link = el('a', { href: '#/job/' + encodeURIComponent(job.jobId), dataset: { jobId: job.jobId } }, [el('code', { text: job.jobId })]);
                  const bar = el('span', { className: 'progress', title: job.progress + '%' }, [el('span', {})]);
                  bar.firstChild.style.width = job.progress + '%';
                  return el('div', {}, [link, el('span', { className: 'muted', text: ' ' + job.type + ' · lease until ' + formatTime(job.leaseExpiresAt) }), bar]);
                }),
            ),
          ]),
          el('td', { text: formatTime(worker.lastSeenAt) + ' (' + worker.lastCall + ')' }),
        ]),
      ),
    );
    $('workers-empty').hidden = data.length > 0;
  }

  // ---- URLs -----------------------------------------------------------------------------------

  const FILTER_KEYS = [
    ['status', 'status'],
    ['type', 'type'],
    ['tag', 'tag'],
    ['createdBy', 'createdBy'],
    ['idempotencyKey', 'idempotencyKey'],
  ];

  /** The view, job and filters in the URL's hash, so a link can be shared. */
  function readHash() {
    const hash = location.hash.replace(/^#\/?/, '');
    const [route, query = ''] = hash.split('?');
    const params = new URLSearchParams(query);
    for (const [key, param] of FILTER_KEYS) state[key] = params.get(param) || '';
    state.page = Math.max(1, Number(params.get('page')) || 1);
    state.perPage = [20, 50, 100].includes(Number(params.get('per_page'))) ? Number(params.get('per_page')) : 20;
    if (route === 'workers') {
      state.view = 'workers';
    } else {
      state.view = 'jobs';
      const job = /^job\/(.+)$/.exec(route);
      state.selectedJobId = job ? decodeURIComponent(job[1]) : null;
    }
  }

  function filterQuery() {
    const params = new URLSearchParams();
    for (const [key, param] of FILTER_KEYS) if (state[key]) params.set(param, state[key]);
    if (state.page > 1) params.set('page', String(state.page));
    if (state.perPage !== 20) params.set('per_page', String(state.perPage));
    const query = params.toString();
    return query ? '?' + query : '';
  }

  function writeHash() {
    let hash;
    if (state.view === 'workers') hash = '#/workers';
    else if (state.selectedJobId) hash = '#/job/' + encodeURIComponent(state.selectedJobId) + filterQuery();
    else hash = '#/jobs' + filterQuery();
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }

  /** Shows the state's view and puts its filters into the controls. */
  function applyState() {
    $('workers-view').hidden = state.view !== 'workers';
    $('jobs-view').hidden = state.view !== 'jobs';
    $('view-jobs').classList.toggle('active', state.view === 'jobs');
    $('view-workers').classList.toggle('active', state.view === 'workers');
    const status = $('filter-status');
    if (state.status && !status.querySelector('option[value="' + CSS.escape(state.status) + '"]')) status.appendChild(el('option', { value: state.status, text: state.status }));
    status.value = state.status;
    if (state.type) addTypeOption(state.type);
    $('filter-type').value = state.type;
    $('filter-tag').value = state.tag;
    $('filter-created-by').value = state.createdBy;
    $('filter-per-page').value = String(state.perPage);
    if (state.idempotencyKey) $('search-input').value = state.idempotencyKey;
    if (!state.selectedJobId) $('job-detail').hidden = true;
    updateBulkHint();
  }

  async function onHashChanged() {
    readHash();
    applyState();
    if (state.view === 'jobs' && state.selectedJobId) await openJob(state.selectedJobId);
    else await refreshAll();
  }

  const JOB_ID = /^job_[0-9a-f]{24}$/;

  /** A job id opens the job; anything else lists the jobs enqueued with that idempotency key. */
  function search(raw) {
    const value = raw.trim();
    if (!value) return;
    // Filters still being typed are overtaken by the search.
    clearTimeout(state.typing);
    state.view = 'jobs';
    if (JOB_ID.test(value)) {
      state.selectedJobId = value;
      writeHash();
      applyState();
      openJob(value);
      return;
    }
    // A search finds the job whatever the other filters say.
    for (const [key] of FILTER_KEYS) state[key] = '';
    state.idempotencyKey = value;
    state.page = 1;
    state.selectedJobId = null;
    writeHash();
    applyState();
    refreshAll();
  }

  async function act(kind) {
    const jobId = state.selectedJobId;
    if (!jobId) return;
    const path = kind === 'requeue' ? '/admin/jobs/' + encodeURIComponent(jobId) + '/requeue' : '/jobs/' + encodeURIComponent(jobId) + '/cancel';
    $('requeue-button').disabled = true;
    $('cancel-button').disabled = true;
    try {
      const result = await api(path, { method: 'POST' });
      let message;
      if (kind === 'requeue') message = 'Requeued: the job is queued again with a fresh attempt budget.';
      else if (result.status === 'cancelled') message = 'Cancelled.';
      else message = 'Cancellation requested: the worker stops at its next heartbeat.';
      showMessage($('action-message'), message);
    } catch (err) {
      if (handleAuthError(err)) return;
      showMessage($('action-message'), 'Could not ' + kind + ' the job: ' + err.message);
    }
    await refreshAll();
  }

  // ---- Contract -------------------------------------------------------------------------------

  /** Loads the status lists and draws what depends on them: the count cells, the by-type columns, the status filter. */
  async function loadContract() {
    Object.assign(contract, await api('/dashboard/contract.json', {}, null));
    const partialCell = $('count-partial').parentElement;
    for (const status of contract.statuses) {
      const cell = el('div', { className: 'count status-' + status }, [
        el('span', { className: 'label', text: contract.statusLabels[status] }),
        el('span', { className: 'value', id: 'count-' + status, text: '–' }),
      ]);
      partialCell.before(cell);
    }
    const scheduledHeader = $('by-type-head').children[1];
    for (const status of contract.statuses) scheduledHeader.before(el('th', { text: contract.statusLabels[status] }));
    const combined = $('filter-status').querySelector('option[value="failed,dlq"]');
    for (const status of contract.statuses) combined.before(el('option', { value: status, text: status }));
  }

  // ---- Wiring ---------------------------------------------------------------------------------

  function onFiltersChanged() {
    state.status = $('filter-status').value;
    state.type = $('filter-type').value;
    state.tag = $('filter-tag').value.trim();
    state.createdBy = $('filter-created-by').value.trim();
    state.perPage = Number($('filter-per-page').value);
    // Other filters make a new listing: the idempotency key searched for last no longer applies.
    // Only the key shown from that search is cleared: what someone is typing into the box stays.
    if (state.idempotencyKey && $('search-input').value.trim() === state.idempotencyKey) $('search-input').value = '';
    state.idempotencyKey = '';
    state.page = 1;
    $('bulk-confirm').hidden = true;
    pendingBulk = null;
    writeHash();
    updateBulkHint();
    refreshAll();
  }

  function init() {
    $('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const token = $('token-input').value.trim().replace(/^Bearer\s+/i, '');
      if (!token) {
        showMessage($('login-error'), 'Paste a token first.');
        return;
      }
      signIn(token);
    });
    $('logout-button').addEventListener('click', () => signOut(''));
    $('refresh-button').addEventListener('click', () => refreshAll());
    for (const id of ['filter-status', 'filter-type', 'filter-per-page']) $(id).addEventListener('change', onFiltersChanged);
    for (const id of ['filter-created-by', 'filter-tag']) {
      $(id).addEventListener('input', () => {
        clearTimeout(state.typing);
        state.typing = setTimeout(onFiltersChanged, 300);
      });
    }
    $('bulk-requeue').addEventListener('click', () => askBulk('requeue'));
    $('bulk-cancel').addEventListener('click', () => askBulk('cancel'));
    $('bulk-confirm-yes').addEventListener('click', () => confirmBulk());
    $('bulk-confirm-no').addEventListener('click', () => {
      pendingBulk = null;
      $('bulk-confirm').hidden = true;
      showMessage($('bulk-message'), 'Nothing was changed.');
    });
    $('search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      search($('search-input').value);
    });
    window.addEventListener('hashchange', () => {
      if (state.token) onHashChanged();
    });
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      onFiltersChanged();
    });
    $('page-prev').addEventListener('click', () => {
      if (state.page > 1) {
        state.page -= 1;
        writeHash();
        refreshAll();
      }
    });
    $('page-next').addEventListener('click', () => {
      if (state.page < state.totalPages) {
        state.page += 1;
        writeHash();
        refreshAll();
      }
    });
    $('requeue-button').addEventListener('click', () => act('requeue'));
    $('cancel-button').addEventListener('click', () => act('cancel'));
    $('close-detail').addEventListener('click', () => {
      state.selectedJobId = null;
      writeHash();
      $('job-detail').hidden = true;
      for (const row of $('jobs-body').children) row.classList.remove('selected');
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && state.token) refreshAll();
    });

    loadContract().then(
      () => {
        const saved = sessionStorage.getItem(TOKEN_KEY);
        if (saved) {
          $('token-input').value = '';
          signIn(saved).then((ok) => {
            if (!ok) sessionStorage.removeItem(TOKEN_KEY);
            $('login').hidden = ok;
          });
        } else {
          $('login').hidden = false;
        }
      },
      (err) => {
        $('login').hidden = false;
        $('login-button').disabled = true;
        showMessage($('login-error'), 'The dashboard could not load its settings from the service (' + err.message + '). Reload the page.');
      },
    );
  }

  init();
})();
