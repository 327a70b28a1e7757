/** Type checking is `tsc --noEmit` in `npm test`; jest only transpiles, which keeps the suite fast. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test", "<rootDir>/components", "<rootDir>/infra", "<rootDir>/policy", "<rootDir>/tools"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { diagnostics: false }],
  },
  testTimeout: 20000,
  // Two cores: one worker per core; the default (cores - 1) runs the heavy files one after another.
  maxWorkers: 2,
};
