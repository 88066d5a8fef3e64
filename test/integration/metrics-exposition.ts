/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: it throws on
 * anything a Prometheus server would reject or that the format forbids (samples before their TYPE,
 * a family split in two, duplicate series, malformed label escapes, non-cumulative histograms).
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

function parseValue(raw: string, line: number): number {
  if (raw === '+Inf' || raw === 'Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  if (raw === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`line ${line}: "${raw}" is not a sample value`);
  return Number(raw);
}

function parseLabels(raw: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < raw.length) {
    const eq = raw.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${line}: label without "="`);
    const name = raw.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name "${name}"`);
    if (raw[eq + 1] !== '"') throw new Error(`line ${line}: label value of ${name} is not quoted`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = raw[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value of ${name}`);
      if (c === '"') break;
      if (c === '\\') {
        const next = raw[j + 1];
        if (next === '\\' || next === '"') value += next;
        else if (next === 'n') value += '\n';
        else throw new Error(`line ${line}: bad escape "\\${next ?? ''}" in label ${name}`);
        j += 2;
        continue;
      }
      if (c === '\n') throw new Error(`line ${line}: raw newline in label ${name}`);
      value += c;
      j += 1;
    }
    if (name in labels) throw new Error(`line ${line}: label ${name} given twice`);
    labels[name] = value;
    i = j + 1;
    if (raw[i] === ',') i += 1;
    else if (i < raw.length) throw new Error(`line ${line}: expected "," after label ${name}`);
  }
  return labels;
}

/** Which family a sample name belongs to, given the family's type. */
function belongsTo(sample: string, family: MetricFamily): boolean {
  if (family.type === 'histogram') return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`].includes(sample);
  if (family.type === 'summary') return [family.name, `${family.name}_sum`, `${family.name}_count`].includes(sample);
  return sample === family.name;
}

const seriesKey = (name: string, labels: Record<string, string>): string =>
  `${name}{${Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',')}}`;

function checkHistogram(family: MetricFamily): void {
  const groups = new Map<string, { buckets: { le: number; count: number }[]; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey(family.name, rest);
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${family.name}: bucket without le`);
      group.buckets.push({ le: parseValue(le, 0), count: s.value });
    } else if (s.name.endsWith('_count')) group.count = s.value;
  }
  for (const [key, group] of groups) {
    const les = group.buckets.map((b) => b.le);
    if (les.join() !== [...les].sort((a, b) => a - b).join()) throw new Error(`${key}: buckets not in ascending le order`);
    for (let i = 1; i < group.buckets.length; i += 1) {
      if (group.buckets[i]!.count < group.buckets[i - 1]!.count) throw new Error(`${key}: bucket counts are not cumulative`);
    }
    const inf = group.buckets.at(-1);
    if (!inf || inf.le !== Number.POSITIVE_INFINITY) throw new Error(`${key}: no +Inf bucket`);
    if (group.count !== inf.count) throw new Error(`${key}: _count ${group.count} differs from the +Inf bucket ${inf.count}`);
  }
}

export function parseExposition(text: string): Map<string, MetricFamily> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, MetricFamily>();
  const seen = new Set<string>();
  let current: MetricFamily | undefined;
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((content, index) => {
    const line = index + 1;
    if (content.trim() === '') return;
    if (content.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(content);
      if (!meta) return; // a plain comment
      const [, kind, name, rest = ''] = meta;
      if (!METRIC_NAME.test(name!)) throw new Error(`line ${line}: bad metric name "${name}"`);
      let family = families.get(name!);
      if (family && family !== current) throw new Error(`line ${line}: family ${name} is split`);
      if (!family) {
        family = { name: name!, type: 'untyped', help: undefined, samples: [] };
        families.set(name!, family);
      }
      if (kind === 'TYPE') {
        if (!TYPES.includes(rest as MetricType)) throw new Error(`line ${line}: unknown type "${rest}"`);
        if (family.samples.length > 0) throw new Error(`line ${line}: TYPE of ${name} after its samples`);
        family.type = rest as MetricType;
      } else {
        if (family.help !== undefined) throw new Error(`line ${line}: second HELP for ${name}`);
        family.help = rest;
      }
      current = family;
      return;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?$/.exec(content);
    if (!sample) throw new Error(`line ${line}: not a sample: ${content}`);
    const [, name, rawLabels = '', rawValue] = sample;
    if (!current || !belongsTo(name!, current)) throw new Error(`line ${line}: sample ${name} outside its family (no TYPE before it?)`);
    const labels = parseLabels(rawLabels, line);
    const key = seriesKey(name!, labels);
    if (seen.has(key)) throw new Error(`line ${line}: duplicate series ${key}`);
    seen.add(key);
    current.samples.push({ name: name!, labels, value: parseValue(rawValue!, line) });
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

/** The value of one series (undefined when absent). */
export function sampleValue(families: Map<string, MetricFamily>, name: string, labels: Record<string, string>): number | undefined {
  const key = seriesKey(name, labels);
  for (const family of families.values()) {
    for (const s of family.samples) if (seriesKey(s.name, s.labels) === key) return s.value;
  }
  return undefined;
}
