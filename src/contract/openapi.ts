import { z } from 'zod';

import { ERROR_CATALOG, type ErrorCode } from '../error-catalog';
import { rolesWith } from '../model/permission';
import { COMPONENTS } from './components';
import { errorCodesOf, TAGS, type Access, type RouteDef } from './route';
import { ROUTE_LIST } from './routes';
import { documentedJsonOf, type JsonSchema } from './schema';

/**
 * Generates the OpenAPI 3.1 document from the route table and its zod schemas (zod 4's
 * `z.toJSONSchema`): nothing in it is written by hand but prose. Served at /openapi.json, linted
 * with Redocly (`npm run lint:openapi`), checked against the app by test/integration/contract.test.ts.
 */

/** The document as plain JSON (callers that walk it narrow what they read). */
export type OpenApiDocument = JsonSchema;

const SCHEMA_REF = '#/components/schemas/';
const ANONYMOUS = '__inline_';
const SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

export const API_TITLE = 'jobs';
export const API_VERSION = '0.1.0';
export const API_SUMMARY = 'A background-jobs service on MongoDB: enqueue over HTTP, lease atomically, retry with backoff, dead-letter.';
export const API_DESCRIPTION =
  'Every endpoint but health, metrics, this document, /docs and the dashboard page needs `Authorization: Bearer <JWT>` (HS256 with JWT_SECRET; claims `sub`, `role` = admin | service | worker | user, optional `tenant` and `exp`). Every error body is `{ "error": { "code", "message", "details"? } }`; no 5xx for any input a client can send. The token (401) and the role (403) are checked before a body is read or validated (400/413/422); a request body that stalls (HTTP_BODY_IDLE_TIMEOUT_MS) or a request that does not arrive in full within HTTP_REQUEST_TIMEOUT_MS is answered 408 (`request_timeout`) and its connection closed.';

/** `/jobs/:jobId` → `/jobs/{jobId}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** `x-worker-id` → `X-Worker-Id` (header names are case-insensitive; this is how they are written). */
function headerName(key: string): string {
  return key
    .split('-')
    .map((part) => (part ? part[0]!.toUpperCase() + part.slice(1) : part))
    .join('-');
}

function pascal(code: string): string {
  return code
    .split('_')
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

/** Who may call a route, in words and as roles. */
export function accessOf(access: Access): { roles: string[] | 'public' | 'any'; words: string } {
  if (access === 'public') return { roles: 'public', words: 'public (no token)' };
  if (access === 'authenticated') return { roles: 'any', words: 'any valid token' };
  const roles = rolesWith(access);
  return { roles, words: `${roles.map((r) => `\`${r}\``).join(', ')} (permission \`${access}\`)` };
}

/** Drops what zod writes for its own checks but says nothing to a reader: safe-integer bounds, the date-time regex. */
function tidy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidy);
  if (value === null || typeof value !== 'object') return value;
  const out: JsonSchema = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === '$schema' || key === '$id') continue;
    if (key === 'minimum' && v === -SAFE_INTEGER) continue;
    if (key === 'maximum' && v === SAFE_INTEGER) continue;
    if (key === 'pattern' && (value as JsonSchema).format === 'date-time') continue;
    out[key] = tidy(v);
  }
  return out;
}

function overrideDocumented({ zodSchema, jsonSchema }: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  const documented = documentedJsonOf(zodSchema as z.ZodType);
  if (!documented) return;
  for (const key of Object.keys(jsonSchema)) delete jsonSchema[key];
  Object.assign(jsonSchema, documented);
}

