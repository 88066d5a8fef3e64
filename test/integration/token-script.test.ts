import { spawnSync } from 'node:child_process';
import path from 'node:path';

import jwt from 'jsonwebtoken';

import { ROOT } from '../helpers/processes';
import { TEST_JWT_SECRET } from '../helpers/tokens';

/** `npm run token -- <args>` as a process (the script through tsx, as npm runs it). */
function token(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/token.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', JWT_SECRET: TEST_JWT_SECRET },
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function claims(printed: string): jwt.JwtPayload {
  return jwt.verify(printed.trim(), TEST_JWT_SECRET, { algorithms: ['HS256'] }) as jwt.JwtPayload;
}

describe('npm run token', () => {
  it('prints its usage for --help, and usage with one line naming the problem for a bad option', () => {
    const help = token(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run token -- /);
    expect(help.stdout).toContain('--expires');
    const bad = token(['--colour', 'blue']);
    expect(bad.status).toBe(1);
    expect(bad.stderr.split('\n')[0]).toContain('--colour');
    expect(bad.stderr).toContain('Usage:');
    expect(bad.stderr).not.toMatch(/^\s+at /m);
    expect(token(['--role', 'root']).stderr).toContain('--role must be one of');
    expect(token(['--expires', 'soon']).status).toBe(1);
  });

  it('mints tokens that expire in an hour unless asked otherwise, and never with --expires never', () => {
    const byDefault = claims(token(['--role', 'worker', '--sub', 'w1']).stdout);
    expect(byDefault).toMatchObject({ sub: 'w1', role: 'worker' });
    expect(byDefault.exp! - byDefault.iat!).toBe(3_600);
    const week = claims(token(['--expires', '7d']).stdout);
    expect(week.exp! - week.iat!).toBe(7 * 86_400);
    const forever = claims(token(['--expires', 'never', '--tenant', 'acme']).stdout);
    expect(forever.exp).toBeUndefined();
    expect(forever).toMatchObject({ role: 'admin', tenant: 'acme' });
  });
});
