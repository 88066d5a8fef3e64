import type { Tracing } from '../tracing/tracing';
import { apiErrorFor, NetworkError, UnavailableApiError } from './errors';
import type {
  BatchEnqueueRequest,
  BatchEnqueueResponse,
  EnqueueRequest,
  EnqueueResponse,
  FailRequest,
  FailResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  BulkRequest,
  BulkResponse,
  JobPage,
  JobStatusResponse,
  JobWire,
  ListJobsQuery,
  WorkerList,
  LeaseResponse,
  ResultFileReceipt,
  SucceedRequest,
} from './types';

export interface RetryOptions {
  /** Tries in all, including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface JobsClientOptions {
  baseUrl: string;
  token: string;
  /** Sent as X-Worker-Id; required for lease and report calls. */
  workerId?: string;
  /** Per-request time limit. */
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  fetch?: typeof fetch;
  /** Injected for tests: waits between retries. */
  sleep?: (ms: number) => Promise<void>;
  /** Client spans for every call, with the trace context in its headers (see src/tracing). */
  tracing?: Pick<Tracing, 'enabled' | 'withSpan' | 'injectHeaders'>;
  random?: () => number;
}

/** A result file upload may take this long by default (100 MB over a slow link). */
const UPLOAD_TIMEOUT_MS = 10 * 60_000;

const FINISHED: readonly string[] = ['succeeded', 'failed', 'dlq', 'cancelled'];

const DEFAULT_RETRY: RetryOptions = { attempts: 4, baseDelayMs: 200, maxDelayMs: 5_000 };

interface RequestSpec {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /** Whether repeating the request is safe (reads, reports on a lease, keyed enqueues). */
  retryable: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * A typed client for the jobs API. Retries with exponential backoff on network errors and 502/503/504
 * when the request is safe to repeat; other failures become typed errors (401, 403, 404, 409, 422...).
 */
export class JobsClient {
  private readonly baseUrl: string;
  private readonly retry: RetryOptions;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly options: JobsClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueResponse> {
    // Without an idempotency key a repeated enqueue could create a second job, so it is not retried.
    const { status, body } = await this.send<Omit<EnqueueResponse, 'created'>>({
      method: 'POST',
      path: '/jobs',
      body: request,
      retryable: request.idempotencyKey !== undefined,
    });
    return { ...body, created: status === 201 };
  }

  /**
   * Up to 1,000 jobs, each judged on its own (the answer has one result per job, in order). Retried
   * only when every job carries an idempotency key, so a repeat cannot create a second job.
   */
  async enqueueBatch(request: BatchEnqueueRequest): Promise<BatchEnqueueResponse> {
    const retryable = request.jobs.every((job) => job.idempotencyKey !== undefined);
    return (await this.send<BatchEnqueueResponse>({ method: 'POST', path: '/jobs/batch', body: request, retryable })).body;
  }

  /** `waitSeconds`: long-poll (the API holds the call until work arrives); `signal` ends it early. */
  async lease(params: { limit?: number; types?: readonly string[]; waitSeconds?: number; signal?: AbortSignal } = {}): Promise<LeaseResponse> {
    const query = new URLSearchParams();
    query.set('limit', String(params.limit ?? 1));
    if (params.types && params.types.length > 0) query.set('type', params.types.join(','));
    if (params.waitSeconds) query.set('wait', String(params.waitSeconds));
    const timeoutMs = params.waitSeconds ? params.waitSeconds * 1000 + (this.options.timeoutMs ?? 10_000) : undefined;
    return (
      await this.send<LeaseResponse>({
        method: 'GET',
        path: `/jobs/lease?${query.toString()}`,
        retryable: false,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(params.signal ? { signal: params.signal } : {}),
      })
    ).body;
  }

  async heartbeat(jobId: string, body: HeartbeatRequest): Promise<HeartbeatResponse> {
    return (await this.send<HeartbeatResponse>({ method: 'POST', path: `/jobs/${encodeURIComponent(jobId)}/heartbeat`, body, retryable: true })).body;
  }

  /** Retried on network errors: if the first try landed, the repeat answers 409 (no longer leased). */
  async succeed(jobId: string, body: SucceedRequest): Promise<JobStatusResponse> {
    return (await this.send<JobStatusResponse>({ method: 'POST', path: `/jobs/${encodeURIComponent(jobId)}/succeed`, body, retryable: true })).body;
  }

