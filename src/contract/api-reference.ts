import { ERROR_CATALOG, ERROR_CODES } from '../error-catalog';
import { JOB_TYPES } from '../jobs/job-types';
import { JOB_STATUSES } from '../model/job';
import { PERMISSIONS } from '../model/permission';
import { ROLES, type Role } from '../model/principal';
import { JOB_TYPE_SCHEMAS, jobStatus } from './jobs';
import { accessOf, API_DESCRIPTION, API_SUMMARY, API_TITLE, buildOpenApiDocument, openApiPath, standaloneJsonSchema } from './openapi';
import { errorCodesOf, TAGS, type RouteDef } from './route';
import { ROUTE_LIST, routeKey } from './routes';
import type { JsonSchema } from './schema';

/**
 * docs/api.md, generated from the route table and the OpenAPI document built from it (so the two
 * cannot disagree): `npm run docs:api` writes it, test/integration/contract.test.ts fails when the
 * committed file is not what this returns.
 */

const SCHEMA_REF = '#/components/schemas/';

type Row = [field: string, type: string, required: string, description: string];

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

function anchor(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
}

function refName(schema: JsonSchema): string | undefined {
  const ref = schema.$ref;
  return typeof ref === 'string' && ref.startsWith(SCHEMA_REF) ? ref.slice(SCHEMA_REF.length) : undefined;
}

/** A schema's type in a few words: `string`, `integer`, [Job](#job)[], `'a' \| 'b'`, ... */
function typeOf(schema: JsonSchema): string {
  const name = refName(schema);
  if (name) return `[${name}](#${anchor(name)})`;
  const variants = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (variants) return variants.map(typeOf).join(' | ');
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' | ');
  const type = schema.type;
  if (Array.isArray(type)) return type.map((t) => typeOf({ ...schema, type: t })).join(' | ');
  switch (type) {
    case 'array':
      return `${typeOf((schema.items ?? {}) as JsonSchema)}[]`;
    case 'object': {
      const values = schema.additionalProperties;
      return typeof values === 'object' && values !== null ? `map of ${typeOf(values as JsonSchema)}` : 'object';
    }
    case 'string':
      return schema.format === 'date-time' ? 'date-time' : 'string';
    case undefined:
      return 'any JSON';
    default:
      return String(type);
  }
}

/** Bounds, patterns and defaults, in words. */
function constraintsOf(schema: JsonSchema): string[] {
  const out: string[] = [];
  const range = (min: unknown, max: unknown, unit: string): void => {
    if (min !== undefined && max !== undefined) out.push(`${String(min)}–${String(max)}${unit}`);
    else if (min !== undefined) out.push(`≥ ${String(min)}${unit}`);
    else if (max !== undefined) out.push(`≤ ${String(max)}${unit}`);
  };
  range(schema.minimum, schema.maximum, '');
  range(schema.minLength, schema.maxLength, ' characters');
  range(schema.minItems, schema.maxItems, ' items');
  if (typeof schema.pattern === 'string') out.push(`pattern \`${schema.pattern}\``);
  if (schema.default !== undefined) out.push(`default \`${JSON.stringify(schema.default)}\``);
  if (Array.isArray(schema.examples) && schema.examples.length > 0) out.push(`e.g. \`${String(schema.examples[0])}\``);
  return out;
}

