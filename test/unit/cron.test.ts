import { timeZoneProblem } from '../../src/schedules/cron';

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
