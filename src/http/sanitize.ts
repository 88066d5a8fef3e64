import type { RequestHandler } from 'express';

import { ValidationError } from '../errors';

const MAX_DEPTH = 32;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Rejects request values that could change the meaning of a database query or pollute prototypes:
 * keys starting with `$`, keys containing `.`, prototype keys, and nesting deeper than MAX_DEPTH.
 * Runs before any handler, so such values never reach a query.
 */
export const rejectUnsafeKeys: RequestHandler = (req, _res, next) => {
  const problem = findUnsafeKey(req.body, 'body', 0) ?? findUnsafeKey(req.query, 'query', 0);
  if (problem) throw new ValidationError(problem.message, [problem]);
  next();
};

function findUnsafeKey(value: unknown, path: string, depth: number): { field: string; message: string } | undefined {
  if (depth > MAX_DEPTH) return { field: path, message: `nesting deeper than ${MAX_DEPTH} levels is not accepted` };
  if (value === null || typeof value !== 'object') return undefined;
  if (Buffer.isBuffer(value)) return undefined;
  for (const key of Object.keys(value)) {
    const field = `${path}.${key}`;
    if (key.startsWith('$') || key.includes('.') || FORBIDDEN_KEYS.has(key)) {
      return { field, message: `key "${key}" is not accepted (no "$" prefix, "." or prototype keys)` };
    }
    const nested = findUnsafeKey((value as Record<string, unknown>)[key], field, depth + 1);
    if (nested) return nested;
  }
  return undefined;
}