function describe(schema: JsonSchema): string {
  const constraints = constraintsOf(schema);
  const variants = ((schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined) ?? [];
  for (const v of variants) constraints.push(...constraintsOf(v));
  const text = typeof schema.description === 'string' ? schema.description : '';
  return [text, constraints.length > 0 ? `(${constraints.join('; ')})` : ''].filter(Boolean).join(' ');
}

/** One row per field of an object schema; inline nested objects get dotted rows of their own. */
function fieldRows(schema: JsonSchema, prefix = ''): Row[] {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  const rows: Row[] = [];
  for (const [key, property] of Object.entries(properties)) {
    const name = `${prefix}${key}`;
    rows.push([`\`${name}\``, typeOf(property), required.has(key) ? 'yes' : 'no', describe(property)]);
    const inline = (((property.anyOf ?? property.oneOf) as JsonSchema[] | undefined) ?? [property]).find((v) => v.type === 'object' && v.properties);
    if (inline) rows.push(...fieldRows(inline, `${name}.`));
    const items = property.items as JsonSchema | undefined;
    if (items && items.type === 'object' && items.properties) rows.push(...fieldRows(items, `${name}[].`));
  }
  return rows;
}

function fieldTable(schema: JsonSchema): string {
  const rows = fieldRows(schema);
  return rows.length > 0 ? table(['Field', 'Type', 'Required', 'Description'], rows) : '';
}

function parameterTable(parameters: JsonSchema[]): string {
  return table(
    ['Name', 'In', 'Type', 'Required', 'Description'],
    parameters.map((p) => [`\`${String(p.name)}\``, String(p.in), typeOf(p.schema as JsonSchema), p.required ? 'yes' : 'no', describe({ ...(p.schema as JsonSchema), description: p.description })]),
  );
}

function routesOf(role: Role): string[] {
  return ROUTE_LIST.filter(({ route }) => route.access !== 'public' && (route.access === 'authenticated' || PERMISSIONS[role].includes(route.access))).map(({ route }) =>
    `\`${route.method.toUpperCase()} ${openApiPath(route.path)}\``,
  );
}

function endpointSection(params: { operationId: string; route: RouteDef; operation: JsonSchema; schemas: Record<string, JsonSchema> }): string {
  const { route, operation, schemas } = params;
  const lines: string[] = [`### \`${route.method.toUpperCase()} ${openApiPath(route.path)}\``, '', `${route.summary}.`, '', `**Who may call:** ${accessOf(route.access).words}.`];
  if (route.description) lines.push('', route.description);
  const parameters = (operation.parameters ?? []) as JsonSchema[];
  if (parameters.length > 0) lines.push('', '**Parameters**', '', parameterTable(parameters));
  const requestBody = operation.requestBody as JsonSchema | undefined;
  if (requestBody) {
    const content = requestBody.content as Record<string, JsonSchema>;
    const types = Object.keys(content);
    lines.push('', `**Body** (${types.map((t) => `\`${t}\``).join(', ')}${requestBody.required ? '' : ', optional'})${requestBody.description ? `: ${String(requestBody.description)}` : ''}`);
    const json = content['application/json'];
    if (json) {
      const schema = json.schema as JsonSchema;
      const name = refName(schema);
      const resolved = name ? schemas[name]! : schema;
      if (name) lines.push('', `Schema: [${name}](#${anchor(name)}).`);
      // A union (one variant per job type) reads best as the fields the route checks.
      const shown = resolved.properties || !route.body ? resolved : standaloneJsonSchema(route.body.schema);
      const fields = fieldTable(shown);
      if (fields) lines.push('', fields);
      const examples = json.examples as Record<string, { summary: string; value: unknown }> | undefined;
      const first = examples ? Object.values(examples)[0] : undefined;
      if (first) lines.push('', `Example (${first.summary}):`, '', '```json', JSON.stringify(first.value), '```');
    }
  }
  lines.push('', '**Responses**', '');
  const responses = operation.responses as Record<string, JsonSchema>;
  for (const [status, response] of Object.entries(route.responses)) {
    const content = (responses[status]?.content ?? {}) as Record<string, JsonSchema>;
    const json = content['application/json']?.schema as JsonSchema | undefined;
    const shape = 'json' in response && json ? `${typeOf(json)}. ` : 'raw' in response ? `${response.raw.map((t) => `\`${t}\``).join(', ')}. ` : '';
    lines.push(`- \`${status}\`: ${shape}${response.description}`);
  }
  const codes = errorCodesOf(route);
  if (codes.length > 0) {
    lines.push(
      '',
      '**Errors**',
      '',
      table(
        ['Status', 'Code', 'When'],
        codes.map((code) => [String(ERROR_CATALOG[code].status), `\`${code}\``, route.errors[code] || ERROR_CATALOG[code].description]),
      ),
    );
  }
  return lines.join('\n');
}

