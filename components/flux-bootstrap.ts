import { createHash } from "crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { type FluxObjectRef, followBranch, PLATFORM_SOURCE_NAME } from "../lib/gitops-tree";
import { FLUX_DEFAULT_COMPONENTS } from "../lib/project";
import { durationSeconds } from "../lib/validators";
import { PlatformRepository, PlatformRepositorySecret } from "./platform-repository-secret";

export const FLUX_OPERATOR_CHART = "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator";
export const FLUX_NAMESPACE = "flux-system";
/** The Flux Operator reconciles only a FluxInstance with this name. */
export const FLUX_INSTANCE_NAME = "flux";

/** The controllers a FluxInstance may install (the enum of `spec.components` in its CRD). */
export const FLUX_COMPONENTS = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "source-watcher",
] as const;
export type FluxComponent = (typeof FLUX_COMPONENTS)[number];

/** What an omitted argument means; the stack config's defaults are these too. */
export const FLUX_DEFAULTS = {
    registry: "ghcr.io/fluxcd",
    syncInterval: "1m",
    readyTimeout: "10m",
    username: "git",
    /** The operator's own default set, stated so the stack config can show and validate it. */
    components: [...FLUX_DEFAULT_COMPONENTS] satisfies FluxComponent[],
} as const;

/** The root sync: the Git repository, branch and folder the whole cluster is reconciled from. */
export interface RootSync {
    /** HTTPS URL of the Git repository. */
    url: string;
    /** Branch to follow; the FluxInstance gets `refs/heads/<branch>`. */
    branch: string;
    /**
     * One commit of that branch to stay on instead of following its head: the root sync and, when the
     * platform repository is Git, the cluster folder's `platform` source (retargeted at its URL) are pinned
     * to it, so what runs is exactly that commit's tree. @default none: the branch head
     */
    commit?: string;
    /** Folder in the repository, e.g. `clusters/development`. */
    path: string;
    /** User name sent with the token. @default "git" */
    username?: string;
    /** How often Flux pulls. @default "1m" */
    interval?: string;
}

export interface FluxBootstrapArgs {
    /** Version of the flux-operator Helm chart (exact). */
    operatorVersion: string;
    /** Flux distribution version or semver range, e.g. "2.x" or "2.8.8". */
    version: string;
    /** Registry the Flux controller images come from. @default "ghcr.io/fluxcd" */
    registry?: string;
    /** Controllers to install. @default the operator's default: source, kustomize, helm and notification */
    components?: FluxComponent[];
    /** `FluxInstance.spec.cluster.type`: the distribution Flux tunes itself for. @default "kubernetes" */
    clusterType?: "kubernetes" | "aws";
    sync: RootSync;
    /** Token for the root sync and the platform repository. Secret. */
    token: pulumi.Input<string>;
    /** The platform repository; its secret exists before the first sync so the first reconcile succeeds. */
    platformRepository: PlatformRepository;
    /**
     * How long `pulumi up` waits for Flux to report Ready: the FluxInstance, and through it the root sync
     * and every Kustomization the root sync applies. A Go duration; "0s" does not wait. @default "10m"
     */
    readyTimeout?: string;
}

/** The root Kustomization the operator generates for `sync` (flux-operator internal/builder/templates.go). */
const ROOT_SYNC_NAME = "flux-system";

/**
 * What pins a stack to one commit: a JSON patch of the operator's root GitRepository (the operator renders
 * `ref.name: refs/heads/<branch>` from `sync.ref`, internal/builder/templates.go; a ref of branch and commit
 * checks that commit out of that branch, source-controller api/v1 GitRepositoryRef), and, for a Git
 * platform repository, `spec.patches` for the root Kustomization that retarget the folder's `platform`
 * GitRepository at the same URL and commit: the same retarget a sandbox fork writes into its folder
 * (lib/gitops-tree.ts `followBranch`), applied by Flux because the commit under test cannot carry it.
 */