/** One schema on its own, everything inlined (for prose that lists a schema's fields). */
export function standaloneJsonSchema(schema: z.ZodType): JsonSchema {
  return tidy(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', override: overrideDocumented })) as JsonSchema;
}

interface Converted {
  /** Named components, tidied. */
  named: Record<string, JsonSchema>;
  /** The JSON Schema of any schema of the route table (named ones as a $ref). */
  of(schema: z.ZodType): JsonSchema;
}

/** Converts every schema the route table uses in one pass, so shared shapes become `$ref`s. */
function convertSchemas(routes: readonly RouteDef[]): Converted {
  const registry = z.registry<{ id: string }>();
  const ids = new Map<z.ZodType, string>();
  const add = (schema: z.ZodType, id: string): void => {
    if (ids.has(schema)) return;
    ids.set(schema, id);
    registry.add(schema, { id });
  };
  for (const [name, schema] of COMPONENTS) add(schema, name);
  let counter = 0;
  const addAnonymous = (schema: z.ZodType | undefined): void => {
    if (schema) add(schema, `${ANONYMOUS}${(counter += 1)}`);
  };
  for (const route of routes) {
    addAnonymous(route.params);
    addAnonymous(route.headers);
    addAnonymous(route.query);
    addAnonymous(route.body?.documented ?? route.body?.schema);
    for (const response of Object.values(route.responses)) addAnonymous('json' in response ? response.json : undefined);
  }
  const { schemas } = z.toJSONSchema(registry, {
    io: 'input',
    uri: (id) => `${SCHEMA_REF}${id}`,
    unrepresentable: 'any',
    override: overrideDocumented,
  }) as unknown as { schemas: Record<string, JsonSchema> };
  const tidied = Object.fromEntries(Object.entries(schemas).map(([id, s]) => [id, tidy(s) as JsonSchema]));

  // Anonymous schemas are inlined where they are used (and wherever another one refers to them).
  const inline = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(inline);
    if (value === null || typeof value !== 'object') return value;
    const ref = (value as JsonSchema).$ref;
    if (typeof ref === 'string' && ref.startsWith(`${SCHEMA_REF}${ANONYMOUS}`)) {
      const { $ref: _ref, ...rest } = value as JsonSchema;
      return { ...(inline(tidied[ref.slice(SCHEMA_REF.length)]) as JsonSchema), ...rest };
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, inline(v)]));
  };
  const named = Object.fromEntries(COMPONENTS.map(([name]) => [name, inline(tidied[name]) as JsonSchema]));
  return {
    named,
    of: (schema) => {
      const id = ids.get(schema);
      if (id === undefined) throw new Error('schema not registered for the document');
      return id.startsWith(ANONYMOUS) ? (inline(tidied[id]) as JsonSchema) : { $ref: `${SCHEMA_REF}${id}` };
    },
  };
}

function objectParameters(converted: Converted, schema: z.ZodType | undefined, location: 'path' | 'query' | 'header'): JsonSchema[] {
  if (!schema) return [];
  const json = converted.of(schema);
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([key, property]) => {
    const { description, ...propertySchema } = property;
    return {
      name: location === 'header' ? headerName(key) : key,
      in: location,
      required: location === 'path' || required.has(key),
      ...(typeof description === 'string' ? { description } : {}),
      schema: propertySchema,
    };
  });
}

