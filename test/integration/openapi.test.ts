import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Express } from 'express';
import request from 'supertest';

import { buildOpenApiDocument } from '../../src/contract/openapi';
import { buildTestApp } from '../helpers/app';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { enqueueJob, leaseJobs, report, thumbnailPayload } from '../helpers/jobs';
import { bearer } from '../helpers/tokens';
import { OPENAPI_31_STRUCTURE } from './openapi-meta-schema';

type JsonObject = Record<string, unknown>;

const db = useTestDatabase();
const clock = new TestClock();
let app: Express;
beforeAll(() => {
  app = buildTestApp(db, { clock, reclaimIntervalMs: 0 });
});

const doc = buildOpenApiDocument() as JsonObject;
const paths = doc.paths as Record<string, Record<string, JsonObject>>;
const components = doc.components as Record<string, Record<string, JsonObject>>;
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// ---- Express 5 route table -------------------------------------------------------------------

interface LayerLike {
  route?: { path: unknown; methods: Record<string, boolean | undefined> };
  handle?: { stack?: unknown };
  rawPath?: unknown;
}

/** Every `METHOD /path` the app routes, walking nested routers; `:param` becomes `{param}`. */
function listRoutes(stack: readonly LayerLike[], prefix = ''): string[] {
  const routes: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const { path } = layer.route;
      if (typeof path !== 'string') throw new Error(`route with a non-string path: ${String(path)}`);
      if (/[*?(){}]/.test(path)) throw new Error(`route ${path} uses a pattern this test cannot map to OpenAPI`);
      const openApiPath = `${prefix}${path}`.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      for (const [method, enabled] of Object.entries(layer.route.methods)) {
        if (enabled && method !== '_all') routes.push(`${method.toUpperCase()} ${openApiPath}`);
      }
    } else if (Array.isArray(layer.handle?.stack)) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      routes.push(...listRoutes(layer.handle.stack as LayerLike[], `${prefix}${mount}`));
    }
  }
  return routes;
}

function documentedRoutes(): string[] {
  return Object.entries(paths).flatMap(([path, item]) => Object.keys(item).filter((k) => HTTP_METHODS.includes(k)).map((m) => `${m.toUpperCase()} ${path}`));
}

// ---- Ajv over the document's schemas ---------------------------------------------------------

function newAjv(options: { strictRequired?: boolean } = {}): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true, ...options });
  addFormats(ajv);
  // OpenAPI's own Schema Object keywords (annotations for JSON Schema validators).
  ajv.addKeyword({ keyword: 'discriminator' });
  return ajv;
}

/** Rewrites `#/components/schemas/X` to `X.json`, so each component is its own resolvable schema. */
function relink(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(relink);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', '') + '.json' : relink(v)]),
  );
}

const schemaAjv = newAjv();
for (const [name, schema] of Object.entries(components.schemas!)) schemaAjv.addSchema(relink(schema) as JsonObject, `${name}.json`);

function resolve(value: JsonObject): JsonObject {
  const target = value.$ref;
  if (typeof target !== 'string') return value;
  const [, section, name] = /^#\/components\/([^/]+)\/([^/]+)$/.exec(target) ?? [];
  const found = section && name ? components[section]?.[name] : undefined;
  if (!found) throw new Error(`unresolved $ref ${target}`);
  return found;
}

const validators = new Map<string, ValidateFunction>();

/** Checks a real response against the schema the document gives for its method, path and status. */
function expectDocumented(method: string, path: string, res: request.Response): void {
  const operation = paths[path]?.[method];
  if (!operation) throw new Error(`${method.toUpperCase()} ${path} is not documented`);
  const responses = operation.responses as Record<string, JsonObject>;
  const documented = responses[String(res.status)];
  if (!documented) throw new Error(`${method.toUpperCase()} ${path} answered ${res.status}, which the document does not list`);
  const content = resolve(documented).content as Record<string, { schema: JsonObject }> | undefined;
  const mediaType = String(res.headers['content-type'] ?? '').split(';')[0]!;
  const schema = content?.[mediaType]?.schema;
  if (!schema) throw new Error(`${method.toUpperCase()} ${path} ${res.status}: no schema for ${mediaType}`);
  const key = `${method} ${path} ${res.status}`;
  let validate = validators.get(key);
  if (!validate) {
    validate = schemaAjv.compile(relink(schema) as JsonObject);
    validators.set(key, validate);
  }
  if (!validate(res.body)) {
    throw new Error(`${key}: body does not match the document: ${schemaAjv.errorsText(validate.errors)}\n${JSON.stringify(res.body)}`);
  }
}

// ---- Tests -----------------------------------------------------------------------------------

