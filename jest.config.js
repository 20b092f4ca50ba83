const jestJupyterLab = require('@jupyterlab/testutils/lib/jest-config');

// ES-module packages that jest must transpile (JupyterLab ships ESM).
const esModules = [
  '@codemirror',
  '@jupyter/ydoc',
  '@jupyter/react-components',
  '@jupyter/web-components',
  '@microsoft/fast',
  '@jupyterlab/',
  'exenv-es6',
  'lib0',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

const baseConfig = jestJupyterLab(__dirname);

module.exports = {
  ...baseConfig,
  automock: false,
  collectCoverageFrom: [
    'labextension/src/**/*.{ts,tsx}',
    '!labextension/src/**/*.d.ts',
    '!labextension/src/**/.ipynb_checkpoints/*'
  ],
  coverageReporters: ['lcov', 'text'],
  testRegex: 'labextension/src/.*/.*.spec.ts[x]?$',
  // A venv inside the checkout (CI) and the built extension hold copies of
  // package.json files: keep jest's module map (haste) and test search out.
  modulePathIgnorePatterns: [
    '<rootDir>/.venv/',
    '<rootDir>/jupyter_mlops/labextension/'
  ],
  testPathIgnorePatterns: [
    '<rootDir>/node_modules/',
    '<rootDir>/.venv/',
    '<rootDir>/jupyter_mlops/labextension/'
  ],
  transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`]
};
