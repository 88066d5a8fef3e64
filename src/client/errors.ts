import { ERROR_CATALOG, type ErrorCode, type ErrorStatus } from '../error-catalog';

/** Errors the jobs client throws: one class per status a caller may want to handle. */
export class JobsApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** 400: malformed JSON or an unreadable request. */
export class BadRequestApiError extends JobsApiError {}
export class UnauthenticatedApiError extends JobsApiError {}
export class PermissionDeniedApiError extends JobsApiError {}
export class NotFoundApiError extends JobsApiError {}
/** 408: the request did not arrive in time. */
export class RequestTimeoutApiError extends JobsApiError {}
/** 409: `lease_conflict` (the lease is no longer ours), `invalid_state` or `conflict`. */
export class ConflictApiError extends JobsApiError {}
export class PayloadTooLargeApiError extends JobsApiError {}
export class UnsupportedMediaTypeApiError extends JobsApiError {}
export class ValidationApiError extends JobsApiError {}
/** 429: slow down; `retryAfterSeconds` is the API's Retry-After, when it sent one. */
export class RateLimitedApiError extends JobsApiError {
  retryAfterSeconds: number | undefined;
}
/** 500: a fault of the API, not of the request. */
export class InternalApiError extends JobsApiError {}
/** 503 (or 502/504) after the client's retries were used up. */
export class UnavailableApiError extends JobsApiError {}

type ApiErrorClass = new (status: number, code: string, message: string, details?: unknown) => JobsApiError;

/**
 * One class per status of the error catalog: a status the catalog gains without a class here is a
 * compile error. 502 and 504 (a proxy in front of the API) count as unavailable.
 */
const CLASS_BY_STATUS: Readonly<Record<ErrorStatus | 502 | 504, ApiErrorClass>> = {
  400: BadRequestApiError,
  401: UnauthenticatedApiError,
  403: PermissionDeniedApiError,
  404: NotFoundApiError,
  408: RequestTimeoutApiError,
  409: ConflictApiError,
  413: PayloadTooLargeApiError,
  415: UnsupportedMediaTypeApiError,
  // Headers over the limit: too large, as a body over its limit is.
  431: PayloadTooLargeApiError,
  422: ValidationApiError,
  429: RateLimitedApiError,
  500: InternalApiError,
  502: UnavailableApiError,
  503: UnavailableApiError,
  504: UnavailableApiError,
};

/** The class the client throws for an error code of the catalog. */
export function apiErrorClassFor(code: ErrorCode): ApiErrorClass {
  return CLASS_BY_STATUS[ERROR_CATALOG[code].status];
}

/** The request never got an HTTP answer (connection refused, reset, timeout), after retries. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

export function apiErrorFor(status: number, body: unknown, retryAfter?: string | null): JobsApiError {
  const error = (typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined) as
    | { code?: unknown; message?: unknown; details?: unknown }
    | undefined;
  const code = typeof error?.code === 'string' ? error.code : `http_${status}`;
  const message = typeof error?.message === 'string' ? error.message : `HTTP ${status}`;
  // By status, so an answer that did not come from the API (a proxy's 502) is classed too.
  const ErrorClass: ApiErrorClass = Object.hasOwn(CLASS_BY_STATUS, status) ? CLASS_BY_STATUS[status as keyof typeof CLASS_BY_STATUS] : JobsApiError;
  const apiError = new ErrorClass(status, code, message, error?.details);
  if (apiError instanceof RateLimitedApiError) apiError.retryAfterSeconds = parseRetryAfter(retryAfter);
  return apiError;
}

/** Retry-After in seconds (delta-seconds form only); undefined when absent or not a number. */
function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value || !/^\d{1,9}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}