  async fail(jobId: string, body: FailRequest): Promise<FailResponse> {
    return (await this.send<FailResponse>({ method: 'POST', path: `/jobs/${encodeURIComponent(jobId)}/fail`, body, retryable: true })).body;
  }

  async cancel(jobId: string): Promise<JobStatusResponse> {
    return (await this.send<JobStatusResponse>({ method: 'POST', path: `/jobs/${encodeURIComponent(jobId)}/cancel`, retryable: true })).body;
  }

  /** The caller's own jobs (an admin's: all), newest first: `GET /jobs?status=&type=&tag=&page=&per_page=`. */
  async listJobs(query: ListJobsQuery = {}): Promise<JobPage> {
    const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
    const suffix = params.toString() === '' ? '' : `?${params.toString()}`;
    return (await this.send<JobPage>({ method: 'GET', path: `/jobs${suffix}`, retryable: true })).body;
  }

  /**
   * `POST /admin/jobs/bulk` (admin). Not retried (a repeat is harmless, but its counts would differ);
   * call it again while the answer says `complete: false`.
   */
  async bulkJobs(request: BulkRequest): Promise<BulkResponse> {
    return (await this.send<BulkResponse>({ method: 'POST', path: '/admin/jobs/bulk', body: request, retryable: request.dryRun === true, timeoutMs: 60_000 })).body;
  }

  /** `GET /admin/workers` (admin): the workers seen in the last five minutes and the jobs they hold. */
  async listWorkers(): Promise<WorkerList> {
    return (await this.send<WorkerList>({ method: 'GET', path: '/admin/workers', retryable: true })).body;
  }

  /** `waitSeconds` (0–30): the API holds the answer until the job finishes or the time is up. */
  async getJob(jobId: string, params: { waitSeconds?: number; signal?: AbortSignal } = {}): Promise<JobWire> {
    const wait = params.waitSeconds ? `?wait=${params.waitSeconds}` : '';
    return (
      await this.send<JobWire>({
        method: 'GET',
        path: `/jobs/${encodeURIComponent(jobId)}${wait}`,
        retryable: true,
        ...(params.waitSeconds ? { timeoutMs: params.waitSeconds * 1000 + (this.options.timeoutMs ?? 10_000) } : {}),
        ...(params.signal ? { signal: params.signal } : {}),
      })
    ).body;
  }

  /**
   * Resolves with the job once it has finished (succeeded, failed, dlq or cancelled), asking with
   * `GET /jobs/:jobId?wait=` (at most 30 s a call) until `timeoutMs` has passed; then resolves with
   * the job as it is (check `status`).
   */
  async waitForResult(jobId: string, params: { timeoutMs: number; signal?: AbortSignal }): Promise<JobWire> {
    const deadline = Date.now() + params.timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      // Tenths of a second: the API takes a fractional wait.
      const waitSeconds = Math.max(0, Math.min(30, Math.floor(left / 100) / 10));
      const job = await this.getJob(jobId, { waitSeconds, ...(params.signal ? { signal: params.signal } : {}) });
      if (FINISHED.includes(job.status) || Date.now() >= deadline || waitSeconds === 0) return job;
    }
  }

