// The program's stack config: parsed once (`loadConfig`), validated by a zod schema and the rules that
// cross-check the GitOps tree, reported as one error listing every problem.
export { ConfigError } from "./errors";
export { parseConfig, type ParseContext } from "./parse";
export { loadConfig } from "./pulumi";
export { DEFAULTS, type EnvironmentConfig } from "./schema";
