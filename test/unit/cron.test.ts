import { nextOccurrence, planRun, timeZoneProblem } from '../../src/schedules/cron';

// The same answers on every supported runtime: Node's ICU differs between versions (Node 24 accepts
// "+02:00" as a zone, Node 20 does not), and the rule must not follow it.
describe('schedule time zones', () => {
  it.each(['UTC', 'utc', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Etc/GMT-2', 'Etc/GMT+5'])('accepts the IANA zone %s', (zone) => {
    expect(timeZoneProblem(zone)).toBeUndefined();
  });

  it.each(['+02:00', '-05:30', '+0530', '-0800', '+02', '-5', ' +01:00'])('refuses the UTC offset %j, naming the way to write a fixed offset', (offset) => {
    const problem = timeZoneProblem(offset);
    expect(problem).toContain('not a UTC offset');
    expect(problem).toContain('Etc/GMT-2');
  });

  it.each(['Mars/Olympus_Mons', 'GMT+2', 'Z', '', 'Europe/'])('refuses %j, which is no zone', (zone) => {
    expect(timeZoneProblem(zone)).toMatch(/^timeZone must be an IANA time zone name/);
  });
});

describe('next occurrences and run plans (pure)', () => {
  const at = (iso: string): Date => new Date(iso);
  const spec = (cron: string, timeZone = 'UTC') => ({ cron, timeZone, name: 'unit' });

  it('finds the first occurrence strictly after the given instant, in the time zone', () => {
    expect(nextOccurrence(spec('0 3 * * *'), at('2030-01-01T02:59:59Z')).toISOString()).toBe('2030-01-01T03:00:00.000Z');
    expect(nextOccurrence(spec('0 3 * * *'), at('2030-01-01T03:00:00Z')).toISOString()).toBe('2030-01-02T03:00:00.000Z');
    // 03:00 in Berlin (UTC+1 in January) is 02:00 UTC.
    expect(nextOccurrence(spec('0 3 * * *', 'Europe/Berlin'), at('2030-01-01T00:00:00Z')).toISOString()).toBe('2030-01-01T02:00:00.000Z');
    expect(nextOccurrence(spec('*/15 * * * *'), at('2030-01-01T00:07:00Z')).toISOString()).toBe('2030-01-01T00:15:00.000Z');
  });

  it('fires an on-time occurrence and plans the next after it', () => {
    const plan = planRun({ spec: spec('0 * * * *'), dueAt: at('2030-01-01T05:00:00Z'), now: at('2030-01-01T05:00:02Z'), catchUp: 'none', misfireGraceMs: 60_000 });
    expect(plan).toEqual({ fire: at('2030-01-01T05:00:00Z'), nextRunAt: at('2030-01-01T06:00:00Z') });
  });

  it('after downtime fires only the latest missed occurrence under catch-up last, and none under none', () => {
    const params = { spec: spec('0 * * * *'), dueAt: at('2030-01-01T01:00:00Z'), now: at('2030-01-01T05:30:00Z'), misfireGraceMs: 60_000 };
    expect(planRun({ ...params, catchUp: 'last' })).toEqual({ fire: at('2030-01-01T05:00:00Z'), nextRunAt: at('2030-01-01T06:00:00Z') });
    expect(planRun({ ...params, catchUp: 'none' })).toEqual({ fire: null, nextRunAt: at('2030-01-01T06:00:00Z') });
  });

  it('never plans a next run at or before now', () => {
    const plan = planRun({ spec: spec('* * * * *'), dueAt: at('2030-01-01T00:00:00Z'), now: at('2030-01-01T00:10:30Z'), catchUp: 'last', misfireGraceMs: 60_000 });
    expect(plan.nextRunAt.getTime()).toBeGreaterThan(at('2030-01-01T00:10:30Z').getTime());
    expect(plan.fire).toEqual(at('2030-01-01T00:10:00Z'));
  });
});
