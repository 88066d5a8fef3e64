import { readFileSync } from 'node:fs';
import path from 'node:path';

import { round } from './numbers';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface CostLine {
  name: string;
  ms: number;
  /** Share of the busy (non-idle) time in the window. */
  pct: number;
}

export interface ProfileSummary {
  file: string;
  windowMs: number;
  busyMs: number;
  idlePct: number;
  /** Functions by self time. */
  topFunctions: CostLine[];
  /** Where the time was spent, by package (node_modules), src/ file, node: module or V8 native. */
  bySelf: CostLine[];
  /** Time with a frame of the package (or src/ file) anywhere on the stack; overlaps, so it sums past 100%. */
  byInclusive: CostLine[];
}

// '(program)' stays busy: native work outside JS (syscalls, the HTTP parser), not waiting.
const IDLE = new Set(['(idle)', '(root)']);

/** The package, src/ file or runtime part a frame belongs to. */
function categoryOf(frame: ProfileNode['callFrame'], root: string): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`;
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (url.startsWith('node:')) return url;
  const file = url.replace(/^file:\/\//, '');
  return file.startsWith(root) ? path.relative(root, file) : file;
}

/**
 * Summarizes a .cpuprofile (node --cpu-prof) over a wall-clock window. Sample times are offsets
 * from the profile's start, which is placed at `profileStartedAt` (epoch ms of the process spawn:
 * good to a few tens of ms, plenty for windows of seconds).
 */
export function summarizeCpuProfile(params: { file: string; profileStartedAt: number; window: { from: number; to: number }; root: string }): ProfileSummary {
  const profile = JSON.parse(readFileSync(params.file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

  const self = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < profile.samples.length; i += 1) {
    t += profile.timeDeltas[i] ?? 0;
    const wall = params.profileStartedAt + t / 1000;
    if (wall < params.window.from || wall > params.window.to) continue;
    const delta = profile.timeDeltas[i + 1] ?? 0;
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + delta / 1000);
  }

  let idleMs = 0;
  let busyMs = 0;
  const functions = new Map<string, number>();
  const selfByCategory = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, ms: number): void => {
    map.set(key, (map.get(key) ?? 0) + ms);
  };
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    if (IDLE.has(node.callFrame.functionName)) {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    const category = categoryOf(node.callFrame, params.root);
    const { functionName, lineNumber } = node.callFrame;
    add(functions, `${functionName || '(anonymous)'} ${category}:${lineNumber + 1}`, ms);
    add(selfByCategory, category, ms);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parentOf.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      if (IDLE.has(frame.functionName)) continue;
      seen.add(categoryOf(frame, params.root));
    }
    for (const c of seen) add(inclusive, c, ms);
  }
  const lines = (map: Map<string, number>, count: number): CostLine[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, ms]) => ({ name, ms: round(ms, 0), pct: round((100 * ms) / Math.max(busyMs, 1)) }));
  return {
    file: params.file,
    windowMs: Math.round(params.window.to - params.window.from),
    busyMs: Math.round(busyMs),
    idlePct: round((100 * idleMs) / Math.max(idleMs + busyMs, 1)),
    topFunctions: lines(functions, 20),
    bySelf: lines(selfByCategory, 20),
    byInclusive: lines(inclusive, 25),
  };
}