export function renderApiReference(): string {
  const doc = buildOpenApiDocument() as { paths: Record<string, Record<string, JsonSchema>>; components: { schemas: Record<string, JsonSchema> } };
  const { schemas } = doc.components;
  const out: string[] = [];
  out.push(
    `# ${API_TITLE} HTTP API reference`,
    '',
    '<!-- Generated by `npm run docs:api` from src/contract (the schemas that validate requests and describe answers). Do not edit: change the contract and regenerate; test/integration/contract.test.ts fails when this file is stale. -->',
    '',
    `${API_SUMMARY} The same description, machine-readable, is served at \`GET /openapi.json\` (OpenAPI 3.1) and browsable at \`GET /docs\`. How to run the processes is in the [README](../README.md), how to configure and operate them in [docs/operating.md](operating.md).`,
    '',
    '## Contents',
    '',
    '- [Conventions](#conventions)',
    '- [Authentication and roles](#authentication-and-roles)',
    '- [Errors](#errors)',
    '- [Job statuses](#job-statuses)',
    '- [Job types](#job-types)',
    ...Object.keys(TAGS)
      .filter((tag) => ROUTE_LIST.some((r) => r.route.tag === tag))
      .map((tag) => `- [Endpoints: ${tag}](#endpoints-${tag})`),
    '- [Schemas](#schemas)',
    '',
    '## Conventions',
    '',
    '- Request and response bodies are JSON (`Content-Type: application/json`, at most 1 MB) except asset and result file uploads and downloads, which are raw bytes (images; any file).',
    '- Dates are ISO-8601 strings; the service writes them in UTC with milliseconds (`2030-01-01T09:00:00.000Z`) and accepts any offset.',
    '- Unknown body fields are refused (422); unknown query parameters are ignored. Query values are strings: numbers are parsed, lists are comma-separated.',
    '- A route that takes no body (cancel, requeue, ...) accepts none, `{}`, or a body of another media type (ignored); a JSON body with any field is 422, malformed JSON 400, and such a request changes nothing. A route that takes a JSON body answers a body of another media type 415.',
    '- JSON values the service stores (payloads, results, checkpoints, error details), like every body and query, may not use object keys that start with `$`, contain `.` or NUL, or are `__proto__`, `constructor` or `prototype`, nor nest deeper than 32 levels: such a request is answered 422 `validation_error` naming the key (`payload_invalid` when the key is in the `payload` of a job; the batch routes answer it for that job or report alone). Nothing a client sends can then be read as a database operator.',
    '- Paginated listings take `page` (≥ 1) and `per_page` (1–100, default 20) and answer `{ meta: { page, per_page, total, total_pages }, data }`.',
    '',
    '## Authentication and roles',
    '',
    API_DESCRIPTION,
    '',
    'A token with a `tenant` claim sees only its tenant: its jobs, schedules, escrows and assets, and every listing and count, cover that tenant alone; another tenant\'s resource answers exactly as a missing one. Resources belong to the principal that created them, identified by (`sub`, `role`, `tenant`). Subjects starting with `schedule:` are reserved for the scheduler.',
    '',
    table(
      ['Role', 'Permissions', 'May call'],
      ROLES.map((role) => [`\`${role}\``, PERMISSIONS[role].map((p) => `\`${p}\``).join(', '), routesOf(role).join(', ')]),
    ),
    '',
    '`jobs:read` and `jobs:cancel` cover the jobs the caller created; `jobs:read-any` and `jobs:cancel-any` every job (of its tenant). `assets:read-any` lets workers read the assets they process. Missing, malformed, expired or wrongly signed tokens (including `alg: none`) are answered 401 `unauthenticated`; a valid token whose role lacks the permission 403 `permission_denied` — both before any body is read.',
    '',
    '## Errors',
    '',
    'Every error answer is `{ "error": { "code": string, "message": string, "details"?: [ { "field", "message" } ] } }` ([Error](#error)). No input a client can send is answered with a 5xx, and a 5xx body never carries a stack trace. The codes:',
    '',
    table(
      ['Code', 'Status', 'Meaning'],
      ERROR_CODES.map((code) => [`\`${code}\``, String(ERROR_CATALOG[code].status), ERROR_CATALOG[code].description]),
    ),
    '',
    '## Job statuses',
    '',
    `${jobStatus.description ?? ''}`,
    '',
    `In lifecycle order: ${JOB_STATUSES.map((s) => `\`${s}\``).join(', ')}. The job document is the [Job](#job) schema.`,
    '',
    '## Job types',
    '',
    'The registry is static, in code (src/jobs/job-types.ts). Payloads are strict: unknown fields and wrong types are refused (422 `payload_invalid`). `JOB_POLICY_OVERRIDES` (JSON) overrides policies per environment, e.g. `{"thumbnail.create":{"timeoutSeconds":5,"maxAttempts":2}}`; unknown types or fields stop start-up. A retry waits min(cap, base · 2^(attempt−1)) scaled by a random factor in [0.5, 1].',
    '',
    table(
      ['Type', 'Payload', 'maxAttempts', 'timeoutSeconds', 'concurrencyLimit', 'backoff base / cap (s)'],
      JOB_TYPE_SCHEMAS.map(({ name, payloadId }) => {
        const t = JOB_TYPES.find((type) => type.name === name)!;
        return [
          `\`${t.name}\``,
          `[${payloadId}](#${anchor(payloadId)})`,
          String(t.policy.maxAttempts),
          String(t.policy.timeoutSeconds),
          t.policy.concurrencyLimit === null ? '—' : String(t.policy.concurrencyLimit),
          `${t.policy.backoffBaseSeconds} / ${t.policy.backoffCapSeconds}`,
        ];
      }),
    ),
  );

  for (const [tag, description] of Object.entries(TAGS)) {
    const routes = ROUTE_LIST.filter((r) => r.route.tag === tag);
    if (routes.length === 0) continue;
    out.push('', `## Endpoints: ${tag}`, '', description);
    for (const { operationId, route } of routes) {
      const operation = doc.paths[openApiPath(route.path)]![route.method]!;
      out.push('', endpointSection({ operationId, route, operation, schemas }));
    }
  }

  out.push('', '## Schemas', '', 'The named shapes of requests and answers (components of the OpenAPI document).');
  for (const [name, schema] of Object.entries(schemas)) {
    out.push('', `### ${name}`);
    if (typeof schema.description === 'string') out.push('', schema.description);
    const fields = fieldTable(schema);
    if (fields) out.push('', fields);
    else out.push('', `${typeOf({ ...schema, description: undefined })}${constraintsOf(schema).length > 0 ? ` (${constraintsOf(schema).join('; ')})` : ''}`);
  }
  return `${out.join('\n')}\n`;
}

/** The `METHOD /path` of every endpoint section of the reference (for the drift test). */
export function documentedEndpoints(markdown: string): string[] {
  return [...markdown.matchAll(/^### `([A-Z]+) (\S+)`$/gm)].map((m) => `${m[1]} ${m[2]!.replace(/\{([^}]+)\}/g, ':$1')}`);
}

export { routeKey };
