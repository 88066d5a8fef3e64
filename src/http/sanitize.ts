import type { RequestHandler } from 'express';

import { PayloadInvalidError, ValidationError } from '../errors';

const MAX_DEPTH = 32;
const MAX_SHOWN_KEY = 64;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Rejects request values that could change the meaning of a database query or pollute prototypes:
 * keys starting with `$`, keys containing `.` or NUL, prototype keys, and nesting deeper than MAX_DEPTH.
 * The query is checked for every authenticated request before any route; a body right after it is
 * parsed (src/http/body.ts), so such values never reach a handler or a query.
 */
export const rejectUnsafeQueryKeys: RequestHandler = (req, _res, next) => {
  next(unsafeKeyError(req.query, 'query'));
};

/**
 * The 422 for the first unsafe key in a request part, or undefined when there is none.
 * `itemsJudgedAlone`: a top-level array whose items the route checks one by one with this same
 * function (a batch whose bad item must not fail the others); they are skipped here.
 */
export function unsafeKeyError(value: unknown, path: 'body' | 'query', options: { itemsJudgedAlone?: string } = {}): ValidationError | PayloadInvalidError | undefined {
  const problem = findUnsafeKey(value, path, 0, options.itemsJudgedAlone);
  if (!problem) return undefined;
  // In a body's `payload` (a job's, on every route that takes one) it is the payload's problem:
  // 422 payload_invalid naming the field, as a failure of its type's schema is (API.md).
  const payload = `${path}.payload`;
  if (path === 'body' && (problem.field === payload || problem.field.startsWith(`${payload}.`))) {
    return new PayloadInvalidError([{ field: problem.field.slice(path.length + 1), message: problem.message }]);
  }
  return new ValidationError(problem.message, [problem]);
}

function findUnsafeKey(value: unknown, path: string, depth: number, skipArray?: string): { field: string; message: string } | undefined {
  if (depth > MAX_DEPTH) return { field: path, message: `nesting deeper than ${MAX_DEPTH} levels is not accepted` };
  if (value === null || typeof value !== 'object') return undefined;
  if (Buffer.isBuffer(value)) return undefined;
  for (const key of Object.keys(value)) {
    if (key === skipArray && Array.isArray((value as Record<string, unknown>)[key])) continue;
    const field = `${path}.${key}`;
    // BSON cannot store a key with a NUL character: the driver would throw at the write (a 500).
    if (key.startsWith('$') || key.includes('.') || key.includes('\u0000') || FORBIDDEN_KEYS.has(key)) {
      // Echo at most a short prefix of a hostile key, so an error body never mirrors a huge one.
      const shown = key.length > MAX_SHOWN_KEY ? `${key.slice(0, MAX_SHOWN_KEY)}…` : key;
      return { field: `${path}.${shown}`, message: `key "${shown}" is not accepted (no "$" prefix, ".", NUL or prototype keys)` };
    }
    const nested = findUnsafeKey((value as Record<string, unknown>)[key], field, depth + 1);
    if (nested) return nested;
  }
  return undefined;
}
