/**
 * Typed errors with stable codes. Domain code throws these; the HTTP error handler answers each
 * code with the status the error catalog gives it (src/error-catalog.ts). Nothing here knows HTTP.
 */
import type { ErrorCode } from './error-catalog';

// The codes, their statuses and meanings are one table (src/error-catalog.ts); re-exported for the domain.
export type { ErrorCode } from './error-catalog';

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, details?: unknown) {
    super('bad_request', message, details);
  }
}

/** One entry per failing field, so callers can show all problems at once. */
export interface FieldError {
  field: string;
  message: string;
}

export class ValidationError extends AppError {
  constructor(message: string, details?: FieldError[]) {
    super('validation_error', message, details);
  }
}

export class PayloadInvalidError extends AppError {
  constructor(details: FieldError[]) {
    super('payload_invalid', 'payload does not match the schema of its job type', details);
  }
}

export class UnauthenticatedError extends AppError {
  constructor(message = 'a valid bearer token is required') {
    super('unauthenticated', message);
  }
}

export class PermissionDeniedError extends AppError {
  constructor(message = 'this role may not do that') {
    super('permission_denied', message);
  }
}

/** A non-admin asked for something it does not own; existence is not revealed. */
export class AccessDeniedError extends AppError {
  constructor(message = 'no access to this resource') {
    super('access_denied', message);
  }
}

export class NotFoundError extends AppError {
  constructor(
    code: Extract<ErrorCode, 'not_found' | 'job_not_found' | 'job_type_not_found' | 'asset_not_found' | 'escrow_not_found'>,
    message: string,
  ) {
    super(code, message);
  }
}

export class LeaseConflictError extends AppError {
  constructor(message = 'the caller does not hold the current lease of this job') {
    super('lease_conflict', message);
  }
}

export class InvalidStateError extends AppError {
  constructor(message: string) {
    super('invalid_state', message);
  }
}

export class ConflictError extends AppError {
  constructor(message: string) {
    super('conflict', message);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message = 'request body is too large') {
    super('payload_too_large', message);
  }
}

/** The client stopped sending its request body. */
export class RequestTimeoutError extends AppError {
  constructor(message = 'the request body did not arrive in time') {
    super('request_timeout', message);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super('unsupported_media_type', message);
  }
}

export class RateLimitedError extends AppError {
  constructor(
    readonly retryAfterSeconds: number,
    message = 'too many requests; retry later',
  ) {
    super('rate_limited', message);
  }
}

/** The database (or another dependency) does not answer; the caller may retry. */
export class UnavailableError extends AppError {
  constructor(message = 'the service cannot reach its database; retry later') {
    super('unavailable', message);
  }
}

/** Turns anything thrown into an Error, so callers never handle `unknown` further. */
export function coerceError(raw: unknown): Error {
  if (raw instanceof Error) return raw;
  return new Error(typeof raw === 'string' ? raw : JSON.stringify(raw));
}
