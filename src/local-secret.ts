import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * What `npm start` keeps on disk for local work: the H2 database file, the generated JWT secret and,
 * while it runs, the embedded database's URI (for scripts and a second worker). By default under
 * .data/ in the repository; LOCAL_DATA_DIR moves it (tests, two local instances side by side).
 */
export const DEFAULT_LOCAL_DATA_DIR = path.resolve(__dirname, '..', '.data');

export function localDataDir(setting: string | undefined): string {
  return setting ? path.resolve(setting) : DEFAULT_LOCAL_DATA_DIR;
}

const secretFile = (dir: string): string => path.join(dir, 'jwt-secret');
const databaseUriFile = (dir: string): string => path.join(dir, 'mongodb-uri');

/** Local mode only: the JWT secret generated on first start, kept so tokens survive restarts. */
export function readLocalSecret(dir: string): string | undefined {
  return existsSync(secretFile(dir)) ? readFileSync(secretFile(dir), 'utf8').trim() : undefined;
}

/** `generated`: true when this call made the secret (the first start), false when it was read back. */
export function readOrCreateLocalSecret(dir: string): { secret: string; generated: boolean } {
  const existing = readLocalSecret(dir);
  if (existing) return { secret: existing, generated: false };
  mkdirSync(dir, { recursive: true });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(secretFile(dir), `${secret}\n`, { mode: 0o600 });
  return { secret, generated: true };
}

export function writeLocalDatabaseUri(dir: string, uri: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(databaseUriFile(dir), `${uri}\n`);
}

export function readLocalDatabaseUri(dir: string): string | undefined {
  return existsSync(databaseUriFile(dir)) ? readFileSync(databaseUriFile(dir), 'utf8').trim() || undefined : undefined;
}

/** Removed when the embedded database stops, so nothing reads the address of a database that is gone. */
export function removeLocalDatabaseUri(dir: string): void {
  rmSync(databaseUriFile(dir), { force: true });
}
