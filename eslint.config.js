// Lint rules: typescript-eslint's recommended set over the sources and tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The benchmark runs without vitest: it and the support it uses must not import it.
    files: ['bench/**/*.ts', 'cluster-tests/support/*.ts'],
    ignores: ['cluster-tests/support/vitest.ts', 'cluster-tests/support/index.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vitest', message: 'only cluster-tests/support/vitest.ts may use vitest: the benchmark runs this code without it' }],
          patterns: [{ group: ['**/support/vitest.js', '**/support/index.js'], message: 'import the support module itself: vitest.ts and index.ts need vitest' }],
        },
      ],
    },
  },
  {
    files: ['bin/**/*.js', 'scripts/**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { globals: globals.node, sourceType: 'commonjs' },
  },
);
