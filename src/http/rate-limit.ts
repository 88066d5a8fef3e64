import type { Request, RequestHandler } from 'express';

import { RateLimitedError } from '../errors';
import { principalOf } from './request-context';

export interface TokenBucketsOptions {
  /** Sustained rate; also the bucket size, so a caller may spend a minute's allowance at once. */
  perMinute: number;
  /** Milliseconds clock, injected for tests. */
  now?: () => number;
  /** Above this many keys, idle (full) buckets are dropped; memory stays bounded. */
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export type TakeResult = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * One token bucket per key, in this process's memory: it holds up to `perMinute` tokens and refills
 * continuously at `perMinute` per minute; each request takes one. Per API instance, not shared:
 * with N instances behind a balancer a caller may get up to N times the rate.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly capacity: number;
  private readonly refillPerMs: number;
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(options: TokenBucketsOptions) {
    if (!Number.isInteger(options.perMinute) || options.perMinute < 1) {
      throw new RangeError(`rate limit: perMinute must be a whole number >= 1, got ${String(options.perMinute)}`);
    }
    this.capacity = options.perMinute;
    this.refillPerMs = options.perMinute / 60_000;
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Takes `cost` tokens (capped at the bucket size, so any request can pass once the bucket is full). */
  take(key: string, cost = 1): TakeResult {
    const now = this.now();
    const need = Math.min(Math.max(1, cost), this.capacity);
    const bucket = this.refill(this.buckets.get(key) ?? { tokens: this.capacity, updatedAt: now }, now);
    if (bucket.tokens >= need) {
      bucket.tokens -= need;
      this.buckets.set(key, bucket);
      if (this.buckets.size > this.maxKeys) this.dropIdle(now);
      return { allowed: true };
    }
    this.buckets.set(key, bucket);
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((need - bucket.tokens) / this.refillPerMs / 1000)) };
  }

  get size(): number {
    return this.buckets.size;
  }

  private refill(bucket: Bucket, now: number): Bucket {
    const elapsed = Math.max(0, now - bucket.updatedAt);
    return { tokens: Math.min(this.capacity, bucket.tokens + elapsed * this.refillPerMs), updatedAt: now };
  }

  /** A full bucket is the same as no bucket: forgetting it changes nothing for its caller. */
  private dropIdle(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (this.refill(bucket, now).tokens >= this.capacity) this.buckets.delete(key);
    }
  }
}

/**
 * Rate-limits the authenticated caller, keyed by its token (`role` + `sub`): 429 `rate_limited` with
 * Retry-After once its bucket is empty. Runs after authentication and the permission check.
 * `costOf` says how many tokens a request takes (default 1; a batch enqueue: one per job).
 */
export function rateLimit(buckets: TokenBuckets, costOf: (req: Request) => number = () => 1): RequestHandler {
  return (req, _res, next) => {
    const { role, sub } = principalOf(req);
    const taken = buckets.take(`${role}\u0000${sub}`, costOf(req));
    if (!taken.allowed) throw new RateLimitedError(taken.retryAfterSeconds);
    next();
  };
}