function errorResponses(route: RouteDef, sharedResponses: Map<string, JsonSchema>): Record<string, JsonSchema> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorCodesOf(route)) {
    const status = ERROR_CATALOG[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, JsonSchema> = {};
  for (const [status, codes] of byStatus) {
    const notes = codes.map((code) => route.errors[code]).filter((note): note is string => Boolean(note));
    if (codes.length === 1 && notes.length === 0) {
      // A code with nothing route-specific to say: one shared response, referenced.
      const name = pascal(codes[0]!);
      sharedResponses.set(name, errorResponse(codes, ERROR_CATALOG[codes[0]!].description, status));
      out[String(status)] = { $ref: `#/components/responses/${name}` };
      continue;
    }
    const description = codes.map((code) => `\`${code}\`: ${route.errors[code] || ERROR_CATALOG[code].description}`).join(' ');
    out[String(status)] = errorResponse(codes, description, status);
  }
  return out;
}

function errorResponse(codes: readonly ErrorCode[], description: string, status: number): JsonSchema {
  return {
    description,
    ...(status === 429 ? { headers: { 'Retry-After': { description: 'Seconds to wait before the next call.', schema: { type: 'integer', minimum: 1 } } } } : {}),
    content: {
      'application/json': {
        schema: { $ref: `${SCHEMA_REF}Error` },
        example: { error: { code: codes[0]!, message: ERROR_CATALOG[codes[0]!].description.replace(/`/g, '') } },
      },
    },
  };
}

function operation(params: { operationId: string; route: RouteDef; converted: Converted; sharedResponses: Map<string, JsonSchema> }): JsonSchema {
  const { operationId, route, converted } = params;
  const who = accessOf(route.access);
  const parameters = [
    ...objectParameters(converted, route.params, 'path'),
    ...objectParameters(converted, route.headers, 'header'),
    ...objectParameters(converted, route.query, 'query'),
  ];
  const requestBody = route.body
    ? {
        required: route.body.required,
        content: {
          'application/json': {
            schema: converted.of(route.body.documented ?? route.body.schema),
            ...(route.body.examples ? { examples: route.body.examples } : {}),
          },
        },
      }
    : route.rawBody
      ? {
          required: true,
          description: route.rawBody.description,
          content: Object.fromEntries(route.rawBody.contentTypes.map((t) => [t, { schema: { type: 'string', contentMediaType: t } }])),
        }
      : undefined;
  const responses: Record<string, JsonSchema> = {};
  for (const [status, response] of Object.entries(route.responses)) {
    const headers = 'headers' in response && response.headers ? { headers: response.headers } : {};
    if ('json' in response) {
      responses[status] = { description: response.description, ...headers, content: { 'application/json': { schema: converted.of(response.json) } } };
    } else if ('raw' in response) {
      responses[status] = {
        description: response.description,
        ...headers,
        content: Object.fromEntries(
          response.raw.map((t) => [t, { schema: t === 'application/json' ? { type: 'object' } : { type: 'string' }, ...(response.example ? { example: response.example } : {}) }]),
        ),
      };
    } else {
      responses[status] = { description: response.description };
    }
  }
  Object.assign(responses, errorResponses(route, params.sharedResponses));
  return {
    tags: [route.tag],
    operationId,
    summary: route.summary,
    description: `${route.description ? `${route.description}\n\n` : ''}Who may call: ${who.words}.`,
    ...(route.access === 'public' ? { security: [] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses,
  };
}

/** The names a document part refers to, followed through the named schemas. */
function reachableSchemas(start: unknown, named: Record<string, JsonSchema>): Set<string> {
  const seen = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (value === null || typeof value !== 'object') return;
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string' && v.startsWith(SCHEMA_REF)) {
        const name = v.slice(SCHEMA_REF.length);
        if (!seen.has(name)) {
          seen.add(name);
          visit(named[name]);
        }
      } else {
        visit(v);
      }
    }
  };
  visit(start);
  return seen;
}

// The document is a pure function of the static route table: generated once per process.
let generated: OpenApiDocument | undefined;

/** The document (a fresh copy each call, so callers may change theirs). */
export function buildOpenApiDocument(): OpenApiDocument {
  generated ??= generateOpenApiDocument();
  return structuredClone(generated);
}

function generateOpenApiDocument(): OpenApiDocument {
  const converted = convertSchemas(ROUTE_LIST.map((r) => r.route));
  const sharedResponses = new Map<string, JsonSchema>();
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const { operationId, route } of ROUTE_LIST) {
    const path = openApiPath(route.path);
    paths[path] = { ...paths[path], [route.method]: operation({ operationId, route, converted, sharedResponses }) };
  }
  const responses = Object.fromEntries([...sharedResponses].sort(([a], [b]) => a.localeCompare(b)));
  const used = reachableSchemas({ paths, responses }, converted.named);
  const schemas = Object.fromEntries(Object.entries(converted.named).filter(([name]) => used.has(name)));
  const usedTags = new Set(ROUTE_LIST.map((r) => r.route.tag));
  return {
    openapi: '3.1.0',
    info: {
      title: API_TITLE,
      version: API_VERSION,
      summary: API_SUMMARY,
      description: API_DESCRIPTION,
      // The project is not open source (package.json: UNLICENSED); SPDX's LicenseRef- names a license outside its list.
      license: { name: 'UNLICENSED (proprietary; all rights reserved)', identifier: 'LicenseRef-Proprietary' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    // Relative: the API answers where this document is served from.
    servers: [{ url: '/', description: 'The API instance serving this document.' }],
    tags: Object.entries(TAGS)
      .filter(([name]) => usedTags.has(name as keyof typeof TAGS))
      .map(([name, description]) => ({ name, description })),
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Mint one locally with `npm run token -- --role admin --sub alice`.' },
      },
      responses,
      schemas,
    },
  };
}
