import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';

import type { SpanAttributes, SpanHandle, SpanKindName, Tracing } from './span';

type Env = Record<string, string | undefined>;

const KINDS: Record<SpanKindName, SpanKind> = { internal: SpanKind.INTERNAL, server: SpanKind.SERVER, client: SpanKind.CLIENT, consumer: SpanKind.CONSUMER };

/** `k=v,k2=v2` (values URL-encoded), as OTEL_EXPORTER_OTLP_HEADERS carries them. */
function parseHeaders(raw: string | undefined, variable: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (raw ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`invalid configuration: ${variable} must be a comma list of key=value`);
    headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}

function exporterFrom(env: Env): SpanExporter {
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  const variable = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  // The signal endpoint is used as given; the base endpoint gets the traces path (the OTLP spec's rule).
  const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || `${(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').replace(/\/+$/, '')}/v1/traces`;
  try {
    new URL(url);
  } catch {
    throw new Error(`invalid configuration: ${env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'} must be an http(s) URL`);
  }
  const headers = {
    ...parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS, 'OTEL_EXPORTER_OTLP_HEADERS'),
    ...parseHeaders(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
  };
  const config = { url, headers };
  if (protocol === 'http/json') return new JsonExporter(config);
  if (protocol === 'http/protobuf') return new ProtobufExporter(config);
  throw new Error(`invalid configuration: ${variable} must be http/protobuf or http/json (grpc is not supported by this service)`);
}

function handle(span: Span): SpanHandle {
  return {
    setAttributes: (attributes) => void span.setAttributes(attributes),
    updateName: (name) => void span.updateName(name),
    fail: (error) => {
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, ...(error instanceof Error ? { message: error.message } : {}) });
    },
    end: () => span.end(),
  };
}

/** The OpenTelemetry SDK behind `Tracing`: W3C trace context, AsyncLocalStorage context, a batch OTLP/HTTP exporter. */
export function createOtelTracing(params: { env: Env; serviceName: string }): Tracing {
  const exporter = exporterFrom(params.env);
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': params.serviceName }))
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults.
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new TracerProvider({ resource, spanProcessors: [new BatchSpanProcessor({ exporter })] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  const tracer = provider.getTracer('jobs');

  const fromTraceparent = (traceparent: string | null): Context => (traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT);

  return {
    enabled: true,
    startServerSpan({ name, headers, attributes }) {
      const parent = propagation.extract(ROOT_CONTEXT, headers);
      const span = tracer.startSpan(name, { kind: SpanKind.SERVER, ...(attributes ? { attributes } : {}) }, parent);
      const active = trace.setSpan(parent, span);
      return { span: handle(span), run: (fn) => context.with(active, fn) };
    },
    currentTraceparent() {
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      return carrier.traceparent ?? null;
    },
    async withSpan(name, options, fn) {
      const parent = options.parent === undefined ? context.active() : fromTraceparent(options.parent);
      const span = tracer.startSpan(name, { kind: KINDS[options.kind ?? 'internal'], ...(options.attributes ? { attributes: options.attributes as SpanAttributes } : {}) }, parent);
      const h = handle(span);
      try {
        return await context.with(trace.setSpan(parent, span), () => fn(h));
      } catch (err) {
        h.fail(err);
        throw err;
      } finally {
        span.end();
      }
    },
    injectHeaders(headers) {
      propagation.inject(context.active(), headers);
    },
    shutdown: () => provider.shutdown(),
  };
}
