/** Tests run TypeScript through SWC; `npm run typecheck` does the type checking. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  // The renderer page's own npm package lives under test/renderers/app; it holds no tests of ours.
  modulePathIgnorePatterns: ['<rootDir>/test/renderers/app/'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testTimeout: 60000,
};
