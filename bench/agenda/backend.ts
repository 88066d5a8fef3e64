import type { AgendaBackend } from 'agenda';

/** The constructor of @agendajs/mongo-backend's MongoBackend, as far as the bench uses it. */
export type MongoBackendConstructor = new (config: { address: string; collection?: string }) => AgendaBackend;

const PACKAGE = '@agendajs/mongo-backend';

/** Agenda 6 keeps its MongoDB storage in a separate package (a dev dependency, like agenda). */
export async function loadMongoBackend(): Promise<{ MongoBackend: MongoBackendConstructor; source: string }> {
  const backend = (await import(PACKAGE)) as { MongoBackend: MongoBackendConstructor };
  return { MongoBackend: backend.MongoBackend, source: PACKAGE };
}
