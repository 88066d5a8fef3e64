import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { renderApiReference } from '../src/contract/api-reference';

/** Writes docs/api.md from src/contract (`npm run docs:api`); the contract test fails when it is stale. */
export const API_REFERENCE_PATH = path.join(__dirname, '..', 'docs', 'api.md');

if (require.main === module) {
  writeFileSync(API_REFERENCE_PATH, renderApiReference());
  process.stdout.write(`wrote ${path.relative(process.cwd(), API_REFERENCE_PATH)}\n`);
}
