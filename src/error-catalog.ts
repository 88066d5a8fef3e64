/**
 * Every error code the service answers with, its HTTP status and what it means: the one table.
 * The domain throws codes (src/errors.ts) and never statuses; the HTTP error handler's status map,
 * the OpenAPI error responses, docs/api.md and the client's error classes are all read from here.
 * It sits at the bottom with the model, so the domain can throw without knowing the contract.
 */

export interface ErrorCatalogEntry {
  status: number;
  description: string;
}

export const ERROR_CATALOG = {
  bad_request: { status: 400, description: 'The body is not valid JSON, the request path is not valid percent-encoding, or the request could not be read.' },
  unauthenticated: { status: 401, description: 'Missing, malformed, expired or wrongly signed token (including `alg: none`).' },
  permission_denied: { status: 403, description: "A valid token whose role may not do this (checked before any body is read)." },
  access_denied: {
    status: 403,
    description: 'A non-admin asked for a job it did not create, or for one that does not exist: existence is not revealed.',
  },
  not_found: { status: 404, description: 'No such route, schedule or file.' },
  job_not_found: { status: 404, description: 'No job with this id (answered to admins; others get `access_denied`).' },
  job_type_not_found: { status: 404, description: 'The job type is not registered.' },
  asset_not_found: { status: 404, description: 'No asset with this id that the caller may see or change.' },
  escrow_not_found: { status: 404, description: 'No escrow with this id (or one of another tenant).' },
  request_timeout: { status: 408, description: 'The request body stopped arriving, or the request did not arrive in full in time; the connection is closed.' },
  lease_conflict: { status: 409, description: 'The caller does not hold the current lease of the job (not leased, leased to another worker, or another lease id).' },
  invalid_state: { status: 409, description: 'The resource is in a state that does not allow this (a finished job cannot be cancelled, only finished jobs can be requeued, ...).' },
  conflict: { status: 409, description: 'The name or id is taken, or the resource kept changing during the edit; retry.' },
  payload_too_large: { status: 413, description: 'The body (or a job payload as JSON) is over its size limit.' },
  headers_too_large: { status: 431, description: "The request line and headers are over Node's size limit (16 KiB); the connection is closed." },
  unsupported_media_type: { status: 415, description: 'Not an accepted media type, charset or content encoding.' },
  validation_error: { status: 422, description: 'Input validation failed; `details` lists every failing field as `{ field, message }`.' },
  payload_invalid: { status: 422, description: "The payload does not match its job type's schema; `details` lists the failing fields." },
  rate_limited: { status: 429, description: 'Too many requests; retry after the `Retry-After` seconds.' },
  internal: { status: 500, description: 'An unexpected error; the body never carries its cause. Never the answer to anything a client sends.' },
  unavailable: {
    status: 503,
    description:
      'The database (or another dependency) does not answer; retry later. A write it cut short may still have been applied once the database answers: retry an enqueue with the same `idempotencyKey` (or `dedupe` key), so the retry cannot make a second job.',
  },
} as const satisfies Record<string, ErrorCatalogEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOG;
/** The statuses the catalog uses (a client needs a class for each). */
export type ErrorStatus = (typeof ERROR_CATALOG)[ErrorCode]['status'];

export const ERROR_CODES = Object.keys(ERROR_CATALOG) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

export function statusOfCode(code: ErrorCode): ErrorStatus {
  return ERROR_CATALOG[code].status;
}
