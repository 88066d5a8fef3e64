import { PermissionDeniedError } from '../errors';
import type { Clock } from '../model/clock';
import { JOB_STATUSES, type JobStatus } from '../model/job';
import type { JobPolicy, TypeRuntimeSettings } from '../model/job-type';
import type { Principal } from '../model/principal';
import { PeriodicTask } from '../periodic-task';
import type { JobQueryRepository } from '../storage/job-query-repository';
import type { TypeSettingsChange, TypeSettingsRepository } from '../storage/type-settings-repository';
import type { JobRegistry } from './registry';

export type { TypeSettingsChange } from '../storage/type-settings-repository';

/** A registered type as GET /admin/types shows it. */
export interface JobTypeView {
  type: string;
  policy: Readonly<JobPolicy>;
  paused: boolean;
  counts: Record<JobStatus, number>;
  /** The run-time settings stored for it. */
  overrides: Readonly<TypeRuntimeSettings>;
}

/** How often each API instance re-reads the run-time settings (API.md: honoured within 2 s). */
export const DEFAULT_TYPE_SETTINGS_REFRESH_MS = 1_000;

/**
 * Run-time settings of job types (pause, concurrency and rate limits), stored in the database so
 * they survive restarts and reach every API instance, which applies its own changes at once and
 * re-reads the (few, small) documents of others' when they matter, never more than once per
 * `refreshIntervalMs`: before a lease call (`fresh`, so a pause or a lower limit set elsewhere holds
 * within the interval), before GET /admin/types, and on a timer only while a waiting lease call is
 * held back by a setting (`shouldWatch`: a pause, a full limit), so that a resume or a raised limit
 * wakes it within the interval. An idle instance reads nothing. Lease calls then read the registry.
 */
export class TypeSettings {
  private readonly task: PeriodicTask<void>;
  private current = new Map<string, TypeRuntimeSettings>();
  /** Bumped by each local change, so a refresh that read before it does not undo it here. */
  private localChanges = 0;

  constructor(
    private readonly deps: {
      store: TypeSettingsRepository;
      registry: JobRegistry;
      queries: Pick<JobQueryRepository, 'countByTypeAndStatus'>;
      clock: Clock;
      refreshIntervalMs?: number;
      /** Whether a waiting lease call is held back by a setting (then a change elsewhere must reach it without a lease call). */
      shouldWatch?: () => boolean;
      onError?: (err: unknown) => void;
    },
  ) {
    this.intervalMs = deps.refreshIntervalMs ?? DEFAULT_TYPE_SETTINGS_REFRESH_MS;
    this.task = new PeriodicTask({
      name: 'type-settings',
      intervalMs: this.intervalMs,
      // Read when half an interval old: a tick that just missed the age would otherwise leave the
      // settings two intervals old at the next one.
      run: () => (this.deps.shouldWatch?.() ? this.fresh(this.intervalMs / 2) : Promise.resolve()),
      onError: (err) => deps.onError?.(err),
    });
  }

  private readonly intervalMs: number;
  /** When the last read began (real time: a cadence, not domain time). */
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;

  /**
   * Re-reads the settings when the last read is older than `maxAgeMs` (the refresh interval); concurrent callers
   * share one read. A failed read keeps the last settings in force (and is not retried before the
   * interval passes).
   */
  fresh(maxAgeMs: number = this.intervalMs): Promise<void> {
    if (Date.now() - this.readAt < maxAgeMs) return this.reading ?? Promise.resolve();
    this.reading ??= this.refresh()
      .catch((err: unknown) => this.deps.onError?.(err))
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  /** Reads the stored settings and applies them (start-up runs this before serving). */
  async refresh(): Promise<void> {
    const before = this.localChanges;
    this.readAt = Date.now();
    const stored = await this.deps.store.findAll();
    if (before !== this.localChanges) return;
    this.current = stored;
    this.deps.registry.applyRuntimeSettings(stored);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Every registered type with its effective policy and counts (a tenant token: its tenant's counts). */
  async list(principal: Principal): Promise<JobTypeView[]> {
    await this.fresh();
    const counts = await this.countsByType(principal.tenant);
    return this.deps.registry.typeNames().map((type) => this.view(type, counts.get(type)));
  }

  /**
   * Changes a type's run-time settings (null removes one) and applies them here at once. Types are
   * global configuration, so a tenant admin may not change them.
   */
  async update(params: { principal: Principal; type: string; change: TypeSettingsChange }): Promise<JobTypeView> {
    const { principal, type, change } = params;
    this.deps.registry.policyOf(type);
    if (principal.tenant !== undefined) throw new PermissionDeniedError('job types are global configuration: only an admin without a tenant may change them');
    if (Object.values(change).some((v) => v !== undefined)) {
      this.localChanges += 1;
      const settings = await this.deps.store.update({ type, change, now: this.deps.clock.now() });
      this.current = new Map(this.current).set(type, settings);
      this.deps.registry.applyRuntimeSettings(this.current);
    }
    const counts = await this.countsByType(principal.tenant);
    return this.view(type, counts.get(type));
  }

  private view(type: string, counts: Record<JobStatus, number> | undefined): JobTypeView {
    const { registry } = this.deps;
    return { type, policy: registry.policyOf(type), paused: registry.isPaused(type), counts: counts ?? zeroCounts(), overrides: registry.runtimeSettingsOf(type) };
  }

  private async countsByType(tenant: string | undefined): Promise<Map<string, Record<JobStatus, number>>> {
    const rows = await this.deps.queries.countByTypeAndStatus({ now: this.deps.clock.now(), ...(tenant === undefined ? {} : { tenant }) });
    const byType = new Map<string, Record<JobStatus, number>>();
    for (const row of rows) {
      if (!(JOB_STATUSES as readonly string[]).includes(row.status)) continue;
      const counts = byType.get(row.type) ?? zeroCounts();
      counts[row.status] += row.count;
      byType.set(row.type, counts);
    }
    return byType;
  }
}

function zeroCounts(): Record<JobStatus, number> {
  return Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
}
