/**
 * `npm run bench:flow`: what flow control costs the lease path. One API instance (in this process)
 * and a few HTTP workers lease and report (batch reports) the same number of noop jobs four times:
 * with no limit, with a keyConcurrencyLimit that never binds (every job its own key: the cost of the
 * key slots alone), with a rateLimit that never binds (the cost of the window alone), and with both.
 * Prints jobs/s, the ratio to the unlimited run, and the database commands per lease call, counted
 * on the wire. Absolute numbers on the test server say little (it scans); the ratios are the point.
 *
 *   npm run bench:flow                 2,000 jobs per run
 *   npm run bench:flow -- --jobs=500
 *   MONGODB_URI=mongodb://... npm run bench:flow
 */
import { randomBytes } from 'node:crypto';

import { startEmbeddedDatabase, type EmbeddedDatabase } from '../src/embedded-db';
import { runFlowLimits } from './scenarios/flow-limits';

const WORKERS = 4;
const LEASE_LIMIT = 25;

async function main(): Promise<void> {
  const jobsArg = process.argv.find((a) => a.startsWith('--jobs='));
  const jobs = jobsArg ? Number(jobsArg.slice('--jobs='.length)) : 2_000;
  let embedded: EmbeddedDatabase | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    embedded = await startEmbeddedDatabase({ port: 0 });
    uri = embedded.uri;
  }
  const secret = randomBytes(32).toString('hex');
  try {
    process.stderr.write(`flow-control bench: ${jobs} noop jobs per run, ${WORKERS} workers leasing ${LEASE_LIMIT} at a time, batch reports; database ${embedded?.kind ?? 'MONGODB_URI'}\n`);
    const results = await runFlowLimits({ uri, jobs, secret, log: (line) => process.stderr.write(`${line}\n`) });
    const rows: string[] = ['| variant | jobs/s | vs no limit | db commands per job |', '| --- | --- | --- | --- |'];
    for (const r of results) rows.push(`| ${r.variant} | ${r.jobsPerSecond} | ${r.vsNoLimit.toFixed(2)} | ${r.commandsPerJob.toFixed(2)} |`);
    process.stdout.write(`${rows.join('\n')}\n`);
  } finally {
    await embedded?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
