/** Jest runs TypeScript through SWC (decorator metadata on) and maps the @lib/* aliases. */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
      },
    ],
  },
  moduleNameMapper: {
    '^@lib/(contracts|config|queue|providers|media)$': '<rootDir>/libs/$1/src',
  },
  testTimeout: 60000,
  // Node's built-in fetch (undici) keeps idle keep-alive timers after the apps close, which
  // holds Jest open for minutes; real processes are checked to exit in processes.e2e-spec.ts.
  forceExit: true,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
