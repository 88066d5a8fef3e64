/**
 * Tracing as the service uses it, without naming OpenTelemetry: the API's request spans, the trace
 * context stored on a job at enqueue, the worker's `job.run` span in that trace, and the client calls
 * in between. `startTracing` loads the OpenTelemetry SDK (src/tracing/otel.ts, a dynamic import) only
 * when the standard OTEL_* variables ask for an exporter; otherwise everything here is a no-op and
 * nothing of OpenTelemetry is loaded.
 */

import type { SpanHandle, Tracing } from './span';

export type { SpanAttributes, SpanHandle, SpanKindName, Tracing } from './span';

const noSpan: SpanHandle = { setAttributes: () => undefined, updateName: () => undefined, fail: () => undefined, end: () => undefined };

/** Tracing off: every call does nothing (and costs a function call). */
export const noTracing: Tracing = {
  enabled: false,
  startServerSpan: () => ({ span: noSpan, run: (fn) => fn() }),
  currentTraceparent: () => null,
  withSpan: (_name, _params, fn) => fn(noSpan),
  injectHeaders: () => undefined,
  shutdown: async () => undefined,
};

type Env = Record<string, string | undefined>;

/** Whether the standard variables ask for traces to be exported (an OTLP endpoint, and not switched off). */
export function tracingRequested(env: Env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER ?? 'otlp').toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Tracing for one process, from the standard OTEL_* variables only (OTEL_EXPORTER_OTLP_ENDPOINT or
 * _TRACES_ENDPOINT, _PROTOCOL http/protobuf or http/json, _HEADERS, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER). Unset: `noTracing`, and the SDK
 * is never loaded. Throws an Error naming the variable when one is malformed.
 */
export async function startTracing(params: { env: Env; serviceName: string }): Promise<Tracing> {
  if (!tracingRequested(params.env)) return noTracing;
  const { createOtelTracing } = await import('./otel');
  return createOtelTracing(params);
}
