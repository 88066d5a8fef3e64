import type { RequestHandler } from 'express';

import { roleHasPermission, type Permission } from '../auth/roles';
import { createTokenVerifier } from '../auth/tokens';
import { PermissionDeniedError, UnauthenticatedError } from '../errors';
import './request-context';

// The scheme is case-insensitive (RFC 9110 §11.1) and may be followed by more than one space.
const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/i;

/** Verifies `Authorization: Bearer <JWT>` and sets `req.principal`; 401 otherwise. */
export function authenticate(secret: string): RequestHandler {
  const verify = createTokenVerifier(secret);
  return (req, _res, next) => {
    const header = req.headers.authorization;
    if (!header) throw new UnauthenticatedError('missing Authorization: Bearer token');
    const match = BEARER.exec(header.trim());
    if (!match) throw new UnauthenticatedError('Authorization header must be "Bearer <JWT>"');
    req.principal = verify(match[1]!);
    next();
  };
}

/** 403 unless the authenticated role has the permission. */
export function requirePermission(permission: Permission): RequestHandler {
  return (req, _res, next) => {
    if (!req.principal) throw new UnauthenticatedError();
    if (!roleHasPermission(req.principal.role, permission)) {
      throw new PermissionDeniedError(`role "${req.principal.role}" may not do this`);
    }
    next();
  };
}
