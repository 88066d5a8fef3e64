import { readFileSync, readdirSync } from 'node:fs';

// /proc/<pid>/stat counts in clock ticks; USER_HZ is 100 on every mainstream Linux build.
const TICK_MS = 10;

/** CPU time (user + system) a process has used, in ms; null where /proc is not there or it exited. */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return null;
  }
}

/** The database server process, when this process started it (mongo-java-server or mongod). */
export function databaseServerPid(): number | null {
  try {
    for (const task of readdirSync(`/proc/${process.pid}/task`)) {
      const children = readFileSync(`/proc/${process.pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      for (const child of children) {
        const comm = readFileSync(`/proc/${child}/comm`, 'utf8').trim();
        if (comm === 'java' || comm === 'mongod') return Number(child);
      }
    }
  } catch {
    // Not Linux, or the process is gone: no database share in the CPU split.
  }
  return null;
}

export interface CpuSplit {
  /** CPU ms per job by process group; null where it could not be read. */
  perJobMs: Record<string, number | null>;
}

/** Records CPU time of named process groups now; `finish(jobs)` gives the CPU ms per job since. */
export function startCpuAccounting(groups: Record<string, readonly number[] | 'self'>): { finish(jobs: number): CpuSplit } {
  const read = (pids: readonly number[] | 'self'): number | null => {
    if (pids === 'self') {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1000;
    }
    let sum = 0;
    for (const pid of pids) {
      const ms = processCpuMs(pid);
      if (ms === null) return null;
      sum += ms;
    }
    return pids.length === 0 ? null : sum;
  };
  const before = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, read(pids)]));
  return {
    finish(jobs) {
      const perJobMs: Record<string, number | null> = {};
      for (const [name, pids] of Object.entries(groups)) {
        const start = before[name];
        const end = read(pids);
        perJobMs[name] = start === null || start === undefined || end === null ? null : Math.round(((end - start) / Math.max(1, jobs)) * 100) / 100;
      }
      return { perJobMs };
    },
  };
}
