// Lint rules, including the ones that keep the layers apart (see ../shared/STYLE.md). From the
// bottom up: src/model (plain types), src/errors.ts and src/error-catalog.ts; src/storage (Mongoose,
// returns model types); the domain (src/jobs, src/schedules, src/assets, src/payouts, src/auth); the
// HTTP contract (src/contract: schemas and the route table, built from the model and the schema
// definitions only); src/http (routers, mounted from the contract); the wiring and main-*.ts on top. Nothing imports anything above it. Each directory has ONE entry here,
// since a later `no-restricted-imports` for the same file replaces an earlier one.
import tseslint from 'typescript-eslint';

const HTTP = { group: ['**/http/*', '**/http', 'express', 'express-*'], message: 'only src/http knows HTTP transport' };
const STORAGE_MODELS = { group: ['**/storage/*-model', '**/storage/*-model.ts'], message: 'the domain reaches stored documents only through repositories, which return src/model types' };
const DOMAIN = {
  group: ['**/jobs/*', '**/schedules/*', '**/assets/*', '**/payouts/*', '**/auth/*', '**/callbacks/*', '**/tracing/*', '**/worker/*', '**/client/*', '**/metrics/*', '**/config', '**/wiring'],
  message: 'storage sits below the domain: it imports only src/model and src/errors',
};
const ABOVE_MODEL = { group: ['../*', '!../model', '!../model/*'], message: 'src/model is the bottom layer: it imports only src/model' };

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'packages/*/dist/', 'coverage/', 'tools/', 'src/dashboard/static/vendor/', 'test-artifacts/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/model/**/*.ts', 'src/errors.ts', 'src/error-catalog.ts', 'src/periodic-task.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: ['mongoose', 'mongodb', 'express'], patterns: [ABOVE_MODEL] }] },
  },
  {
    files: ['src/storage/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [DOMAIN, HTTP] }] },
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
    files: ['src/jobs/**/*.ts', 'src/schedules/**/*.ts', 'src/assets/**/*.ts', 'src/payouts/**/*.ts', 'src/auth/**/*.ts', 'src/callbacks/**/*.ts', 'src/tracing/**/*.ts', 'src/worker/**/*.ts', 'src/metrics/**/*.ts'],
    // A type-only import of Mongoose's Connection is allowed: composition functions receive one and hand it to repositories.
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'mongoose', allowTypeImports: true, message: 'the domain works through repositories' },
            { name: 'mongodb', allowTypeImports: true, message: 'the domain works through repositories' },
          ],
          patterns: [HTTP, STORAGE_MODELS],
        },
      ],
    },
  },
  {
    // The client is also the @jobs/client package (packages/client): at run time it imports only its
    // own files and the error catalog, so the package carries no schema code and no dependency; the
    // contract, the model and the job types its types are read from are imported as types only.
    files: ['src/client/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./|\\.\\./error-catalog$)',
              allowTypeImports: true,
              message: 'src/client imports at run time only its own files and ../error-catalog (it is the @jobs/client package); import the contract, the model and packages with `import type`',
            },
          ],
        },
      ],
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
