// `npm test` lints with this after the type-check: ESLint's and typescript-eslint's recommended rules,
// the type-aware ones included, so that a promise nobody awaits or catches fails the build.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'data/', 'test-artifacts/', '.tmp/', 'test/fixtures/typed-session/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    rules: {
      // node:test's test(), it() and describe() return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }],
      }],
      // A leading underscore names what is left out on purpose: a rest sibling's omitted field, an
      // unused parameter of a callback whose shape is fixed.
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true,
      }],
      // A caught error is passed on as it came (its type is `unknown`): what the callee threw.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // Stores and adapters implement async interfaces with methods that may not await: `async` keeps
      // a throw a rejection, as their callers expect.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // The tests read JSON answers as untyped values and assert on them: a wrong shape fails the assertion.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // The shop's browser scripts.
    files: ['apps/shop/public/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
);
