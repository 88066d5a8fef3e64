import { z } from 'zod';

import { ERROR_CODES } from '../error-catalog';

/** One failing input field of a 422 (`validation_error`, `payload_invalid`). */
export const fieldError = z.strictObject({
  field: z.string().meta({ examples: ['query.per_page'] }),
  message: z.string(),
});

/** The error shape of every 4xx and 5xx answer. */
export const errorBody = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      details: z.array(fieldError).optional().meta({ description: 'For 422s: one entry per failing field.' }),
    }),
  })
  .meta({ description: 'Every error answer: `{ "error": { "code", "message", "details"? } }`.' });

export type ErrorBody = z.output<typeof errorBody>;