  /**
   * Streams a result file of a leased job into the API (`POST /jobs/:jobId/files`), never holding it
   * whole. Not retried: a stream cannot be sent twice. `signal` ends the upload (the job's own signal).
   */
  async uploadFile(
    jobId: string,
    params: { leaseId: string; name: string; contentType?: string; body: Uint8Array | AsyncIterable<Uint8Array>; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<ResultFileReceipt> {
    const query = new URLSearchParams({ name: params.name, leaseId: params.leaseId });
    const path = `/jobs/${encodeURIComponent(jobId)}/files?${query.toString()}`;
    const headers = { ...this.authHeaders(), 'Content-Type': params.contentType ?? 'application/octet-stream' };
    // Node's fetch takes an async iterable as a streamed body (the DOM types do not say so).
    const body = params.body as unknown as BodyInit;
    const timeout = AbortSignal.timeout(params.timeoutMs ?? UPLOAD_TIMEOUT_MS);
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method: 'POST',
        headers,
        body,
        // A streamed request body (Node's fetch needs to be told it is sent before the answer comes).
        duplex: 'half',
        signal: params.signal ? AbortSignal.any([params.signal, timeout]) : timeout,
      } as RequestInit);
    } catch (err) {
      throw new NetworkError(`POST ${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return (await this.readJson<ResultFileReceipt>(response, 'POST', path)).body;
  }

  /** Opens a result file for reading (`GET /jobs/:jobId/files/:fileId`, or its `url` from the job's `files`). */
  async downloadFile(jobIdOrUrl: string, fileId?: string): Promise<{ contentType: string; size: number; body: ReadableStream<Uint8Array> }> {
    const path = fileId === undefined ? jobIdOrUrl : `/jobs/${encodeURIComponent(jobIdOrUrl)}/files/${encodeURIComponent(fileId)}`;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${path}`, { headers: this.authHeaders(), signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
    } catch (err) {
      throw new NetworkError(`GET ${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (!response.ok || !response.body) {
      let body: unknown;
      try {
        body = await response.json();
      } catch {
        body = undefined;
      }
      throw apiErrorFor(response.status, body, response.headers.get('retry-after'));
    }
    return { contentType: response.headers.get('content-type') ?? 'application/octet-stream', size: Number(response.headers.get('content-length') ?? 0), body: response.body };
  }

  private authHeaders(): Record<string, string> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.options.token}`, Accept: 'application/json' };
    if (this.options.workerId) headers['X-Worker-Id'] = this.options.workerId;
    return headers;
  }

  private async readJson<T>(response: Response, method: string, path: string): Promise<{ status: number; body: T }> {
    let body: unknown;
    try {
      body = await response.json();
    } catch (err) {
      if (response.ok) throw new NetworkError(`${method} ${path}: response body is not JSON`, { cause: err });
      body = undefined;
    }
    if (!response.ok) throw apiErrorFor(response.status, body, response.headers.get('retry-after'));
    return { status: response.status, body: body as T };
  }

  private async send<T>(spec: RequestSpec): Promise<{ status: number; body: T }> {
    const attempts = spec.retryable ? this.retry.attempts : 1;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.sendOnce<T>(spec);
      } catch (err) {
        const transient = err instanceof NetworkError || err instanceof UnavailableApiError;
        if (!transient || attempt >= attempts) throw err;
        const delay = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + 0.5 * this.random());
        await this.sleep(delay);
      }
    }
  }

  private async sendOnce<T>(spec: RequestSpec): Promise<{ status: number; body: T }> {
    const tracing = this.options.tracing;
    if (!tracing?.enabled) return this.sendUntraced<T>(spec);
    // Named by the route, not the URL: ids would make every span name unique.
    const route = spec.path.split('?')[0]!.replace(/job_[0-9a-f]{24}/g, ':jobId');
    return tracing.withSpan(`${spec.method} ${route}`, { kind: 'client', attributes: { 'http.request.method': spec.method, 'url.path': route } }, async (span) => {
      const answer = await this.sendUntraced<T>(spec, (headers) => tracing.injectHeaders(headers));
      span.setAttributes({ 'http.response.status_code': answer.status });
      return answer;
    });
  }

  private async sendUntraced<T>(spec: RequestSpec, addHeaders?: (headers: Record<string, string>) => void): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.options.token}`, Accept: 'application/json' };
    if (this.options.workerId) headers['X-Worker-Id'] = this.options.workerId;
    if (spec.body !== undefined) headers['Content-Type'] = 'application/json';
    addHeaders?.(headers);
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${spec.path}`, {
        method: spec.method,
        headers,
        ...(spec.body === undefined ? {} : { body: JSON.stringify(spec.body) }),
        signal: spec.signal
          ? AbortSignal.any([spec.signal, AbortSignal.timeout(spec.timeoutMs ?? this.options.timeoutMs ?? 10_000)])
          : AbortSignal.timeout(spec.timeoutMs ?? this.options.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new NetworkError(`${spec.method} ${spec.path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (err) {
      if (response.ok) throw new NetworkError(`${spec.method} ${spec.path}: response body is not JSON`, { cause: err });
      body = undefined;
    }
    if (!response.ok) throw apiErrorFor(response.status, body, response.headers.get('retry-after'));
    return { status: response.status, body: body as T };
  }
}

