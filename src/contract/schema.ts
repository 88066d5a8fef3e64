import { z } from 'zod';

/**
 * Building blocks of the HTTP contract. Request schemas validate what clients send (strings in the
 * query, JSON bodies); response schemas describe the wire exactly (dates as ISO-8601 strings, strict
 * objects, so a field added on one side only is caught by the conformance test).
 */

/** JSON Schema as the OpenAPI document carries it. */
export type JsonSchema = { [key: string]: unknown };

/**
 * How a request schema is documented when its JSON Schema would describe the parsing rather than
 * the value (a query string parsed into a number): the generator uses this instead.
 */
const documentedAs = new WeakMap<z.ZodType, JsonSchema>();

export function documentAs<S extends z.ZodType>(schema: S, json: JsonSchema): S {
  documentedAs.set(schema, json);
  return schema;
}

export function documentedJsonOf(schema: z.ZodType): JsonSchema | undefined {
  return documentedAs.get(schema);
}

export const JOB_ID_PATTERN = /^job_[0-9a-f]{24}$/;
export const ASSET_ID_PATTERN = /^asset_[0-9a-f]{24}$/;

export const jobId = z
  .string()
  .regex(JOB_ID_PATTERN, 'must be a job id (job_ + 24 hex digits)')
  .meta({ examples: ['job_65f0c2a1b3d4e5f60718293a'] });

export const assetId = z
  .string()
  .regex(ASSET_ID_PATTERN, 'must be "asset_" followed by 24 lowercase hex digits')
  .meta({ examples: ['asset_65f0c2a1b3d4e5f60718293a'] });

/** A date on the wire: what `Date.prototype.toISOString` writes (UTC, milliseconds). */
export const wireDate = z.iso.datetime();
export const nullableWireDate = wireDate.nullable();

/** A date a client sends: ISO-8601 with `Z` or an offset. */
export function requestDate(field: string) {
  return z.iso.datetime({ offset: true, error: `${field} must be an ISO-8601 date-time` });
}

/** Any JSON value (payloads, results). */
export const anyJson = z.unknown().meta({ description: 'Any JSON value.' });

/** A query parameter holding a whole number in [min, max], documented as the integer it is. */
export function wholeNumberQuery(field: string, min: number, max: number, defaultValue?: number) {
  const schema = z
    .string()
    // Up to 16 digits: every safe integer (a larger one is refused by the bounds, not rounded).
    .regex(/^\d{1,16}$/, `${field} must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${field} must be from ${min} to ${max}`).max(max, `${field} must be from ${min} to ${max}`));
  return documentAs(schema, { type: 'integer', minimum: min, maximum: max, ...(defaultValue === undefined ? {} : { default: defaultValue }) });
}

/** `a,b` → ['a', 'b'] (duplicates and blanks dropped). */
export const commaList = documentAs(
  z
    .string()
    .max(2_000)
    .transform((raw) => [...new Set(raw.split(',').map((s) => s.trim()).filter(Boolean))]),
  { type: 'string', maxLength: 2_000, description: 'A comma-separated list.' },
);

/** Dates to the wire, in the mappings typed against the response schemas. */
export function toWireDate(date: Date): string {
  return date.toISOString();
}

export function toWireDateOrNull(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}