describe('the OpenAPI document', () => {
  it('describes exactly the routes the app serves', () => {
    const router = (app as unknown as { router: { stack: LayerLike[] } }).router;
    const served = [...new Set(listRoutes(router.stack))].sort();
    const documented = documentedRoutes().sort();
    expect(served.filter((r) => !documented.includes(r))).toEqual([]);
    expect(documented.filter((r) => !served.includes(r))).toEqual([]);
    expect(served).toEqual(expect.arrayContaining(['GET /admin/jobs/queue', 'POST /assets/{assetId}', 'GET /escrows/{escrowId}', 'GET /auth/whoami', 'GET /metrics']));
    expect(served.length).toBeGreaterThanOrEqual(24);
  });

  it('validates against the OpenAPI 3.1 structure', () => {
    // The structure names required fields inside if/then and oneOf branches, as the spec's own schema does.
    const ajv = newAjv({ strictRequired: false });
    const validate = ajv.compile(OPENAPI_31_STRUCTURE);
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
  });

  it('has schemas that are valid JSON Schema 2020-12, refs that resolve, and consistent operations', () => {
    // Compiling every component schema in strict mode rejects unknown keywords and dangling refs.
    for (const name of Object.keys(components.schemas!)) expect(() => schemaAjv.getSchema(`${name}.json`)).not.toThrow();
    const json = JSON.stringify(doc);
    for (const [, target] of json.matchAll(/"\$ref":"([^"]+)"/g)) expect(() => resolve({ $ref: target })).not.toThrow();

    const operationIds = new Set<string>();
    for (const [path, item] of Object.entries(paths)) {
      const placeholders = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const [method, operation] of Object.entries(item)) {
        const id = operation.operationId as string;
        expect(operationIds.has(id)).toBe(false);
        operationIds.add(id);
        const params = ((operation.parameters ?? []) as JsonObject[]).map(resolve);
        const pathParams = params.filter((p) => p.in === 'path').map((p) => p.name).sort();
        expect({ op: `${method} ${path}`, pathParams }).toEqual({ op: `${method} ${path}`, pathParams: placeholders });
        // Every authenticated operation documents 401; public ones say `security: []`.
        const responses = operation.responses as JsonObject;
        if (operation.security === undefined) expect({ op: `${method} ${path}`, has401: '401' in responses }).toEqual({ op: `${method} ${path}`, has401: true });
      }
    }
  });

  it.each([
    ['a missing info.version', (d: JsonObject) => delete (d.info as JsonObject).version],
    ['a response without a description', (d: JsonObject) => delete (resolve((d.components as JsonObject).responses as JsonObject) as Record<string, JsonObject>).Unauthenticated!.description],
    ['an unknown operation field', (d: JsonObject) => ((d.paths as Record<string, Record<string, JsonObject>>)['/healthz']!.get!.returns = 'ok')],
    ['a path parameter that is not required', (d: JsonObject) => (((d.paths as Record<string, Record<string, JsonObject>>)['/jobs/{jobId}']!.get!.parameters as JsonObject[])[0]!.required = false)],
    ['an openapi version other than 3.1', (d: JsonObject) => (d.openapi = '3.0.3')],
  ])('the structure check rejects %s', (_name, mutate) => {
    const broken = buildOpenApiDocument() as JsonObject;
    mutate(broken);
    const validate = newAjv({ strictRequired: false }).compile(OPENAPI_31_STRUCTURE);
    expect(validate(broken)).toBe(false);
  });

  it('is served at /openapi.json without a token', async () => {
    const res = await request(app).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual(doc);
  });
});

