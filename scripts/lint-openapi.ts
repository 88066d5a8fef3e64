import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { buildOpenApiDocument } from '../src/contract/openapi';

/**
 * `npm run lint:openapi`: Redocly CLI's `lint` (recommended rules, redocly.yaml) over the generated
 * document. Fails on any error or warning; accepted exceptions are listed, with their reason, in
 * .redocly.lint-ignore.yaml. The document is written where that file expects it.
 */

const ROOT = path.join(__dirname, '..');
export const LINTED_DOCUMENT = path.join(ROOT, 'test-artifacts', 'openapi.json');

export interface LintTotals {
  errors: number;
  warnings: number;
  ignored: number;
}

export function lintOpenApi(): { totals: LintTotals; report: string } {
  mkdirSync(path.dirname(LINTED_DOCUMENT), { recursive: true });
  writeFileSync(LINTED_DOCUMENT, `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`);
  const cli = path.join(ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
  const run = (format: string) =>
    spawnSync(process.execPath, [cli, 'lint', path.relative(ROOT, LINTED_DOCUMENT), `--format=${format}`, '--config', 'redocly.yaml'], {
      cwd: ROOT,
      encoding: 'utf8',
      // No usage reports or update checks from a test run.
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    });
  const json = run('json');
  const parsed = JSON.parse(json.stdout.slice(json.stdout.indexOf('{'))) as { totals: LintTotals };
  const failed = parsed.totals.errors > 0 || parsed.totals.warnings > 0;
  return { totals: parsed.totals, report: failed ? `${run('stylish').stdout}` : '' };
}

if (require.main === module) {
  const { totals, report } = lintOpenApi();
  process.stdout.write(report);
  process.stdout.write(`openapi lint: ${totals.errors} errors, ${totals.warnings} warnings, ${totals.ignored} ignored (see .redocly.lint-ignore.yaml)\n`);
  process.exit(totals.errors > 0 || totals.warnings > 0 ? 1 : 0);
}
