/** Tests run TypeScript through SWC; `npm run typecheck` does the type checking. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  // The renderer page's own npm package lives under test/renderers/app; it holds no tests of ours.
  modulePathIgnorePatterns: ['<rootDir>/test/renderers/app/'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testTimeout: 60000,
  // On a 2-core machine Jest runs every file inside its own main process, one after the other, and what each
  // file loads (the FHIR definitions, servers' modules) adds up past Node's heap limit. With a limit the
  // files run in one worker process, still one at a time, which is replaced once it has grown past it.
  workerIdleMemoryLimit: '1536MB',
};
