import type { Tracing } from '../tracing/tracing';
import { apiErrorFor, NetworkError, UnavailableApiError } from './errors';
import type { JsonTransport, TransportAnswer } from './json-transport';
import { CLIENT_OPERATIONS, type ClientOperationId } from './operations';
import type {
  AssetContent,
  AssetWire,
  BulkRequest,
  BulkResponse,
  BatchEnqueueRequest,
  BatchEnqueueResponse,
  BatchReportRequest,
  BatchReportResponse,
  JobTypeEntry,
  JobTypeList,
  SnoozeRequest,
  SnoozeResponse,
  UpdateJobTypeRequest,
  CreateScheduleRequest,
  EnqueueOptions,
  EnqueueResponse,
  Escrow,
  EscrowPage,
  EscrowRequest,
  FailRequest,
  FailResponse,
  Health,
  HeartbeatRequest,
  HeartbeatResponse,
  JobStatusResponse,
  JobType,
  JobWire,
  LeaseParams,
  LeaseResponse,
  OwnJobsQuery,
  PageParams,
  PayloadOf,
  Principal,
  QueuePage,
  QueueQuery,
  QueueStats,
  Ready,
  RequeueResponse,
  ResultFileContent,
  ResultFileReceipt,
  ResultFileUpload,
  Schedule,
  ScheduleList,
  SucceedRequest,
  Throughput,
  TypedLeaseResponse,
  UpdateScheduleRequest,
  UploadReceipt,
  UploadRequest,
  WorkerList,
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
  /** Per-request time limit (default 10 s; a long-poll gets its wait on top). */
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  fetch?: typeof fetch;
  /**
   * Sends the calls that have a JSON body or none and read their answer whole (all but uploads and
   * streamed downloads) instead of fetch: the worker runtime uses `nodeHttpTransport()`
   * (src/worker/node-http-transport.ts, which says why).
   */
  jsonTransport?: JsonTransport;
  /** Injected for tests: waits between retries. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Client spans for every call, with the trace context in its headers (see src/tracing); default: none. */
  tracing?: Pick<Tracing, 'enabled' | 'withSpan' | 'injectHeaders'>;
}

/** A result file upload may take this long by default (100 MB over a slow link). */
const UPLOAD_TIMEOUT_MS = 10 * 60_000;
const FINISHED: readonly string[] = ['succeeded', 'failed', 'dlq', 'cancelled'];

const DEFAULT_RETRY: RetryOptions = { attempts: 4, baseDelayMs: 200, maxDelayMs: 5_000 };
const DEFAULT_TIMEOUT_MS = 10_000;

/** How an answer's body is read. */
type Reading = 'json' | 'text' | 'bytes' | 'stream' | 'none';

