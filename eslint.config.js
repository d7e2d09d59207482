import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.hearth/', 'test-results/', 'bench/out/', '.scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['demo/public/**/*.js', 'aggregator/dashboard/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly', document: 'readonly', fetch: 'readonly', console: 'readonly', setInterval: 'readonly', setTimeout: 'readonly',
        location: 'readonly', sessionStorage: 'readonly', WebSocket: 'readonly', URL: 'readonly',
      },
    },
  },
  {
    files: ['bin/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
)