describe('responses match the document', () => {
  it('for the job lifecycle, the admin API and errors', async () => {
    const admin = bearer('admin');
    const enqueued = await request(app).post('/jobs').set(bearer('service')).send({ type: 'thumbnail.create', payload: thumbnailPayload() });
    expectDocumented('post', '/jobs', enqueued);
    const jobId = enqueued.body.jobId as string;

    const lease = await request(app).get('/jobs/lease').set(bearer('worker')).set('X-Worker-Id', 'worker-a');
    expectDocumented('get', '/jobs/lease', lease);
    const leaseId = lease.body.jobs[0].leaseId as string;
    expectDocumented('post', '/jobs/{jobId}/heartbeat', await report(app, jobId, 'heartbeat', { leaseId, progress: 10 }));
    expectDocumented('post', '/jobs/{jobId}/fail', await report(app, jobId, 'fail', { leaseId, error: { message: 'no', retryable: false } }));
    expectDocumented('get', '/jobs/{jobId}', await request(app).get(`/jobs/${jobId}`).set(admin));
    expectDocumented('post', '/admin/jobs/{jobId}/requeue', await request(app).post(`/admin/jobs/${jobId}/requeue`).set(admin));
    const [again] = await leaseJobs(app);
    expectDocumented('post', '/jobs/{jobId}/succeed', await report(app, jobId, 'succeed', { leaseId: again!.leaseId, durationMs: 12 }));
    const other = await enqueueJob(app, { type: 'payout.execute', payload: { batchId: 'b', escrowId: 'e' } });
    expectDocumented('post', '/jobs/{jobId}/cancel', await request(app).post(`/jobs/${other}/cancel`).set(admin));

    expectDocumented('get', '/admin/jobs/queue', await request(app).get('/admin/jobs/queue?per_page=5').set(admin));
    expectDocumented('get', '/admin/jobs/stats', await request(app).get('/admin/jobs/stats').set(admin));
    expectDocumented('get', '/admin/jobs/throughput', await request(app).get('/admin/jobs/throughput').set(admin));
    expectDocumented('get', '/auth/whoami', await request(app).get('/auth/whoami').set(admin));
    expectDocumented('get', '/healthz', await request(app).get('/healthz'));
    expectDocumented('get', '/readyz', await request(app).get('/readyz'));

    // Errors: each status the document lists, with the Error schema.
    expectDocumented('get', '/admin/jobs/stats', await request(app).get('/admin/jobs/stats'));
    expectDocumented('get', '/admin/jobs/stats', await request(app).get('/admin/jobs/stats').set(bearer('user')));
    expectDocumented('get', '/admin/jobs/queue', await request(app).get('/admin/jobs/queue?page=0').set(admin));
    expectDocumented('post', '/admin/jobs/{jobId}/requeue', await request(app).post(`/admin/jobs/${jobId}/requeue`).set(admin));
    expectDocumented('post', '/admin/jobs/{jobId}/requeue', await request(app).post('/admin/jobs/job_000000000000000000000000/requeue').set(admin));
    expectDocumented('post', '/jobs', await request(app).post('/jobs').set(bearer('service')).send({ type: 'nope', payload: {} }));
    expectDocumented('post', '/jobs', await request(app).post('/jobs').set(bearer('service')).send({ type: 'thumbnail.create', payload: { assetId: 1 } }));
    expectDocumented('post', '/jobs', await request(app).post('/jobs').set(bearer('service')).set('Content-Type', 'application/json').send('{"type":'));
    expectDocumented('post', '/jobs/{jobId}/succeed', await report(app, jobId, 'succeed', { leaseId: again!.leaseId }));
  });
});

describe('request body examples (what /docs\' "Try it out" sends)', () => {
  const withExamples = Object.entries(paths).flatMap(([path, item]) =>
    Object.entries(item).flatMap(([method, operation]) => {
      const media = ((operation.requestBody as JsonObject | undefined)?.content as Record<string, JsonObject> | undefined)?.['application/json'];
      const examples = (media?.examples ?? {}) as Record<string, { value: unknown }>;
      return Object.entries(examples).map(([name, example]) => ({ method, path, name, value: example.value, schema: media!.schema as JsonObject }));
    }),
  );

  it('exist for enqueueing, batches and schedules, and each matches its schema', () => {
    expect(withExamples.filter((e) => e.method === 'post' && e.path === '/jobs').map((e) => e.name)).toEqual(expect.arrayContaining(['noop', 'thumbnail', 'payout']));
    for (const path of ['/jobs/batch', '/admin/schedules', '/admin/schedules/{name}']) expect(withExamples.some((e) => e.path === path)).toBe(true);
    for (const example of withExamples) {
      const validate = schemaAjv.compile(relink(example.schema) as JsonObject);
      expect({ example: `${example.method} ${example.path} ${example.name}`, errors: validate(example.value) ? null : schemaAjv.errorsText(validate.errors) }).toEqual({
        example: `${example.method} ${example.path} ${example.name}`,
        errors: null,
      });
    }
  });

  it('are accepted by the API as they stand', async () => {
    const admin = bearer('admin');
    for (const example of withExamples.filter((e) => e.path === '/jobs')) {
      const res = await request(app).post('/jobs').set(bearer('service')).send(example.value as object);
      expect({ example: example.name, status: res.status }).toEqual({ example: example.name, status: 201 });
    }
    for (const example of withExamples.filter((e) => e.path === '/jobs/batch')) {
      const res = await request(app).post('/jobs/batch').set(bearer('service')).send(example.value as object);
      expect(res.status).toBe(200);
      expect(res.body.rejected).toBe(0);
    }
    const [create] = withExamples.filter((e) => e.path === '/admin/schedules');
    const created = await request(app).post('/admin/schedules').set(admin).send(create!.value as object);
    expect(created.status).toBe(201);
    for (const example of withExamples.filter((e) => e.path === '/admin/schedules/{name}')) {
      const res = await request(app).patch(`/admin/schedules/${created.body.name as string}`).set(admin).send(example.value as object);
      expect({ example: example.name, status: res.status }).toEqual({ example: example.name, status: 200 });
    }
  });
});

describe('interactive docs at /docs', () => {
  it('serves Swagger UI from this service, pointed at /openapi.json, without a token', async () => {
    const page = await request(app).get('/docs');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(3);
    for (const asset of assets) {
      expect(asset.startsWith('/docs/assets/')).toBe(true);
      const res = await request(app).get(asset);
      expect({ asset, status: res.status }).toEqual({ asset, status: 200 });
    }
    const init = await request(app).get('/docs/assets/init.js');
    expect(init.text).toContain("url: '/openapi.json'");
    expect(init.text).toContain('validatorUrl: null');
    expect((await request(app).get('/docs/assets/package.json')).status).toBe(404);
  });
});
