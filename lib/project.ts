import * as path from "path";

// Facts about this repository that the program, the tools, the policy pack and the tests all use;
// each has this one home.

/** The repository root: everything Flux syncs (`clusters/`, `platform/`) lives under it. */
export const REPO_ROOT = path.resolve(__dirname, "..");

/** The config namespace: the project name in Pulumi.yaml. */
export const PROJECT = "gitops-platform";

/** The long-lived environments; any other environment name is a sandbox. */
export const ENVIRONMENTS = ["development", "staging", "production"] as const;
export type Tier = (typeof ENVIRONMENTS)[number] | "sandbox";

/** The tier of an environment name. */
export function tierOf(environment: string): Tier {
    return (ENVIRONMENTS as readonly string[]).includes(environment) ? (environment as Tier) : "sandbox";
}

/** The branch the root sync follows unless a stack says otherwise. */
export const DEFAULT_BRANCH = "main";

/** The Flux versions a stack that names none allows: the newest Flux 2 its flux-operator ships. */
export const DEFAULT_FLUX_VERSION = "2.x";

/** The folder an environment's root sync reads unless its stack says otherwise. */
export function defaultSyncPath(environment: string): string {
    return `clusters/${environment}`;
}

/** Where the token comes from when the stack holds none. */
export const TOKEN_ENV_VAR = "GITLAB_TOKEN";

/** What a kind cluster gets when its stack file says nothing: KindCluster's defaults and the stack config's. */
export const KIND_CLUSTER_DEFAULTS = {
    // kind supports the node images of its own release only: this is kind v0.31.0's default image, by
    // digest (kind's pkg/apis/config/defaults/image.go at tag v0.31.0). The provider checks `kind version`.
    nodeImage: "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
    controlPlaneNodes: 1,
    workers: 0,
} as const;

/** The kind release whose node image is the default; `kind version` must report it. */
export const KIND_RELEASE = "v0.31";

/** How long a sandbox is meant to live when its stack file says nothing; `expire` destroys it after. */
export const DEFAULT_SANDBOX_TTL = "7d";

/** The controllers flux-operator installs when a FluxInstance names none (its own default set). */
export const FLUX_DEFAULT_COMPONENTS = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"] as const;

/** The flux-operator chart a stack installs unless it says otherwise: the release whose data is vendored. */
export const DEFAULT_OPERATOR_VERSION = "0.58.0";
