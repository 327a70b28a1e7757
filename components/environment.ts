import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { EnvironmentConfig } from "../infra/config";
import { FluxBootstrap } from "./flux-bootstrap";
import { KindCluster } from "./kind-cluster";

/** An environment is exactly its validated stack config; see `infra/config.ts` for every field. */
export type EnvironmentArgs = EnvironmentConfig;

/**
 * One environment end to end: its cluster, a Kubernetes provider for it, and Flux bootstrapped to sync
 * `clusters/<environment>` with the credentials the platform source needs.
 */
export class Environment extends pulumi.ComponentResource {
    readonly clusterName: pulumi.Output<string>;
    /** Admin kubeconfig (secret). */
    readonly kubeconfig: pulumi.Output<string>;
    readonly kubeContext: pulumi.Output<string>;
    /** What the FluxInstance syncs: the root of everything Git owns in this cluster. */
    readonly sync: { url: string; ref: string; path: string };
    /** How `clusters/<environment>` pulls the platform: a branch (GitRepository) or artifacts (OCIRepository). */
    readonly platformSourceKind: string;

    constructor(name: string, args: EnvironmentArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:Environment", name, {}, opts);

        // Production's cluster and Flux install are protected: `pulumi destroy` stops before touching them.
        const cluster = new KindCluster(
            `${name}-cluster`,
            {
                clusterName: args.cluster.name,
                nodeImage: args.cluster.nodeImage,
                controlPlaneNodes: args.cluster.controlPlaneNodes,
                workers: args.cluster.workers,
                portMappings: args.cluster.portMappings,
            },
            { parent: this, protect: args.protect },
        );

        const provider = new k8s.Provider(
            `${name}-kubernetes`,
            {
                kubeconfig: cluster.kubeconfig,
                // A sandbox or development cluster removed with `kind delete cluster` must not wedge
                // `pulumi destroy`; production never drops objects from state because its API is down.
                deleteUnreachable: args.tier !== "production",
            },
            { parent: this },
        );

        const flux = new FluxBootstrap(
            `${name}-flux`,
            {
                operatorVersion: args.flux.operatorVersion,
                version: args.flux.version,
                registry: args.flux.registry,
                components: args.flux.components,
                clusterType: "kubernetes",
                sync: { ...args.sync, interval: args.flux.syncInterval },
                token: args.token,
                platformRepository: args.platformRepository,
            },
            { parent: this, provider, protect: args.protect },
        );

        this.clusterName = cluster.clusterName;
        this.kubeconfig = cluster.kubeconfig;
        this.kubeContext = cluster.context;
        this.sync = { url: args.sync.url, ref: flux.syncRef, path: flux.syncPath };
        this.platformSourceKind = args.platformSourceKind;
        this.registerOutputs({
            clusterName: this.clusterName,
            kubeconfig: this.kubeconfig,
            kubeContext: this.kubeContext,
            sync: this.sync,
            platformSourceKind: this.platformSourceKind,
        });
    }
}
