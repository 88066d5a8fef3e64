import { createHmac } from 'node:crypto';

import { coerceError } from '../errors';
import type { Logger } from '../logger';
import type { Clock, RandomSource } from '../model/clock';
import { randomHex } from '../random-hex';
import type { CallbackRepository, TakenCallback } from '../storage/callback-repository';
import type { CallbackSender } from './callback-sender';

/** After attempt n fails, the next comes this long after (×0.8–1 jitter); past the last, the delivery has failed. */
export const DEFAULT_CALLBACK_RETRY_DELAYS_MS: readonly number[] = [5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000];

export type CallbackOutcome = 'delivered' | 'retry' | 'failed';

/** The job events after which a callback may be due. */
type FinishingEvent = 'succeeded' | 'failed' | 'dead_lettered' | 'cancelled';

export interface CallbackDispatcherDeps {
  store: Pick<CallbackRepository, 'findDue' | 'take' | 'recordDelivered' | 'recordFailed'>;
  send: CallbackSender;
  /** CALLBACK_SECRET: the HMAC key of X-Jobs-Signature. */
  secret: string;
  clock: Clock;
  random: RandomSource;
  logger: Logger;
  /**
   * Local finishing events start a look at once (another instance's finishes are found by the poll).
   * The queue's JobEvents fits; only this much of it is needed here.
   */
  events?: { on(event: FinishingEvent, listener: () => void): () => void };
  retryDelaysMs?: readonly number[];
  /** An attempt's lease: longer than its time bound, so a crashed instance's attempt is retried after it. */
  leaseMs?: number;
  /** How soon the poll looks again after finding work, and the longest it waits while idle. */
  pollIntervalMs?: number;
  maxPollIntervalMs?: number;
  /** Attempts in flight at once in this instance. */
  concurrency?: number;
  onOutcome?: (outcome: CallbackOutcome) => void;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function callbackSignature(secret: string, unixSeconds: number, body: string): string {
  return `t=${unixSeconds},v1=${createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')}`;
}

/**
 * Delivers callbacks from the API processes (no worker needed). Every instance runs one: each looks
 * for due deliveries (at once when a job finishes here, else on a poll that backs off from 1 s to 4 s
 * while idle, so a finish anywhere is attempted within 5 s), takes each attempt under a lease (one
 * instance per attempt), POSTs it signed, and records the outcome. Attempts run beside requests and
 * workers: a receiver that never answers holds one of `concurrency` slots for the 10 s bound, nothing else.
 */
export class CallbackDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;
  private running = false;
  private delayMs: number;
  private readonly inFlight = new Map<string, { done: Promise<void>; abort: AbortController }>();
  private readonly offs: (() => void)[] = [];

  constructor(private readonly deps: CallbackDispatcherDeps) {
    this.delayMs = deps.pollIntervalMs ?? 1_000;
  }

  /** Attempts in flight now. */
  get busy(): number {
    return this.inFlight.size;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.deps.events) {
      const wake = (): void => this.wake();
      for (const event of ['succeeded', 'failed', 'dead_lettered', 'cancelled'] as const) this.offs.push(this.deps.events.on(event, wake));
    }
    this.wake();
  }

  /** Stops looking; attempts in flight are cut and recorded as failed (retried soon, by any instance). */
  async stop(): Promise<void> {
    this.running = false;
    for (const off of this.offs.splice(0)) off();
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.ticking?.catch(() => undefined);
    for (const attempt of this.inFlight.values()) attempt.abort.abort();
    await Promise.all([...this.inFlight.values()].map((a) => a.done));
  }

  /** One look now (tests; also what a local finish triggers). Resolves when the attempts it started are done. */
  async runOnce(): Promise<void> {
    await this.tick();
    await Promise.all([...this.inFlight.values()].map((a) => a.done));
  }

  private wake(): void {
    if (!this.running) return;
    this.delayMs = this.deps.pollIntervalMs ?? 1_000;
    if (this.ticking) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    void this.loop();
  }

  private async loop(): Promise<void> {
    let found = false;
    do {
      this.again = false;
      this.ticking = this.tick().then((n) => {
        if (n > 0) found = true;
      });
      try {
        await this.ticking;
      } catch (rawErr) {
        this.deps.logger.warn({ err: coerceError(rawErr) }, 'callback look failed');
      } finally {
        this.ticking = undefined;
      }
    } while (this.again && this.running);
    if (!this.running) return;
    const base = this.deps.pollIntervalMs ?? 1_000;
    this.delayMs = found ? base : Math.min(this.deps.maxPollIntervalMs ?? 4_000, this.delayMs * 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.loop();
    }, found ? base : this.delayMs);
    this.timer.unref();
  }

  /** Takes and starts the due attempts this instance has room for; returns how many it started. */
  private async tick(): Promise<number> {
    const room = (this.deps.concurrency ?? 16) - this.inFlight.size;
    if (room <= 0) return 0;
    const now = this.deps.clock.now();
    const due = await this.deps.store.findDue({ now, limit: room });
    let started = 0;
    for (const candidate of due) {
      if (this.inFlight.has(candidate.jobId)) continue;
      const leaseId = `cbl_${randomHex(8)}`;
      const taken = await this.deps.store.take({
        due: candidate,
        leaseId,
        leaseUntil: new Date(now.getTime() + (this.deps.leaseMs ?? 30_000)),
        newDeliveryId: `dlv_${randomHex(12)}`,
      });
      if (!taken) continue;
      const abort = new AbortController();
      const done = this.attempt(taken, abort.signal)
        .catch((rawErr: unknown) => this.deps.logger.warn({ err: coerceError(rawErr), jobId: taken.jobId }, 'callback attempt could not be recorded'))
        .finally(() => {
          this.inFlight.delete(taken.jobId);
          // A slot is free: more may be waiting.
          if (this.running && due.length >= room) this.wake();
        });
      this.inFlight.set(taken.jobId, { done, abort });
      started += 1;
    }
    return started;
  }

  private async attempt(taken: TakenCallback, signal: AbortSignal): Promise<void> {
    const { clock, store } = this.deps;
    const body = JSON.stringify(taken.payload);
    const t = Math.floor(clock.now().getTime() / 1000);
    const outcome = await this.deps.send({
      url: taken.url,
      body,
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'jobs-callbacks/1',
        'X-Jobs-Delivery': taken.deliveryId,
        'X-Jobs-Signature': callbackSignature(this.deps.secret, t, body),
      },
      signal,
    });
    const now = clock.now();
    const log = this.deps.logger.child({ jobId: taken.jobId, deliveryId: taken.deliveryId, attempt: taken.attempt });
    if (outcome.ok) {
      if (await store.recordDelivered({ jobId: taken.jobId, leaseId: taken.leaseId, now })) this.deps.onOutcome?.('delivered');
      log.debug({ status: outcome.status }, 'callback delivered');
      return;
    }
    const delays = this.deps.retryDelaysMs ?? DEFAULT_CALLBACK_RETRY_DELAYS_MS;
    const delay = delays[taken.attempt - 1];
    // A stopped attempt is retried at once by whichever instance is up.
    const retryAt = delay === undefined ? null : new Date(now.getTime() + (signal.aborted ? 0 : Math.round(delay * (0.8 + 0.2 * this.deps.random()))));
    if (await store.recordFailed({ jobId: taken.jobId, leaseId: taken.leaseId, error: outcome.error, retryAt })) this.deps.onOutcome?.(retryAt ? 'retry' : 'failed');
    log.info({ error: outcome.error, retryAt }, retryAt ? 'callback attempt failed; retrying' : 'callback failed for good');
  }
}
