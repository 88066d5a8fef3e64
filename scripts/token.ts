import 'dotenv/config';

import { parseArgs } from 'node:util';

import { isRole, ROLES } from '../src/auth/roles';
import { mintToken } from '../src/auth/tokens';
import { readLocalSecret } from '../src/local-secret';

/** `npm run token -- --role admin --sub alice [--expires 1h]`: prints a signed JWT for local use. */
const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'admin' },
    sub: { type: 'string', default: 'dev' },
    expires: { type: 'string' },
    tenant: { type: 'string' },
  },
});
const secret = process.env.JWT_SECRET || readLocalSecret();
if (!secret) {
  process.stderr.write('JWT_SECRET is not set and no local secret exists yet (run `npm start` once, or set JWT_SECRET)\n');
  process.exit(1);
}
if (!isRole(values.role)) {
  process.stderr.write(`--role must be one of ${ROLES.join(', ')}\n`);
  process.exit(1);
}
const token = mintToken({
  secret,
  sub: values.sub!,
  role: values.role,
  ...(values.expires ? { expiresIn: /^\d+$/.test(values.expires) ? Number(values.expires) : values.expires } : {}),
  ...(values.tenant ? { extraClaims: { tenant: values.tenant } } : {}),
});
process.stdout.write(`${token}\n`);