function pinnedToCommit(args: FluxBootstrapArgs, commit: string) {
    const ref = { branch: args.sync.branch, commit };
    const json = (ops: { op: string; path: string; value: unknown }[]) => ops.map((o) => `- ${JSON.stringify(o)}`).join("\n") + "\n";
    const rootSource = { target: { kind: "GitRepository", name: ROOT_SYNC_NAME }, patch: json([{ op: "replace", path: "/spec/ref", value: ref }]) };
    if (args.platformRepository.type !== "git") return { rootSource, rootKustomization: [] };
    const platform = json([
        { op: "replace", path: "/spec/url", value: args.platformRepository.url },
        { op: "replace", path: "/spec/ref", value: followBranch("GitRepository", {}, ref) },
    ]);
    const rootKustomization = [
        "  patches:",
        `    - target: { kind: GitRepository, name: ${PLATFORM_SOURCE_NAME}, namespace: ${FLUX_NAMESPACE} }`,
        "      patch: |",
        ...platform
            .trimEnd()
            .split("\n")
            .map((l) => `        ${l}`),
    ];
    return { rootSource, rootKustomization };
}

/** The FluxInstance spec for the args: pure, so tests and the CRD schema check can read it directly. */
export function fluxInstanceSpec(args: FluxBootstrapArgs, pullSecret: string) {
    const readyTimeout = args.readyTimeout ?? FLUX_DEFAULTS.readyTimeout;
    // The operator health-checks what it applies, the root sync included (`wait`, its default; see
    // internal/controller/fluxinstance_controller.go). The root Kustomization itself has no `wait`, so it
    // would be Ready before the platform layers it applies: with this patch, its Ready (and so the
    // FluxInstance's) means every layer is Ready.
    const rootWaits = durationSeconds(readyTimeout) > 0;
    const pinned = args.sync.commit ? pinnedToCommit(args, args.sync.commit) : undefined;
    const rootSpec = [...(rootWaits ? ["  wait: true", `  timeout: ${readyTimeout}`] : []), ...(pinned?.rootKustomization ?? [])];
    const patches = [
        ...(rootSpec.length > 0
            ? [
                  {
                      target: { kind: "Kustomization", name: ROOT_SYNC_NAME },
                      patch: [
                          "apiVersion: kustomize.toolkit.fluxcd.io/v1",
                          "kind: Kustomization",
                          "metadata:",
                          `  name: ${ROOT_SYNC_NAME}`,
                          "spec:",
                          ...rootSpec,
                          "",
                      ].join("\n"),
                  },
              ]
            : []),
        ...(pinned ? [pinned.rootSource] : []),
    ];
    return {
        distribution: { version: args.version, registry: args.registry ?? FLUX_DEFAULTS.registry },
        wait: true,
        ...(patches.length > 0 ? { kustomize: { patches } } : {}),
        ...(args.components ? { components: args.components } : {}),
        cluster: { type: args.clusterType ?? "kubernetes", networkPolicy: true, domain: "cluster.local" },
        sync: {
            kind: "GitRepository",
            url: args.sync.url,
            ref: `refs/heads/${args.sync.branch}`,
            path: args.sync.path,
            pullSecret,
            interval: args.sync.interval ?? FLUX_DEFAULTS.syncInterval,
        },
    };
}

/**
 * The operator's own health check of what it applies gets the readiness budget. `pulumi up` does its own
 * waiting (FluxReady), not pulumi-kubernetes' `pulumi.com/waitFor`, which would sit out the whole timeout
 * on a failed sync and then say only that it timed out (see flux-ready-provider.ts).
 */
export function fluxInstanceAnnotations(readyTimeout: string = FLUX_DEFAULTS.readyTimeout): Record<string, string> {
    return durationSeconds(readyTimeout) > 0 ? { "fluxcd.controlplane.io/reconcileTimeout": readyTimeout } : {};
}

/**
 * What must be Ready before `pulumi up` ends, causes first: the root sync's GitRepository, the cluster
 * folder's own objects (sources, then layers in dependsOn order), the root Kustomization (which waits for
 * what it applied) and the FluxInstance, whose Ready sums it all up.
 */
