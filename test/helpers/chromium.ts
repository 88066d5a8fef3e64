import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

/**
 * A Chromium for the browser tests (Playwright drives it; playwright-core ships no browser). Found in
 * this order: CHROMIUM_PATH, Debian's package, a system Chrome, Playwright's own download. When there
 * is none, the test setup gets one, once per run: Playwright's installer where it can download,
 * then Debian's package where apt and root are there.
 */

const SYSTEM_BROWSERS = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
  '/opt/google/chrome/chrome',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];
const ROOT = path.resolve(__dirname, '../..');
const PLAYWRIGHT_CLI = path.join(ROOT, 'node_modules', 'playwright-core', 'cli.js');
/** On a machine that cannot download, the installer fails within seconds; a working download takes a minute or two. */
const PLAYWRIGHT_INSTALL_TIMEOUT_MS = 180_000;
const APT_TIMEOUT_MS = 600_000;

export const NO_CHROMIUM =
  'no Chromium for the browser tests: install one (`apt-get install chromium`, or `npx playwright-core install chromium`) or point CHROMIUM_PATH at a Chrome/Chromium binary';

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first Chromium there is, or undefined. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CHROMIUM_PATH) return executable(env.CHROMIUM_PATH) ? env.CHROMIUM_PATH : undefined;
  return [...SYSTEM_BROWSERS, chromium.executablePath()].find(executable);
}

function say(message: string): void {
  process.stderr.write(`browser tests: ${message}\n`);
}

function firstLine(output: string): string {
  return output.split('\n').map((l) => l.trim()).find(Boolean) ?? 'no output';
}

function tryPlaywrightInstaller(): boolean {
  if (!existsSync(PLAYWRIGHT_CLI)) return false;
  say("no Chromium found; trying Playwright's installer (npx playwright-core install chromium)");
  const result = spawnSync(process.execPath, [PLAYWRIGHT_CLI, 'install', 'chromium'], { encoding: 'utf8', timeout: PLAYWRIGHT_INSTALL_TIMEOUT_MS });
  if (result.status === 0) return true;
  say(`Playwright's installer could not get Chromium (${result.error ? result.error.message : firstLine(`${result.stderr}\n${result.stdout}`)})`);
  return false;
}

function tryDebianPackage(): boolean {
  const hasApt = existsSync('/usr/bin/apt-get') && existsSync('/etc/debian_version');
  if (!hasApt || process.getuid?.() !== 0) return false;
  const install = (): boolean => {
    say("installing Debian's chromium: apt-get install -y chromium");
    const result = spawnSync('apt-get', ['install', '-y', '-qq', 'chromium'], {
      encoding: 'utf8',
      timeout: APT_TIMEOUT_MS,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (result.status !== 0) say(`apt-get install failed (${firstLine(result.stderr)})`);
    return result.status === 0;
  };
  if (install()) return true;
  // A fresh machine may have no package lists yet.
  say('apt-get update, then trying again');
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: APT_TIMEOUT_MS });
  return install();
}

/**
 * Finds a Chromium, or gets one (saying what it does on stderr). Returns its path, or a one-line
 * reason when nothing worked.
 */
export function ensureChromium(): { path: string } | { problem: string } {
  const found = findChromium();
  if (found) return { path: found };
  if (process.env.CHROMIUM_PATH) return { problem: `CHROMIUM_PATH (${process.env.CHROMIUM_PATH}) is not an executable file` };
  for (const attempt of [tryPlaywrightInstaller, tryDebianPackage]) {
    if (!attempt()) continue;
    const installed = findChromium();
    if (installed) {
      say(`using ${installed}`);
      return { path: installed };
    }
  }
  return { problem: NO_CHROMIUM };
}

/** Test files that drive a browser (they import this module). */
function browserTestFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.test.ts') && readFileSync(file, 'utf8').includes("from '../helpers/chromium'")) files.push(file);
    }
  };
  walk(path.join(ROOT, 'test'));
  return files;
}

/**
 * Whether this jest run may include a browser test: the whole suite, or a path pattern that matches
 * one. The setup gets a browser only then, so `npx jest test/unit/x.test.ts` never installs one.
 */
export function runMayNeedChromium(testPathPattern: string | undefined): boolean {
  if (!testPathPattern) return true;
  let pattern: RegExp;
  try {
    pattern = new RegExp(testPathPattern, 'i');
  } catch {
    return true;
  }
  return browserTestFiles().some((file) => pattern.test(file));
}

/** For a browser test: the Chromium the setup found or installed; fails with one line when there is none. */
export function chromiumForTests(): string {
  const chosen = process.env.JOBS_TEST_CHROMIUM ?? findChromium();
  if (chosen) return chosen;
  throw new Error(process.env.JOBS_TEST_CHROMIUM_PROBLEM ?? NO_CHROMIUM);
}