interface CallSpec {
  operation: ClientOperationId;
  /** Values of the path's `:name` segments. */
  params?: Readonly<Record<string, string>>;
  query?: URLSearchParams;
  json?: unknown;
  raw?: { body: UploadRequest['body']; contentType: string };
  /**
   * Whether repeating the request cannot do anything twice (reads, reports on a lease, keyed
   * enqueues, edits that set values). When a first try landed unseen, a repeat may answer the 409
   * or 404 its success caused.
   */
  retryable: boolean;
  reading?: Reading;
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Answer<T> {
  status: number;
  headers: { get(name: string): string | null };
  body: T;
}

/**
 * A typed client for every route of the jobs API. Retries with exponential backoff on network
 * errors and 502/503/504 when the request is safe to repeat; other failures become typed errors
 * (401, 403, 404, 409, 422...; see ./errors). Each method names its route in ./operations.ts.
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

  // ---- Jobs ------------------------------------------------------------------------------------

  /** Enqueues one job; its payload must be its type's. Not retried without an idempotency key (a repeat could create a second job). */
  async enqueue<T extends JobType>(request: EnqueueOptions & { type: T; payload: PayloadOf<T> }): Promise<EnqueueResponse<T>> {
    const { status, body } = await this.call<Omit<EnqueueResponse<T>, 'created'>>({
      operation: 'enqueueJob',
      json: request,
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
    return (await this.call<BatchEnqueueResponse>({ operation: 'enqueueJobs', json: request, retryable })).body;
  }

  /** `waitSeconds` (0–30): the API holds the answer until the job finishes or the time is up. */
  async getJob(jobId: string, params: { waitSeconds?: number; signal?: AbortSignal } = {}): Promise<JobWire> {
    const query = new URLSearchParams();
    if (params.waitSeconds) query.set('wait', String(params.waitSeconds));
    return (
      await this.call<JobWire>({
        operation: 'getJob',
        params: { jobId },
        query,
        retryable: true,
        ...(params.waitSeconds ? { timeoutMs: params.waitSeconds * 1000 + (this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS) } : {}),
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
      // Tenths of a second: the API takes a fractional wait.
      const waitSeconds = Math.max(0, Math.min(30, Math.floor((deadline - Date.now()) / 100) / 10));
      const job = await this.getJob(jobId, { waitSeconds, ...(params.signal ? { signal: params.signal } : {}) });
      if (FINISHED.includes(job.status) || Date.now() >= deadline || waitSeconds === 0) return job;
    }
  }

  /** `GET /jobs`: the caller's own jobs (an admin's: all), newest first. */
  async listOwnJobs(query: OwnJobsQuery = {}): Promise<QueuePage> {
    const search = pageQuery(query);
    for (const [key, value] of [
      ['status', listParam(query.status)],
      ['type', listParam(query.type)],
      ['tag', listParam(query.tag)],
    ] as const) {
      if (value !== undefined) search.set(key, value);
    }
    return (await this.call<QueuePage>({ operation: 'listJobs', query: search, retryable: true })).body;
  }

  /**
   * Streams a result file of a leased job into the API (`POST /jobs/:jobId/files`), never holding
   * it whole. Not retried: a stream cannot be sent twice. `signal` ends the upload (the job's own).
   */
  async uploadFile(jobId: string, upload: ResultFileUpload & { timeoutMs?: number; signal?: AbortSignal }): Promise<ResultFileReceipt> {
    const query = new URLSearchParams({ name: upload.name, leaseId: upload.leaseId });
    const body = isAsyncIterable(upload.body) ? streamOf(upload.body) : upload.body;
    return (
      await this.call<ResultFileReceipt>({
        operation: 'uploadResultFile',
        params: { jobId },
        query,
        raw: { body, contentType: upload.contentType ?? 'application/octet-stream' },
        retryable: false,
        timeoutMs: upload.timeoutMs ?? UPLOAD_TIMEOUT_MS,
        ...(upload.signal ? { signal: upload.signal } : {}),
      })
    ).body;
  }

  /** Opens a result file for reading (`GET /jobs/:jobId/files/:fileId`; its `url` in the job's `files` says the same). */
  async downloadFile(jobId: string, fileId: string, options: { timeoutMs?: number } = {}): Promise<ResultFileContent> {
    const answer = await this.call<ReadableStream<Uint8Array>>({
      operation: 'getResultFile',
      params: { jobId, fileId },
      retryable: true,
      reading: 'stream',
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    return { contentType: answer.headers.get('content-type') ?? 'application/octet-stream', size: Number(answer.headers.get('content-length') ?? 0), body: answer.body };
  }

  /** A queued or waiting job is cancelled at once; a leased one is asked to stop (`status: "leased"`). */
  async cancel(jobId: string): Promise<JobStatusResponse> {
    return (await this.call<JobStatusResponse>({ operation: 'cancelJob', params: { jobId }, retryable: true })).body;
  }

  // ---- Workers ---------------------------------------------------------------------------------

  /**
   * Leases up to `limit` jobs. Given `types`, the jobs come typed by them (payload included);
   * `waitSeconds` long-polls (the API holds the call until work arrives); `signal` ends it early.
   */
  async lease<T extends JobType>(params: LeaseParams & { types: readonly [T, ...T[]] }): Promise<TypedLeaseResponse<T>>;
  async lease(params?: LeaseParams & { types?: readonly string[] }): Promise<LeaseResponse>;
  async lease(params: LeaseParams & { types?: readonly string[] } = {}): Promise<LeaseResponse> {
    const query = new URLSearchParams();
    query.set('limit', String(params.limit ?? 1));
    if (params.types && params.types.length > 0) query.set('type', params.types.join(','));
    if (params.waitSeconds) query.set('wait', String(params.waitSeconds));
    const timeoutMs = params.waitSeconds ? params.waitSeconds * 1000 + (this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS) : undefined;
    return (
      await this.call<LeaseResponse>({
        operation: 'leaseJobs',
        query,
        // A repeated lease call could claim jobs whose answer is lost (they would wait out their lease).
        retryable: false,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(params.signal ? { signal: params.signal } : {}),
      })
    ).body;
  }

  async heartbeat(jobId: string, body: HeartbeatRequest): Promise<HeartbeatResponse> {
    return (await this.call<HeartbeatResponse>({ operation: 'heartbeatJob', params: { jobId }, json: body, retryable: true })).body;
  }

  /** Retried on network errors: if the first try landed, the repeat answers 409 (no longer leased). */
  async succeed(jobId: string, body: SucceedRequest): Promise<JobStatusResponse> {
    return (await this.call<JobStatusResponse>({ operation: 'succeedJob', params: { jobId }, json: body, retryable: true })).body;
  }

  async fail(jobId: string, body: FailRequest): Promise<FailResponse> {
    return (await this.call<FailResponse>({ operation: 'failJob', params: { jobId }, json: body, retryable: true })).body;
  }

  /** Puts a leased job back for `seconds` without spending its attempt; a repeat after it landed is a 409. */
  async snooze(jobId: string, body: SnoozeRequest): Promise<SnoozeResponse> {
    return (await this.call<SnoozeResponse>({ operation: 'snoozeJob', params: { jobId }, json: body, retryable: true })).body;
  }

  /**
   * Up to 100 reports of finished jobs in one request; the answer has one result per report (a
   * status, or the error its single endpoint would have answered). Retried like single reports: a
   * report that landed before a lost answer is a 409 the second time.
   */
  async reportBatch(body: BatchReportRequest): Promise<BatchReportResponse> {
    return (await this.call<BatchReportResponse>({ operation: 'reportJobs', json: body, retryable: true })).body;
  }

  // ---- Admin -----------------------------------------------------------------------------------

  /** `GET /admin/jobs/queue`: jobs newest first, filtered (filters combine with AND). */
  async listJobs(query: QueueQuery = {}): Promise<QueuePage> {
    const search = pageQuery(query);
    const list = listParam;
    const date = (value: Date | string | undefined): string | undefined => (value instanceof Date ? value.toISOString() : value);
    for (const [key, value] of [
      ['status', list(query.status)],
      ['type', list(query.type)],
      ['tag', list(query.tag)],
      ['idempotencyKey', query.idempotencyKey],
      ['createdBy', query.createdBy],
      ['createdFrom', date(query.createdFrom)],
      ['createdTo', date(query.createdTo)],
    ] as const) {
      if (value !== undefined) search.set(key, value);
    }
    return (await this.call<QueuePage>({ operation: 'listQueue', query: search, retryable: true })).body;
  }

  async stats(): Promise<QueueStats> {
    return (await this.call<QueueStats>({ operation: 'queueStats', retryable: true })).body;
  }

  /** Jobs finished per UTC minute over the last `minutes` (1-1440, default 60). */
  async throughput(params: { minutes?: number } = {}): Promise<Throughput> {
    const query = new URLSearchParams();
    if (params.minutes !== undefined) query.set('minutes', String(params.minutes));
    return (await this.call<Throughput>({ operation: 'throughput', query, retryable: true })).body;
  }

  /** Every job type with its effective policy, pause and counts (a tenant token: its tenant's counts). */
  async listTypes(): Promise<JobTypeList> {
    return (await this.call<JobTypeList>({ operation: 'listJobTypes', retryable: true })).body;
  }

  /** Changes a type's run-time settings (admin without a tenant); `null` removes one. Safe to repeat. */
  async updateType(type: string, changes: UpdateJobTypeRequest): Promise<JobTypeEntry> {
    return (await this.call<JobTypeEntry>({ operation: 'updateJobType', params: { type }, json: changes, retryable: true })).body;
  }

  /**
   * `POST /admin/jobs/bulk`: requeue, cancel or delete every matching job. Only a dry run is retried
   * (a repeat of a real run is harmless, but its counts would differ); call again while `complete` is false.
   */
  async bulkJobs(request: BulkRequest): Promise<BulkResponse> {
    return (await this.call<BulkResponse>({ operation: 'bulkJobs', json: request, retryable: request.dryRun === true, timeoutMs: 60_000 })).body;
  }

  /** `GET /admin/workers`: the worker processes seen in the last five minutes, with the jobs they hold. */
  async listWorkers(): Promise<WorkerList> {
    return (await this.call<WorkerList>({ operation: 'listWorkers', retryable: true })).body;
  }

  /** Not retried: a repeat after the job ran and failed again would requeue it a second time. */
  async requeue(jobId: string): Promise<RequeueResponse> {
    return (await this.call<RequeueResponse>({ operation: 'requeueJob', params: { jobId }, retryable: false })).body;
  }

  // ---- Schedules (admin) -----------------------------------------------------------------------

  async createSchedule<T extends JobType>(request: CreateScheduleRequest<T>): Promise<Schedule> {
    // Names are unique, so a repeat cannot make a second schedule (it answers 409).
    return (await this.call<Schedule>({ operation: 'createSchedule', json: request, retryable: true })).body;
  }

  async listSchedules(): Promise<ScheduleList> {
    return (await this.call<ScheduleList>({ operation: 'listSchedules', retryable: true })).body;
  }

  async getSchedule(name: string): Promise<Schedule> {
    return (await this.call<Schedule>({ operation: 'getSchedule', params: { name }, retryable: true })).body;
  }

  /** Edits, pauses (`{ paused: true }`) or resumes (`{ paused: false }`) a schedule. */
  async updateSchedule<T extends JobType>(name: string, changes: UpdateScheduleRequest<T>): Promise<Schedule> {
    return (await this.call<Schedule>({ operation: 'updateSchedule', params: { name }, json: changes, retryable: true })).body;
  }

  /** The jobs it already enqueued stay. */
  async deleteSchedule(name: string): Promise<void> {
    await this.call<undefined>({ operation: 'deleteSchedule', params: { name }, retryable: true, reading: 'none' });
  }

  // ---- Escrows (admin) -------------------------------------------------------------------------

  /** Retried only with an `escrowId` (a repeat then answers 409); without one a repeat would hold the money twice. */
  async createEscrow(request: EscrowRequest): Promise<Escrow> {
    return (await this.call<Escrow>({ operation: 'createEscrow', json: request, retryable: request.escrowId !== undefined })).body;
  }

  async listEscrows(params: PageParams = {}): Promise<EscrowPage> {
    return (await this.call<EscrowPage>({ operation: 'listEscrows', query: pageQuery(params), retryable: true })).body;
  }

  async getEscrow(escrowId: string): Promise<Escrow> {
    return (await this.call<Escrow>({ operation: 'getEscrow', params: { escrowId }, retryable: true })).body;
  }

  // ---- Assets ----------------------------------------------------------------------------------

  /** Uploads an image as a new asset (version 1). Never retried: a repeat would store a second asset. */
  async uploadAsset(upload: UploadRequest & { timeoutMs?: number }): Promise<UploadReceipt> {
    return (await this.call<UploadReceipt>(uploadSpec('createAsset', upload))).body;
  }

  /** Uploads a new version of an asset (its owner or an admin). */
  async uploadAssetVersion(assetId: string, upload: UploadRequest & { timeoutMs?: number }): Promise<UploadReceipt> {
    return (await this.call<UploadReceipt>({ ...uploadSpec('addAssetVersion', upload), params: { assetId } })).body;
  }

  async getAsset(assetId: string): Promise<AssetWire> {
    return (await this.call<AssetWire>({ operation: 'getAsset', params: { assetId }, retryable: true })).body;
  }

  /** The bytes of the asset's current version. */
  async getAssetContent(assetId: string, options: { timeoutMs?: number } = {}): Promise<AssetContent> {
    const answer = await this.call<Uint8Array>({
      operation: 'getAssetContent',
      params: { assetId },
      retryable: true,
      reading: 'bytes',
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    return {
      contentType: answer.headers.get('content-type') ?? 'application/octet-stream',
      versionNumber: Number(answer.headers.get('x-asset-version')),
      bytes: answer.body,
    };
  }

  // ---- Operations ------------------------------------------------------------------------------

  async whoami(): Promise<Principal> {
    return (await this.call<Principal>({ operation: 'whoami', retryable: true })).body;
  }

  async health(): Promise<Health> {
    return (await this.call<Health>({ operation: 'healthz', retryable: true })).body;
  }

  /** Not retried: a 503 (the database does not answer) is the answer a probe wants. */
  async ready(): Promise<Ready> {
    return (await this.call<Ready>({ operation: 'readyz', retryable: false })).body;
  }

  /** The Prometheus text exposition. */
  async metrics(): Promise<string> {
    return (await this.call<string>({ operation: 'metrics', retryable: true, reading: 'text' })).body;
  }

  /** The API's OpenAPI 3.1 document. */
  async openApiDocument(): Promise<Record<string, unknown>> {
    return (await this.call<Record<string, unknown>>({ operation: 'openapi', retryable: true })).body;
  }

  // ---- Transport -------------------------------------------------------------------------------

  private async call<T>(spec: CallSpec): Promise<Answer<T>> {
    // A stream body can be read once only.
    const attempts = spec.retryable && !(spec.raw?.body instanceof ReadableStream) ? this.retry.attempts : 1;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.callOnce<T>(spec);
      } catch (err) {
        const transient = err instanceof NetworkError || err instanceof UnavailableApiError;
        if (!transient || attempt >= attempts) throw err;
        const delay = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + 0.5 * this.random());
        await this.sleep(delay);
      }
    }
  }

  private async callOnce<T>(spec: CallSpec): Promise<Answer<T>> {
    const tracing = this.options.tracing;
    if (!tracing?.enabled) return this.callUntraced<T>(spec);
    // Named by the route pattern, not the URL: ids would make every span name unique.
    const { method, path } = CLIENT_OPERATIONS[spec.operation];
    return tracing.withSpan(`${method} ${path}`, { kind: 'client', attributes: { 'http.request.method': method, 'url.path': path } }, async (span) => {
      const answer = await this.callUntraced<T>(spec, (headers) => tracing.injectHeaders(headers));
      span.setAttributes({ 'http.response.status_code': answer.status });
      return answer;
    });
  }

  private async callUntraced<T>(spec: CallSpec, addHeaders?: (headers: Record<string, string>) => void): Promise<Answer<T>> {
    const operation = CLIENT_OPERATIONS[spec.operation];
    const path = operation.path.replace(/:([A-Za-z]+)/g, (_match, name: string) => {
      const value = spec.params?.[name];
      if (value === undefined) throw new TypeError(`${spec.operation}: no value for :${name}`);
      return encodeURIComponent(value);
    });
    const search = spec.query?.toString();
    const query = search ? `?${search}` : '';
    const what = `${operation.method} ${path}${query}`;
    const reading = spec.reading ?? 'json';
    const headers: Record<string, string> = { Authorization: `Bearer ${this.options.token}`, Accept: reading === 'json' ? 'application/json' : '*/*' };
    if (this.options.workerId) headers['X-Worker-Id'] = this.options.workerId;
    addHeaders?.(headers);
    let body: RequestInit['body'];
    if (spec.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(spec.json);
    } else if (spec.raw) {
      headers['Content-Type'] = spec.raw.contentType;
      // Node's fetch sends any ArrayBufferView; the DOM typings want one over an ArrayBuffer only.
      body = spec.raw.body as Blob | ArrayBuffer | ReadableStream;
    }
    const url = `${this.baseUrl}${path}${query}`;
    const timeoutMs = spec.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const transport = this.options.jsonTransport;
    let response: CallResponse;
    try {
      response =
        transport && spec.raw === undefined && reading !== 'stream'
          ? responseOf(await transport({ method: operation.method, url, headers, timeoutMs, ...(typeof body === 'string' ? { body } : {}), ...(spec.signal ? { signal: spec.signal } : {}) }))
          : await this.fetchImpl(url, fetchInit({ method: operation.method, headers, body, timeoutMs, ...(spec.signal ? { signal: spec.signal } : {}) }));
    } catch (err) {
      throw new NetworkError(`${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (!response.ok) {
      const errorBody: unknown = await response.json().catch(() => undefined);
      throw apiErrorFor(response.status, errorBody, response.headers.get('retry-after'));
    }
    try {
      return { status: response.status, headers: response.headers, body: (await readBody(response, reading)) as T };
    } catch (err) {
      throw new NetworkError(`${what}: the answer could not be read as ${reading}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}

/** What a call reads of its answer: fetch's Response, or a JsonTransport's answer in its shape. */
type CallResponse = Pick<Response, 'ok' | 'status' | 'json' | 'text' | 'arrayBuffer' | 'body'> & { headers: { get(name: string): string | null } };

function responseOf(answer: TransportAnswer): CallResponse {
  const text = (): string => new TextDecoder().decode(answer.body);
  return {
    ok: answer.status >= 200 && answer.status <= 299,
    status: answer.status,
    headers: answer.headers,
    body: null,
    json: async () => JSON.parse(text()) as unknown,
    text: async () => text(),
    arrayBuffer: async () => answer.body.slice().buffer as ArrayBuffer,
  };
}

function fetchInit(params: { method: string; headers: Record<string, string>; body: RequestInit['body']; timeoutMs: number; signal?: AbortSignal }): RequestInit & { duplex?: 'half' } {
  const timeout = AbortSignal.timeout(params.timeoutMs);
  return {
    method: params.method,
    headers: params.headers,
    signal: params.signal ? AbortSignal.any([params.signal, timeout]) : timeout,
    ...(params.body === undefined || params.body === null ? {} : { body: params.body }),
    // A stream body is sent as it is read (fetch requires saying so).
    ...(params.body instanceof ReadableStream ? { duplex: 'half' as const } : {}),
  };
}

async function readBody(response: CallResponse, reading: Reading): Promise<unknown> {
  switch (reading) {
    case 'json':
      return response.json();
    case 'text':
      return response.text();
    case 'bytes':
      return new Uint8Array(await response.arrayBuffer());
    case 'stream':
      return response.body ?? new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
    case 'none':
      await response.body?.cancel();
      return undefined;
  }
}

/** A list query parameter: one value or several, comma-separated. */
function listParam(value: string | readonly string[] | undefined): string | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? value : value.join(',');
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && !(value instanceof ReadableStream) && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/** An async iterable as a ReadableStream pulled one chunk at a time (ReadableStream.from is Node 20.6+ only). */
function streamOf(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

function pageQuery(params: PageParams): URLSearchParams {
  const query = new URLSearchParams();
  if (params.page !== undefined) query.set('page', String(params.page));
  if (params.per_page !== undefined) query.set('per_page', String(params.per_page));
  return query;
}

function uploadSpec(operation: 'createAsset' | 'addAssetVersion', upload: UploadRequest & { timeoutMs?: number }): CallSpec {
  const query = new URLSearchParams();
  if (upload.filename !== undefined) query.set('filename', upload.filename);
  return {
    operation,
    query,
    raw: { body: upload.body, contentType: upload.contentType },
    retryable: false,
    ...(upload.timeoutMs === undefined ? {} : { timeoutMs: upload.timeoutMs }),
  };
}

// Every entry of the operation table names a method of the client: a misspelt or removed one does
// not compile (checked here, beside the class, so the table needs no import of it).
type ClientMethodsExist<T> = { [K in keyof T]: T[K] extends { clientMethod: infer M } ? (M extends keyof JobsClient ? T[K] : never) : T[K] };
CLIENT_OPERATIONS satisfies ClientMethodsExist<typeof CLIENT_OPERATIONS>;
