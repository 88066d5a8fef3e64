import { z } from 'zod';

import { ValidationError, type FieldError } from '../errors';

const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ID_MESSAGE = 'must be 1-128 characters: letters, digits, ".", "_", ":" or "-"';

function idString(): z.ZodString {
  return z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).regex(ID, ID_MESSAGE);
}

/** The one schema of a new escrow, used by the HTTP route and by the service for every other caller. */
export const escrowInputSchema = z.strictObject({
  /** Generated (`escrow_` + hex) when omitted. */
  escrowId: idString().optional(),
  batchId: idString(),
  amount: z
    .number({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be an integer number of minor units') })
    .int()
    .positive({ error: 'must be greater than 0' }),
  currency: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code: three uppercase letters'),
  payee: idString(),
});

export type EscrowInput = z.infer<typeof escrowInputSchema>;

/** Parses a new escrow; 422 `validation_error` lists every failing field as `{ field, message }`. */
export function parseEscrowInput(raw: unknown): EscrowInput {
  const result = escrowInputSchema.safeParse(raw);
  if (result.success) return result.data;
  const details: FieldError[] = result.error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ field: key, message: 'is not a known field' }));
    if (issue.path.length === 0) return [{ field: 'body', message: 'must be a JSON object' }];
    return [{ field: issue.path.map(String).join('.'), message: issue.message }];
  });
  throw new ValidationError('the escrow is invalid', details);
}
