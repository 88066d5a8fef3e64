import http from 'node:http';

/**
 * A small JSON client on node:http with keep-alive sockets. The load generator shares the machine
 * with the services it measures, so it uses the cheapest client at hand rather than fetch.
 */
export class JsonHttpClient {
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(
    baseUrl: string,
    private readonly token: string,
    maxSockets: number,
  ) {
    this.url = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = { Authorization: `Bearer ${this.token}`, Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        { hostname: this.url.hostname, port: this.url.port, path, method, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve({ status: res.statusCode ?? 0, body: (text.length > 0 ? JSON.parse(text) : undefined) as T });
            } catch {
              // Non-JSON answers (/metrics is text) come back as the raw text.
              resolve({ status: res.statusCode ?? 0, body: text as T });
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Runs `total` calls of `call(i)` with at most `concurrency` in flight (closed loop: each client
 * sends its next request when the previous one answered). Returns each call's latency in ms.
 */
export async function runClosedLoop(params: { total: number; concurrency: number; call: (i: number) => Promise<void> }): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const client = async (): Promise<void> => {
    while (next < params.total) {
      const i = next;
      next += 1;
      const started = performance.now();
      await params.call(i);
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: Math.min(params.concurrency, params.total) }, client));
  return latencies;
}

/**
 * The sum of the samples of one metric in Prometheus text whose labels include every pair given,
 * e.g. sumMetric(text, 'jobs_succeeded_total', { type: 'noop' }).
 */
export function sumMetric(metricsText: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const close = line.lastIndexOf('}');
    const labelText = close > 0 ? line.slice(name.length + 1, close) : '';
    if (!wanted.every((pair) => labelText.split(',').includes(pair))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
