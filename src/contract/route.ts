import type { z } from 'zod';

import { ERROR_CATALOG, type ErrorCode } from '../error-catalog';
import type { Permission } from '../model/permission';
import type { JsonSchema } from './schema';

/**
 * What one route of the HTTP contract is: the routers register routes from these (src/http/
 * mount-route.ts), the OpenAPI document and docs/api.md are generated from them, and the client's
 * types are read from their schemas.
 */

export type HttpMethod = 'get' | 'post' | 'patch' | 'delete';

/**
 * Who may call a route: `public` (no token), `authenticated` (any valid token) or the holders of a
 * permission (src/model/permission.ts says which roles those are).
 */
export type Access = 'public' | 'authenticated' | Permission;

export const TAGS = {
  jobs: 'Enqueue, read and cancel jobs.',
  worker: 'Lease jobs and report on them; every call carries X-Worker-Id.',
  admin: 'Operate the queue (admin role only; a tenant admin sees its tenant only).',
  assets: 'Images the thumbnail.create job works on (stored in GridFS).',
  escrows: 'Money held for payees; paid by payout.execute jobs.',
  auth: 'Tokens.',
  health: 'Liveness and readiness probes.',
  operations: 'Metrics, documentation and the dashboard.',
} as const;
export type Tag = keyof typeof TAGS;

export interface Example<T> {
  summary: string;
  value: T;
}

export interface JsonBody {
  /** What the route validates. */
  schema: z.ZodType;
  /** What the document shows, when the route checks parts of the body itself (a batch's items). */
  documented?: z.ZodType;
  /** false: an empty body counts as `{}`. */
  required: boolean;
  /**
   * A top-level array whose items the route judges one by one, unsafe keys included (a batch whose
   * bad item never fails the others): the body's own key check leaves them to it.
   */
  itemsJudgedAlone?: string;
  /** Ready-to-send bodies: /docs' "Try it out" starts from the first one. */
  examples?: Record<string, Example<unknown>>;
}

/** A body of raw bytes (an upload), not JSON. */
export interface RawBody {
  contentTypes: readonly string[];
  description: string;
}

export interface HeaderDoc {
  description: string;
  schema: JsonSchema;
}

export interface JsonResponse {
  description: string;
  json: z.ZodType;
  headers?: Record<string, HeaderDoc>;
}

/** A response the handler writes itself (bytes, text, HTML). */
export interface RawResponse {
  description: string;
  raw: readonly string[];
  headers?: Record<string, HeaderDoc>;
  example?: string;
}

export interface EmptyResponse {
  description: string;
  empty: true;
}

export type ResponseDef = JsonResponse | RawResponse | EmptyResponse;

export interface RouteDef {
  method: HttpMethod;
  /** Express style (`/jobs/:jobId`). */
  path: string;
  tag: Tag;
  summary: string;
  /** The semantics, briefly (Markdown). */
  description?: string;
  access: Access;
  params?: z.ZodType;
  headers?: z.ZodType;
  query?: z.ZodType;
  body?: JsonBody;
  rawBody?: RawBody;
  responses: Readonly<Record<number, ResponseDef>>;
  /**
   * The error codes this route answers besides the ones its shape implies (see impliedErrorCodes),
   * each with what it means here ('' : the catalog's description).
   */
  errors: Readonly<Partial<Record<ErrorCode, string>>>;
}

export function defineRoute<const R extends RouteDef>(route: R): R {
  return route;
}

/**
 * The codes every route of a kind can answer: 401 without a token; 403 for a role without the
 * permission; 422 for an unsafe query key (every authenticated request is checked); 503 when the
 * database does not answer; the body errors (400, 408, 413, 415) for routes that read a body.
 */
export function impliedErrorCodes(route: RouteDef): ErrorCode[] {
  const codes: ErrorCode[] = [];
  if (route.body || route.rawBody) codes.push('bad_request');
  if (route.access !== 'public') codes.push('unauthenticated');
  if (route.access !== 'public' && route.access !== 'authenticated') codes.push('permission_denied');
  if (route.body || route.rawBody) codes.push('request_timeout', 'payload_too_large', 'unsupported_media_type');
  if (route.access !== 'public' || route.params || route.query || route.headers || route.body) codes.push('validation_error');
  if (route.access !== 'public') codes.push('unavailable');
  return codes;
}

/** Every code the route may answer, ordered by status. */
export function errorCodesOf(route: RouteDef): ErrorCode[] {
  const codes = new Set<ErrorCode>([...impliedErrorCodes(route), ...(Object.keys(route.errors) as ErrorCode[])]);
  return [...codes].sort((a, b) => ERROR_CATALOG[a].status - ERROR_CATALOG[b].status);
}
