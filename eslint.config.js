// Lint rules that catch bugs the type checker does not: promises nobody awaits or that land where a
// void callback is expected (a swallowed rejection), and value imports used only as types.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // types/: declarations of third-party and platform APIs, no code.
  { ignores: ['node_modules/', 'dist/', 'web/dist/', 'coverage/', 'test/vectors/', 'web/sw/sw.js', 'types/', 'test/gates/.probe-*/'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);
