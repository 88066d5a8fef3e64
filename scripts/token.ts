import 'dotenv/config';

import { parseArgs } from 'node:util';

import { isRole, ROLES } from '../src/model/principal';
import { mintToken } from '../src/auth/tokens';
import { localDataDir, readLocalSecret } from '../src/local-secret';

const USAGE = `Usage: npm run token -- [--role ROLE] [--sub NAME] [--expires DURATION|never] [--tenant TENANT]

Prints a JWT signed with JWT_SECRET (or, unset, the secret npm start generated in .data/jwt-secret).
  --role      ${ROLES.join(', ')} (default: admin)
  --sub       who the token names (default: dev)
  --expires   lifetime, e.g. 30m, 1h, 7d or seconds (default: 1h); "never" for no expiry
  --tenant    a tenant claim: the token sees only that tenant's jobs
  --help      this text
`;

/** Tokens expire unless asked otherwise: one pasted into a chat or a shell history stops working. */
const DEFAULT_EXPIRY = '1h';
const DURATION = /^\d+$|^\d+(\.\d+)?\s*(ms|s|m|h|d|w|y)$/;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(1);
}

function parse(): { role: string; sub: string; expires: string; tenant: string | undefined } {
  try {
    const { values } = parseArgs({
      options: {
        role: { type: 'string', default: 'admin' },
        sub: { type: 'string', default: 'dev' },
        expires: { type: 'string', default: DEFAULT_EXPIRY },
        tenant: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    return { role: values.role, sub: values.sub, expires: values.expires, tenant: values.tenant };
  } catch (err) {
    // parseArgs throws on unknown options and missing values; its message names the option.
    return fail(err instanceof Error ? err.message : String(err));
  }
}

const args = parse();
if (!isRole(args.role)) fail(`--role must be one of ${ROLES.join(', ')}`);
if (args.expires !== 'never' && !DURATION.test(args.expires)) fail('--expires must be a duration such as 30m, 1h or 7d, a number of seconds, or "never"');
const secret = process.env.JWT_SECRET || readLocalSecret(localDataDir(process.env.LOCAL_DATA_DIR));
if (!secret) fail('JWT_SECRET is not set and no local secret exists yet (run `npm start` once, or set JWT_SECRET)');

const token = mintToken({
  secret,
  sub: args.sub,
  role: args.role,
  ...(args.expires === 'never' ? {} : { expiresIn: /^\d+$/.test(args.expires) ? Number(args.expires) : args.expires }),
  ...(args.tenant ? { extraClaims: { tenant: args.tenant } } : {}),
});
process.stdout.write(`${token}\n`);
