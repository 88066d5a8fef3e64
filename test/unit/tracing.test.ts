import { noTracing, startTracing, tracingRequested } from '../../src/tracing/tracing';

describe('tracing configuration (the standard OTEL_* variables only)', () => {
  it('is requested by an OTLP endpoint, unless the SDK or the traces exporter is switched off', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'x' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
  });

  it('without an endpoint is the no-op tracing', async () => {
    expect(await startTracing({ env: {}, serviceName: 'x' })).toBe(noTracing);
    expect(noTracing.currentTraceparent()).toBeNull();
    expect(await noTracing.withSpan('x', {}, async () => 42)).toBe(42);
  });

  it('refuses a protocol it cannot speak, a bad endpoint or bad headers, naming the variable', async () => {
    await expect(startTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, serviceName: 'x' })).rejects.toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
    await expect(startTracing({ env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }, serviceName: 'x' })).rejects.toThrow(/OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/);
    await expect(startTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_HEADERS: 'nokey' }, serviceName: 'x' })).rejects.toThrow(/OTEL_EXPORTER_OTLP_HEADERS/);
  });
});
