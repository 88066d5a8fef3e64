import { z } from 'zod';

import { DEFAULT_PER_PAGE, MAX_PER_PAGE } from './admin-routes';

const wholeNumber = (field: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, `${field} must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${field} must be from ${min} to ${max}`).max(max, `${field} must be from ${min} to ${max}`));

/** `?page=&per_page=` as on `/admin/jobs/queue`: page ≥ 1, per_page 1–100 (default 20). */
export const paginationQuery = z.object({
  page: wholeNumber('page', 1, 1_000_000).default(1),
  per_page: wholeNumber('per_page', 1, MAX_PER_PAGE).default(DEFAULT_PER_PAGE),
});

/** The `meta` of a paginated answer, as on `/admin/jobs/queue`. */
export function pageMeta(page: { page: number; perPage: number; total: number; totalPages: number }): Record<string, number> {
  return { page: page.page, per_page: page.perPage, total: page.total, total_pages: page.totalPages };
}
