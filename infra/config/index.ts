// The program's stack config: parsed once (`loadConfig`), validated by a zod schema and the rules that
// cross-check the GitOps tree, reported as one error listing every problem.
export { ConfigError, type ConfigProblem } from "./errors";
export { parseConfig, type ParseContext } from "./parse";
export { loadConfig } from "./pulumi";
export {
    type AlertsConfig,
    type ClusterConfig,
    DEFAULTS,
    type EksClusterConfig,
    EKS_VERSIONS,
    type EnvironmentConfig,
    type FluxConfig,
    type KindClusterConfig,
    type PlatformRepositoryConfig,
    type SyncConfig,
} from "./schema";
