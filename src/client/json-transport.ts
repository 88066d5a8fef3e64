/**
 * What JobsClient's `jsonTransport` option takes: a way to send the calls that have a JSON body or
 * none and read their answers whole, instead of fetch (the worker runtime's is on node:http,
 * src/worker/node-http-transport.ts).
 */

/** One request with a JSON (or no) body. */
export interface JsonRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Its whole answer. */
export interface TransportAnswer {
  status: number;
  headers: { get(name: string): string | null };
  body: Uint8Array;
}

/** Sends JSON requests and reads their answers whole (the client's calls that stream nothing). */
export type JsonTransport = (request: JsonRequest) => Promise<TransportAnswer>;
