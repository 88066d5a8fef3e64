// Lint rules, including the ones that keep the layers apart (see ../shared/STYLE.md):
// routers never import Mongoose or the driver; the domain never imports Express.
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
      'no-restricted-imports': ['error', { paths: ['express', 'express-validator'], patterns: [{ group: ['**/http/*', '**/http'], message: 'the domain knows nothing of HTTP transport' }] }],
    },
  },
);
