import type { Express } from 'express';
import type { Connection } from 'mongoose';

import { createApp } from '../../src/app';
import { connectDatabase, DRIVER_MONITORING_COMMANDS } from '../../src/storage/connection';
import { wireApi, wireServices, type ApiServices, type ApiWiringParams } from '../../src/wiring';
import { silentLogger } from './app';
import { testDatabaseUri, type TestDatabase } from './database';
import { listen } from './server';
import { TEST_JWT_SECRET, tokenFor } from './tokens';


/** One API instance as a process has it: its own connection to the test file's database, services, app and socket. */
export interface ApiInstance {
  connection: Connection;
  services: ApiServices;
  app: Express;
  baseUrl: string;
  /** Database commands this instance sent (`<command> <collection>`), monitoring left out. */
  commands: string[];
  close(): Promise<void>;
}

/**
 * Starts an API instance on a connection of its own, listening on a real socket: two of these on
 * one database are two API processes for every purpose that matters here (no shared memory, the
 * database between them).
 */
export async function startApiInstance(db: TestDatabase, overrides: Partial<ApiWiringParams> = {}): Promise<ApiInstance> {
  const connection = await connectDatabase({
    uri: testDatabaseUri(),
    dbName: db.dbName,
    timeoutMs: 5_000,
    writeConcern: 'majority',
    readPreference: 'primary',
    monitorCommands: true,
  });
  const commands: string[] = [];
  connection.getClient().on('commandStarted', (event) => {
    if (!DRIVER_MONITORING_COMMANDS.has(event.commandName)) commands.push(`${event.commandName} ${String(event.command[event.commandName])}`);
  });
  const params: ApiWiringParams = { connection, logger: silentLogger, jwtSecret: TEST_JWT_SECRET, readyTimeoutMs: 1_000, ...overrides };
  const services = wireServices(params);
  const app = createApp(wireApi(params, services));
  const server = await listen(app);
  return {
    connection,
    services,
    app,
    baseUrl: server.baseUrl,
    commands,
    close: async () => {
      services.jobs.close();
      await services.types?.stop();
      await server.close();
      await connection.close();
    },
  };
}

/** A JSON request over a real socket. */
export async function call(
  baseUrl: string,
  params: { method?: string; path: string; token: string; workerId?: string; body?: unknown },
): Promise<{ status: number; body: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const res = await fetch(`${baseUrl}${params.path}`, {
    method: params.method ?? 'GET',
    headers: {
      Authorization: `Bearer ${params.token}`,
      ...(params.workerId ? { 'X-Worker-Id': params.workerId } : {}),
      ...(params.body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    ...(params.body === undefined ? {} : { body: JSON.stringify(params.body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
}

export const serviceToken = (sub = 'service-1', tenant?: string): string => tokenFor('service', sub, tenant === undefined ? undefined : { tenant });
export const workerToken = tokenFor('worker', 'worker-1');
export const adminToken = tokenFor('admin', 'admin-1');

export interface LeasedOverWire {
  jobId: string;
  leaseId: string;
  type: string;
  attempt: number;
  checkpoint: unknown;
}

export async function leaseOver(baseUrl: string, params: { workerId: string; type?: string; limit?: number; wait?: number }): Promise<LeasedOverWire[]> {
  const query = new URLSearchParams({ limit: String(params.limit ?? 1), ...(params.type ? { type: params.type } : {}), ...(params.wait ? { wait: String(params.wait) } : {}) });
  const res = await call(baseUrl, { path: `/jobs/lease?${query.toString()}`, token: workerToken, workerId: params.workerId });
  if (res.status !== 200) throw new Error(`lease answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.jobs as LeasedOverWire[];
}
