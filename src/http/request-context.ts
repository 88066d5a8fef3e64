import type { Request } from 'express';

import type { Principal } from '../model/principal';
import { UnauthenticatedError } from '../errors';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by `authenticate` once the bearer token is verified. */
    principal?: Principal;
  }
}

export function principalOf(req: Request): Principal {
  if (!req.principal) throw new UnauthenticatedError();
  return req.principal;
}
