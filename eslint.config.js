// ESLint flat config: `make lint-js` runs `eslint static` (and tsc -p jsconfig.json for types).
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['static/vendor/'] },
  js.configs.recommended,
  {
    // The browser client: native ES modules, no build step.
    files: ['static/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: globals.browser,
    },
  },
  {
    files: ['eslint.config.js'],
    languageOptions: { globals: globals.node },
  },
];
