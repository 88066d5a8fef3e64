import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';

import { bareHostname, type CallbackTargets } from './callback-targets';

/** The outcome of one attempt: a 2xx, or why not. */
export type SendOutcome = { ok: true; status: number } | { ok: false; error: string; status?: number };

export interface CallbackRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
}

export type CallbackSender = (request: CallbackRequest) => Promise<SendOutcome>;

/** Resolves a host name to every address it has (injected in tests). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

export interface CallbackSenderOptions {
  targets: CallbackTargets;
  /** The whole attempt (connect, send, answer) within this (10 s). */
  timeoutMs: number;
  /** At most this much of an answer is read (it is not used; only its status). */
  maxResponseBytes: number;
  resolve?: Resolver;
}

class RefusedAddress extends Error {}

/**
 * POSTs one callback attempt. The host is checked again (the list may have changed since the enqueue),
 * then resolved here, and the connection goes to an address that was checked (the lookup hook is the
 * one the socket uses, so a DNS answer cannot change between the check and the connect). Redirects
 * are never followed (a 3xx is a failed attempt); the attempt is bounded in time and in answer size.
 */
export function createCallbackSender(options: CallbackSenderOptions): CallbackSender {
  const resolve = options.resolve ?? systemResolver;
  return (request) =>
    new Promise<SendOutcome>((done) => {
      let settled = false;
      const finish = (outcome: SendOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
        done(outcome);
      };
      let url: URL;
      try {
        url = new URL(request.url);
      } catch {
        return finish({ ok: false, error: 'not a valid URL' });
      }
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !options.targets.allows(url)) {
        return finish({ ok: false, error: `host ${url.host} is not (or no longer) in CALLBACK_ALLOWED_HOSTS` });
      }
      const host = bareHostname(url);
      if (isIP(host) !== 0 && !options.targets.addressAllowed(url, host)) return finish({ ok: false, error: `address ${host} is not a public address` });

      const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
        resolve(hostname).then(
          (addresses) => {
            const refused = addresses.find((a) => !options.targets.addressAllowed(url, a.address));
            if (addresses.length === 0) return callback(new RefusedAddress(`${hostname} resolves to no address`), '', 0);
            if (refused) return callback(new RefusedAddress(`${hostname} resolves to ${refused.address}, which is not a public address`), '', 0);
            const wanted = lookupOptions.family === 4 || lookupOptions.family === 6 ? addresses.filter((a) => a.family === lookupOptions.family) : addresses;
            if (lookupOptions.all) return callback(null, wanted);
            const first = wanted[0] ?? addresses[0]!;
            return callback(null, first.address, first.family);
          },
          (err: unknown) => callback(err instanceof Error ? (err as NodeJS.ErrnoException) : new Error(String(err)), '', 0),
        );
      };

      const client = url.protocol === 'https:' ? https : http;
      const req = client.request(url, {
        method: 'POST',
        headers: { ...request.headers, 'Content-Length': String(Buffer.byteLength(request.body)) },
        agent: false,
        lookup,
      });
      const timer = setTimeout(() => {
        finish({ ok: false, error: `no answer within ${options.timeoutMs} ms` });
        req.destroy();
      }, options.timeoutMs);
      timer.unref();
      const onAbort = (): void => {
        finish({ ok: false, error: 'the attempt was stopped (the API shut down)' });
        req.destroy();
      };
      request.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => finish({ ok: false, error: err instanceof RefusedAddress ? err.message : `network error: ${err.message}` }));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          // The answer's body is not used: past the bound, stop reading it.
          if (read > options.maxResponseBytes) res.destroy();
        });
        const decide = (): void => {
          if (status >= 200 && status < 300) finish({ ok: true, status });
          else if (status >= 300 && status < 400) finish({ ok: false, status, error: `answered ${status} (redirects are not followed)` });
          else finish({ ok: false, status, error: `answered ${status}` });
          req.destroy();
        };
        res.on('end', decide);
        res.on('close', decide);
        res.on('error', decide);
      });
      req.end(request.body);
    });
}
