// Lint rules, including the ones that keep the layers apart (see ../shared/STYLE.md):
// routers never import Mongoose or the driver; the domain never imports Express; the HTTP contract
// (src/contract) is built from the model and the schemas only, never from transport or storage.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', 'tools/', 'src/dashboard/static/vendor/', 'test-artifacts/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/http/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: ['mongoose', 'mongodb'], patterns: [{ group: ['**/storage/*', '**/storage'], message: 'routers reach storage only through services' }] },
      ],
    },
  },
  {
    files: ['src/jobs/**/*.ts', 'src/storage/**/*.ts', 'src/assets/**/*.ts', 'src/payouts/**/*.ts', 'src/worker/**/*.ts', 'src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['express'], patterns: [{ group: ['**/http/*', '**/http'], message: 'the domain knows nothing of HTTP transport' }] }],
    },
  },
  {
    // The contract imports only the model, the error catalog, zod, and the definitions its schemas are
    // built from: job types (payload schemas), the schedules' cron and name checks, the escrow input.
    files: ['src/contract/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(?!model/[a-z-]+$|error-catalog$|jobs/job-types$|schedules/cron$|schedules/schedule$|payouts/escrow-input$)',
              message: 'src/contract imports only src/model, the error catalog and the schema definitions (job types, schedule checks, escrow input): never http, storage or a service',
            },
            { regex: '^(?!zod$|\\.)', message: 'src/contract uses no package but zod (no express, mongoose or node built-ins)' },
          ],
        },
      ],
    },
  },
);
