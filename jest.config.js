// Two projects: unit tests beside the code (no services) and e2e tests under test/ (PostgreSQL, chain, HTTP).
// npm test runs both; test/global-setup.ts starts a throwaway PostgreSQL unless TEST_DATABASE_URL is set.
const moduleNameMapper = {
  '^@lethe/(merkle|events|ledger|postgres|chain|unlearning|verifier|keystore|redact|artifacts)$': '<rootDir>/libs/$1/src/index.ts',
  // The replay audit: Node only (it trains on onnxruntime-node), so not in the verifier's index, which the portal bundles.
  '^@lethe/verifier/replay$': '<rootDir>/libs/verifier/src/replay.ts',
};
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
};
module.exports = {
  // Generous: a passing test is not slowed by it, and CI shares this machine (chain-client's suite took 10 s in a
  // CI run and 45 s at load 16). Waits inside tests have deadlines of their own (test/support/probe.ts).
  testTimeout: 300000,
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
      transform,
      moduleNameMapper,
      testEnvironment: 'node',
    },
    {
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      transform,
      moduleNameMapper,
      testEnvironment: 'node',
    },
  ],
};
