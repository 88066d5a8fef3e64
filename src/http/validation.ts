import type { z } from 'zod';

import { ValidationError, type FieldError } from '../errors';

/** Parses a request part with its schema; 422 `validation_error` lists every failing field. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, part: 'body' | 'query' | 'params' | 'headers'): z.infer<S> {
  const result = schema.safeParse(value ?? (part === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const details: FieldError[] = result.error.issues.map((issue) => ({
    field: [part, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
  throw new ValidationError(`invalid request ${part}`, details);
}
