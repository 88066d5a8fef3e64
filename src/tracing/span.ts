/** What the service needs of tracing, without naming OpenTelemetry (src/tracing/otel.ts implements it). */

export type SpanAttributes = Record<string, string | number | boolean>;

export interface SpanHandle {
  setAttributes(attributes: SpanAttributes): void;
  updateName(name: string): void;
  /** Marks the span failed (with the error when there is one). */
  fail(error?: unknown): void;
  end(): void;
}

export type SpanKindName = 'internal' | 'server' | 'client' | 'consumer';

export interface Tracing {
  readonly enabled: boolean;
  /** A server span for an incoming request, continuing a `traceparent` header when there is one; `run` runs the handling inside it. */
  startServerSpan(params: { name: string; headers: Record<string, string | string[] | undefined>; attributes?: SpanAttributes }): { span: SpanHandle; run<T>(fn: () => T): T };
  /** The W3C traceparent of the current context (the request being handled), or null. */
  currentTraceparent(): string | null;
  /**
   * Runs `fn` in a new span: a child of `parent` (a stored traceparent; null: a new trace), or of the
   * current context when `parent` is undefined. The span ends when `fn` settles; a throw fails it.
   */
  withSpan<T>(name: string, params: { parent?: string | null; kind?: SpanKindName; attributes?: SpanAttributes }, fn: (span: SpanHandle) => Promise<T>): Promise<T>;
  /** Adds the current context's traceparent (and tracestate) to outgoing headers. */
  injectHeaders(headers: Record<string, string>): void;
  /** Sends what is buffered and stops. */
  shutdown(): Promise<void>;
}
