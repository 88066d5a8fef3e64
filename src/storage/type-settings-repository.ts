import type { Connection } from 'mongoose';

import { RUNTIME_SETTING_FIELDS, type TypeRuntimeSettings } from '../model/job-type';
import { typeSettingsModel, type TypeSettingsDocument, type TypeSettingsModel } from './type-settings-model';

/** A change to one type's run-time settings: a value sets the override, null removes it. */
export type TypeSettingsChange = { [K in keyof TypeRuntimeSettings]?: TypeRuntimeSettings[K] | null };

function toSettings(doc: TypeSettingsDocument): TypeRuntimeSettings {
  return {
    ...(doc.paused === undefined || doc.paused === null ? {} : { paused: doc.paused }),
    ...(doc.concurrencyLimit === undefined || doc.concurrencyLimit === null ? {} : { concurrencyLimit: doc.concurrencyLimit }),
    ...(doc.keyConcurrencyLimit === undefined || doc.keyConcurrencyLimit === null ? {} : { keyConcurrencyLimit: doc.keyConcurrencyLimit }),
    ...(doc.rateLimit ? { rateLimit: { jobs: doc.rateLimit.jobs, perSeconds: doc.rateLimit.perSeconds } } : {}),
  };
}

/** The run-time settings of job types (the `job_types` collection; a handful of small documents). */
export class TypeSettingsRepository {
  private readonly settings: TypeSettingsModel;

  constructor(connection: Connection) {
    this.settings = typeSettingsModel(connection);
  }

  async findAll(): Promise<Map<string, TypeRuntimeSettings>> {
    const docs = await this.settings.find({}).lean<TypeSettingsDocument[]>();
    return new Map(docs.map((doc) => [doc._id, toSettings(doc)]));
  }

  /** Applies a change atomically (fields not named are left as they are); returns the type's settings after it. */
  async update(params: { type: string; change: TypeSettingsChange; now: Date }): Promise<TypeRuntimeSettings> {
    const set: Record<string, unknown> = { updatedAt: params.now };
    const unset: Record<string, ''> = {};
    for (const field of RUNTIME_SETTING_FIELDS) {
      const value = params.change[field];
      if (value === undefined) continue;
      if (value === null) unset[field] = '';
      else set[field] = value;
    }
    const doc = await this.settings
      .findOneAndUpdate({ _id: params.type }, { $set: set, ...(Object.keys(unset).length > 0 ? { $unset: unset } : {}) }, { upsert: true, new: true })
      .lean<TypeSettingsDocument>();
    return doc ? toSettings(doc) : {};
  }
}
