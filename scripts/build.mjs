// `npm run build`: compiles src/ to dist/ (tsconfig.build.json) and copies the dashboard's static
// files next to the compiled code. With --if-stale (what `npm run api` and `npm run worker` do first)
// it builds only when something under src/ or a tsconfig changed since the last build, so those
// commands never run stale code and cost well under a second when nothing changed. Builds started
// at the same time (an API and a worker in two terminals) take turns through a lock directory.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const stamp = path.join(dist, '.build-stamp');
const lock = path.join(root, '.build.lock');
const inputs = [path.join(root, 'src'), path.join(root, 'tsconfig.json'), path.join(root, 'tsconfig.build.json')];
const LOCK_STALE_MS = 180_000;

function newestMtime(file) {
  const stat = statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(file).map((name) => newestMtime(path.join(file, name))));
}

function typescriptCompiler() {
  try {
    return createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    return undefined; // a production install (--omit=dev) has no compiler
  }
}

const isFresh = () => existsSync(stamp) && statSync(stamp).mtimeMs >= Math.max(...inputs.map(newestMtime));

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function withLock(run) {
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      // A build that died (kill -9) leaves its lock behind; none takes minutes.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })?.mtimeMs > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      sleep(200);
    }
  }
  try {
    return run();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

const ifStale = process.argv.includes('--if-stale');
const tsc = typescriptCompiler();
if (ifStale && existsSync(stamp) && (!tsc || isFresh())) process.exit(0);
if (!tsc) {
  process.stderr.write(`${existsSync(dist) ? '' : 'dist/ is missing and '}TypeScript is not installed: run \`npm install\` and \`npm run build\`\n`);
  process.exit(1);
}
const status = withLock(() => {
  if (ifStale) {
    if (isFresh()) return 0; // built by the process that held the lock before us
    process.stderr.write('building dist/ (src/ changed since the last build)\n');
  } else {
    rmSync(dist, { recursive: true, force: true });
  }
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (result.status !== 0) return result.status ?? 1;
  cpSync(path.join(root, 'src', 'dashboard', 'static'), path.join(dist, 'dashboard', 'static'), { recursive: true });
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  return 0;
});
process.exit(status);
