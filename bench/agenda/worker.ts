/**
 * An Agenda worker process for the bench: runs `noop` jobs (which do nothing) and prints how many it
 * has completed, so the bench can follow progress without querying the database.
 *
 *   AGENDA_MONGODB_URI   connection string including the database name
 *   AGENDA_CONCURRENCY   jobs run at once (maxConcurrency and the job's concurrency)
 *   AGENDA_PROCESS_EVERY_MS  how often Agenda looks for jobs
 *   AGENDA_WORKER_NAME   Agenda's name for this instance (lastModifiedBy)
 */
import { loadMongoBackend } from './backend';

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function main(): Promise<void> {
  const { Agenda } = await import('agenda');
  const { MongoBackend } = await loadMongoBackend();
  const concurrency = Number(requireEnv('AGENDA_CONCURRENCY'));
  const agenda = new Agenda({
    backend: new MongoBackend({ address: requireEnv('AGENDA_MONGODB_URI') }),
    name: requireEnv('AGENDA_WORKER_NAME'),
    processEvery: Number(requireEnv('AGENDA_PROCESS_EVERY_MS')),
    maxConcurrency: concurrency,
    defaultConcurrency: concurrency,
  });
  let completed = 0;
  agenda.define('noop', async () => {
    completed += 1;
  });
  agenda.on('error', (err: unknown) => process.stderr.write(`agenda error: ${err instanceof Error ? err.message : String(err)}\n`));
  await agenda.start();
  process.stdout.write('agenda worker started\n');
  let reported = 0;
  const report = setInterval(() => {
    if (completed === reported) return;
    reported = completed;
    process.stdout.write(`completed ${completed}\n`);
  }, 100);
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    clearInterval(report);
    agenda.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
