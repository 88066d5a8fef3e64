import type { Server } from 'node:http';

import type { Express } from 'express';

/** Listens on a free port; returns the base URL and a close function. */
export async function listen(app: Express): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('server has no address');
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A minimal HTTP worker client over real sockets, for races. */
export class HttpWorker {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    readonly workerId: string,
  ) {}

  async lease(params: { limit: number; type?: string }): Promise<{ jobId: string; leaseId: string; type: string; attempt: number }[]> {
    const query = new URLSearchParams({ limit: String(params.limit), ...(params.type ? { type: params.type } : {}) });
    const res = await fetch(`${this.baseUrl}/jobs/lease?${query.toString()}`, { headers: this.headers() });
    if (res.status !== 200) throw new Error(`lease answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { jobs: { jobId: string; leaseId: string; type: string; attempt: number }[] }).jobs;
  }

  async report(jobId: string, action: 'heartbeat' | 'succeed' | 'fail', body: object): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.baseUrl}/jobs/${jobId}/${action}`, {
      method: 'POST',
      headers: { ...this.headers(), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  private headers(): Record<string, string> {
    return { Authorization: `Bearer ${this.token}`, 'X-Worker-Id': this.workerId };
  }
}
