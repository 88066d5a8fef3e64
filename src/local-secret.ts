import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Where `npm start` keeps local data (the H2 database file and the generated JWT secret). */
export const LOCAL_DATA_DIR = path.resolve(__dirname, '..', '.data');
const SECRET_FILE = path.join(LOCAL_DATA_DIR, 'jwt-secret');

/** Local mode only: the JWT secret generated on first start, kept so tokens survive restarts. */
export function readLocalSecret(): string | undefined {
  return existsSync(SECRET_FILE) ? readFileSync(SECRET_FILE, 'utf8').trim() : undefined;
}

export function readOrCreateLocalSecret(): string {
  const existing = readLocalSecret();
  if (existing) return existing;
  mkdirSync(LOCAL_DATA_DIR, { recursive: true });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(SECRET_FILE, `${secret}\n`, { mode: 0o600 });
  return secret;
}
