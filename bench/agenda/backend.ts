import path from 'node:path';
import { pathToFileURL } from 'node:url';

import type { AgendaBackend } from 'agenda';

/** The constructor of @agendajs/mongo-backend's MongoBackend, as far as the bench uses it. */
export type MongoBackendConstructor = new (config: { address: string; collection?: string }) => AgendaBackend;

const OFFICIAL = '@agendajs/mongo-backend';
const VENDORED = path.join(__dirname, '../vendor/agenda-mongo-backend/index.js');

/**
 * Agenda 6 keeps its MongoDB storage in a separate package, @agendajs/mongo-backend. When that is
 * installed it is used; otherwise the copy of its published dist (4.0.3, MIT) under bench/vendor,
 * unchanged but for the source-map comments. Both load `mongodb` (a v7 driver is in node_modules)
 * and `agenda` from node_modules.
 */
export async function loadMongoBackend(): Promise<{ MongoBackend: MongoBackendConstructor; source: string }> {
  try {
    const official = (await import(OFFICIAL)) as { MongoBackend: MongoBackendConstructor };
    return { MongoBackend: official.MongoBackend, source: OFFICIAL };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
  }
  const vendored = (await import(pathToFileURL(VENDORED).href)) as { MongoBackend: MongoBackendConstructor };
  return { MongoBackend: vendored.MongoBackend, source: `${OFFICIAL} 4.0.3 (copy in bench/vendor)` };
}
