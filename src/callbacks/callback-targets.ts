import { BlockList, isIP } from 'node:net';

import { ValidationError } from '../errors';

/**
 * Where callbacks may go: CALLBACK_ALLOWED_HOSTS, a comma list of `host` (any port) or `host:port`
 * (IPv6 as `[::1]:8080`); empty turns callbacks off. A callbackUrl must be http(s), without
 * credentials, to a listed host (checked at enqueue: 422). At delivery the host is resolved again and
 * every address it resolves to must be public — not loopback, private, link-local, CGNAT, multicast or
 * reserved — unless the entry itself names that address: an IP literal (`127.0.0.1:9000`) or
 * `localhost` in the list is the explicit allowance for a receiver on such an address (tests, a
 * sidecar). A hostname never earns a private address by being listed, so DNS cannot turn an allowed
 * name into a request to an internal service.
 */

interface Entry {
  host: string;
  /** null: any port. */
  port: number | null;
}

const FORBIDDEN = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  FORBIDDEN.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['100::', 64],
] as const) {
  FORBIDDEN.addSubnet(net, prefix, 'ipv6');
}

/** Whether an address is loopback, private, link-local or otherwise not a public unicast address. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return FORBIDDEN.check(address, 'ipv4');
  if (family !== 6) return true;
  const lower = address.toLowerCase();
  // IPv4-mapped (::ffff:10.0.0.1) and IPv4-compatible forms are judged as the IPv4 address they carry.
  const mapped = /^::(ffff:)?(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return FORBIDDEN.check(mapped[2]!, 'ipv4');
  return FORBIDDEN.check(lower, 'ipv6');
}

function parseEntry(raw: string): Entry {
  const value = raw.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(value);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] === undefined ? null : portOf(bracketed[2], raw) };
  if (isIP(value) === 6) return { host: value, port: null };
  const plain = /^([a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value);
  if (!plain || plain[1]!.startsWith('.') || plain[1]!.endsWith('.') || plain[1]!.includes('..')) {
    throw new Error(`"${raw.trim()}" is not a host or host:port`);
  }
  return { host: plain[1]!, port: plain[2] === undefined ? null : portOf(plain[2], raw) };
}

function portOf(digits: string, raw: string): number {
  const port = Number(digits);
  if (port < 1 || port > 65_535) throw new Error(`"${raw.trim()}" has a port outside 1-65535`);
  return port;
}

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** The hostname as the URL carries it, without IPv6 brackets. */
export function bareHostname(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

export class CallbackTargets {
  private constructor(private readonly entries: readonly Entry[]) {}

  /** Parses CALLBACK_ALLOWED_HOSTS; throws an Error naming the bad entry. */
  static parse(list: string | undefined): CallbackTargets {
    const entries = (list ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map(parseEntry);
    return new CallbackTargets(entries);
  }

  /** Empty list: callbacks are off, and a callbackUrl is refused. */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The URL to store for a callbackUrl of an enqueue; 422 (field `callbackUrl`) when it may not be used. */
  check(raw: string, field = 'callbackUrl'): string {
    const refuse = (message: string): never => {
      throw new ValidationError('callbackUrl may not be used', [{ field, message }]);
    };
    if (!this.enabled) refuse('callbacks are off on this service (CALLBACK_ALLOWED_HOSTS is empty)');
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return refuse('must be an absolute http or https URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') refuse('must be an http or https URL');
    if (url.username !== '' || url.password !== '') refuse('must not carry credentials (receivers check the X-Jobs-Signature instead)');
    if (!this.allows(url)) refuse(`host ${url.host} is not in CALLBACK_ALLOWED_HOSTS`);
    return url.toString();
  }

  /** Whether the URL's host (and port) is listed. */
  allows(url: URL): boolean {
    const host = bareHostname(url);
    const port = url.port === '' ? defaultPort(url.protocol) : Number(url.port);
    return this.entries.some((e) => e.host === host && (e.port === null || e.port === port));
  }

  /**
   * Whether a delivery to `url` may connect to `address` (one its host resolved to): public addresses
   * always; a non-public one only when the listed entry names it (an IP literal, or localhost for loopback).
   */
  addressAllowed(url: URL, address: string): boolean {
    if (!isNonPublicAddress(address)) return true;
    const host = bareHostname(url);
    if (isIP(host) !== 0) return host === address.toLowerCase();
    return host === 'localhost' && isLoopback(address);
  }
}

function isLoopback(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return address.startsWith('127.');
  const lower = address.toLowerCase();
  return lower === '::1' || /^::ffff:127\./.test(lower);
}
