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

export class UnauthenticatedApiError extends JobsApiError {}
export class PermissionDeniedApiError extends JobsApiError {}
export class NotFoundApiError extends JobsApiError {}
/** 409: `lease_conflict` (the lease is no longer ours) or `invalid_state`. */
export class ConflictApiError extends JobsApiError {}
export class ValidationApiError extends JobsApiError {}
/** 429: slow down; `retryAfterSeconds` is the API's Retry-After, when it sent one. */
export class RateLimitedApiError extends JobsApiError {
  retryAfterSeconds: number | undefined;
}
/** 503 (or 502/504) after the client's retries were used up. */
export class UnavailableApiError extends JobsApiError {}

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
  const ErrorClass =
    status === 401
      ? UnauthenticatedApiError
      : status === 403
        ? PermissionDeniedApiError
        : status === 404
          ? NotFoundApiError
          : status === 409
            ? ConflictApiError
            : status === 422
              ? ValidationApiError
              : status === 429
                ? RateLimitedApiError
                : status === 502 || status === 503 || status === 504
                  ? UnavailableApiError
                  : JobsApiError;
  const apiError = new ErrorClass(status, code, message, error?.details);
  if (apiError instanceof RateLimitedApiError) apiError.retryAfterSeconds = parseRetryAfter(retryAfter);
  return apiError;
}

/** Retry-After in seconds (delta-seconds form only); undefined when absent or not a number. */
function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value || !/^\d{1,9}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}
