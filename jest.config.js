/**
 * Type checking is its own step of `npm test` (TypeScript 7, tsconfig.json); jest only transpiles, with
 * swc, which keeps the suite fast.
 */
module.exports = {
    testEnvironment: "node",
    roots: ["<rootDir>/test", "<rootDir>/components", "<rootDir>/infra", "<rootDir>/lib", "<rootDir>/policy", "<rootDir>/tools"],
    testMatch: ["**/*.test.ts"],
    transform: {
        "^.+\\.ts$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }],
    },
    setupFiles: ["<rootDir>/test/support/jest-setup.ts"],
    testTimeout: 20000,
    // Two cores: one worker per core; the default (cores - 1) runs the heavy files one after another.
    maxWorkers: 2,
};