export function fluxReadyOrder(folder: FluxObjectRef[]): FluxObjectRef[] {
    const root = { namespace: FLUX_NAMESPACE, name: ROOT_SYNC_NAME };
    return [
        { apiVersion: "source.toolkit.fluxcd.io/v1", kind: "GitRepository", ...root },
        ...folder,
        { apiVersion: "kustomize.toolkit.fluxcd.io/v1", kind: "Kustomization", ...root },
        { apiVersion: "fluxcd.controlplane.io/v1", kind: "FluxInstance", namespace: FLUX_NAMESPACE, name: FLUX_INSTANCE_NAME },
    ];
}

/**
 * Flux, installed the Flux Operator way: namespace, then the credentials, then the operator chart, then
 * the FluxInstance whose `sync` is the root sync. Deleting runs the other way round, so the operator is
 * still there to uninstall Flux when its FluxInstance goes.
 */
export class FluxBootstrap extends pulumi.ComponentResource {
    readonly namespace: pulumi.Output<string>;
    readonly instanceName: pulumi.Output<string>;
    readonly syncRef: string;
    readonly syncPath: string;
    readonly platformSecretName: pulumi.Output<string>;
    /**
     * A digest of what the operator is asked to install and sync, and of what Flux pulls with (the
     * platform repository and the token): changes when Flux must settle again. Secret, as it derives from
     * the token.
     */
    readonly revision: pulumi.Output<string>;

    constructor(name: string, args: FluxBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:FluxBootstrap", name, {}, opts);

        const namespace = new k8s.core.v1.Namespace(`${name}-namespace`, { metadata: { name: FLUX_NAMESPACE } }, { parent: this });
        const ns = namespace.metadata.name;

        const syncCredentials = new k8s.core.v1.Secret(
            `${name}-sync-credentials`,
            {
                metadata: { name: FLUX_NAMESPACE, namespace: ns },
                type: "kubernetes.io/basic-auth",
                stringData: { username: args.sync.username ?? FLUX_DEFAULTS.username, password: pulumi.secret(args.token) },
            },
            { parent: this, dependsOn: [namespace] },
        );

        const platformSecret = new PlatformRepositorySecret(
            `${name}-platform-repository`,
            { repository: args.platformRepository, token: args.token, namespace: ns },
            { parent: this, dependsOn: [namespace] },
        );

        const operator = new k8s.helm.v3.Release(
            `${name}-operator`,
            {
                name: "flux-operator",
                chart: FLUX_OPERATOR_CHART,
                version: args.operatorVersion,
                namespace: ns,
                createNamespace: false,
            },
            { parent: this, dependsOn: [syncCredentials, platformSecret] },
        );

        const spec = fluxInstanceSpec(args, FLUX_NAMESPACE);
        const instance = new k8s.apiextensions.CustomResource(
            `${name}-instance`,
            {
                apiVersion: "fluxcd.controlplane.io/v1",
                kind: "FluxInstance",
                metadata: { name: FLUX_INSTANCE_NAME, namespace: ns, annotations: fluxInstanceAnnotations(args.readyTimeout) },
                spec,
            },
            { parent: this, dependsOn: [operator] },
        );

        this.namespace = ns;
        this.instanceName = instance.metadata.name;
        this.syncRef = `refs/heads/${args.sync.branch}`;
        this.syncPath = args.sync.path;
        this.platformSecretName = platformSecret.secretName;
        this.revision = pulumi.secret(args.token).apply((token) =>
            createHash("sha256")
                .update(
                    JSON.stringify({
                        operator: args.operatorVersion,
                        spec,
                        platform: args.platformRepository,
                        token: createHash("sha256").update(token).digest("hex"),
                    }),
                )
                .digest("hex")
                .slice(0, 16),
        );
        this.registerOutputs({
            namespace: this.namespace,
            instanceName: this.instanceName,
            syncRef: this.syncRef,
            syncPath: this.syncPath,
            platformSecretName: this.platformSecretName,
            revision: this.revision,
        });
    }
}
