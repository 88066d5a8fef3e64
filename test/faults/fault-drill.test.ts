import { testDatabaseUri } from '../helpers/database';
import { DRILL_SIZES, formatSummary, runFaultDrill } from './fault-drill';

/**
 * The fault suite. `npm test` runs the short form (a couple of hundred jobs, a few faults, a fixed
 * seed); `npm run test:faults` runs the full form (a few thousand jobs, more of every fault, a new
 * seed each run). FAULTS_SEED replays a run; FAULTS_SIZE=full|short picks the size.
 */
const size = process.env.FAULTS_SIZE === 'full' ? DRILL_SIZES.full : DRILL_SIZES.short;
const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : size.name === 'short' ? 20_240_611 : Date.now() % 1_000_000_007;
jest.setTimeout(size.drainTimeoutMs + 300_000);

describe(`fault drill (${size.name})`, () => {
  it('loses nothing while workers are killed, the API restarts, a worker wakes up holding stale leases, and jobs are cancelled under a worker that then dies', async () => {
    process.stdout.write(`fault drill: size ${size.name}, seed ${seed} (replay with FAULTS_SEED=${seed}${size.name === 'full' ? ' FAULTS_SIZE=full' : ''})\n`);
    const report = await runFaultDrill({ size, seed, mongoUri: testDatabaseUri(), log: (line) => process.stdout.write(`${line}\n`) });
    process.stdout.write(`\n${formatSummary([report])}\n\n`);
    if (report.problems.length > 0) process.stdout.write(`problems:\n${report.problems.slice(0, 50).join('\n')}\n`);

    expect(report.faultsPlanned).toEqual(report.faultsDone);
    expect(report.staleReportsRefused).toBeGreaterThanOrEqual(report.pauses);
    expect({ duplicates: report.duplicates, lost: report.lost, staleAccepted: report.staleAccepted }).toEqual({ duplicates: 0, lost: 0, staleAccepted: 0 });
    expect(report.statsMismatches).toEqual([]);
    expect(report.problems).toEqual([]);
    expect(report.cancelKills).toBeGreaterThan(0);
    expect(report.cancelsAcknowledged).toBeGreaterThan(0);
    // Every payout moved money once, but those whose cancel was acknowledged: they moved none.
    expect(report.transfers).toBe(size.jobs.payout - report.payoutCancelsAcknowledged);
  });
});
