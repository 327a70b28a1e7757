import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { EksClusterConfig, EnvironmentConfig, KindClusterConfig } from "../infra/config";
import { FluxAlerts } from "./flux-alerts";
import { FluxBootstrap } from "./flux-bootstrap";
import { FluxTeardown } from "./flux-teardown";
import { KindCluster } from "./kind-cluster";

/** An environment is exactly its validated stack config; see `infra/config.ts` for every field. */
export type EnvironmentArgs = EnvironmentConfig;

/** What Flux needs from a cluster, whichever backend made it. */
interface Cluster {
    clusterName: pulumi.Output<string>;
    kubeconfig: pulumi.Output<string>;
    kubeContext: pulumi.Output<string>;
    /** Resources that must be ready before workloads can be scheduled (EKS: the node group). */
    readyFor: pulumi.Resource[];
}

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
        const clusterOpts = { parent: this, protect: args.protect };
        const cluster =
            args.cluster.backend === "kind"
                ? kindCluster(`${name}-cluster`, args.cluster, clusterOpts)
                : eksCluster(`${name}-cluster`, args.cluster, args, clusterOpts);

        const provider = new k8s.Provider(
            `${name}-kubernetes`,
            {
                kubeconfig: cluster.kubeconfig,
                // A sandbox or development cluster removed with `kind delete cluster` must not wedge
                // `pulumi destroy`; production never drops objects from state because its API is down.
                deleteUnreachable: args.tier !== "production",
            },
            { parent: this, dependsOn: cluster.readyFor },
        );

        const flux = new FluxBootstrap(
            `${name}-flux`,
            {
                operatorVersion: args.flux.operatorVersion,
                version: args.flux.version,
                registry: args.flux.registry,
                components: args.flux.components,
                clusterType: args.cluster.backend === "eks" ? "aws" : "kubernetes",
                sync: { ...args.sync, interval: args.flux.syncInterval },
                token: args.token,
                platformRepository: args.platformRepository,
            },
            { parent: this, provider, protect: args.protect },
        );

        if (args.alerts) {
            new FluxAlerts(
                `${name}-alerts`,
                {
                    type: args.alerts.type,
                    channel: args.alerts.channel,
                    severity: args.alerts.severity,
                    webhookUrl: args.alerts.webhookUrl,
                    helmReleaseNamespaces: args.alerts.helmReleaseNamespaces,
                },
                // The notification CRDs arrive with Flux: after the FluxInstance.
                { parent: this, provider, dependsOn: [flux] },
            );
        }

        // Depends on the whole Flux install, so `pulumi destroy` runs it first: it deletes what Flux synced,
        // in finaliser-safe order, while Flux is still there to finalise it.
        new FluxTeardown(`${name}-teardown`, { kubeconfig: cluster.kubeconfig }, { parent: this, dependsOn: [flux], protect: args.protect });

        this.clusterName = cluster.clusterName;
        this.kubeconfig = cluster.kubeconfig;
        this.kubeContext = cluster.kubeContext;
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

function kindCluster(name: string, config: KindClusterConfig, opts: pulumi.ComponentResourceOptions): Cluster {
    const cluster = new KindCluster(
        name,
        {
            clusterName: config.name,
            nodeImage: config.nodeImage,
            controlPlaneNodes: config.controlPlaneNodes,
            workers: config.workers,
            portMappings: config.portMappings,
        },
        opts,
    );
    // `kind create cluster --wait` returns once the nodes are ready.
    return { ...pick(cluster), readyFor: [] };
}

function eksCluster(name: string, config: EksClusterConfig, env: EnvironmentArgs, opts: pulumi.ComponentResourceOptions): Cluster {
    // Loaded only here: the AWS SDKs take seconds to load, and kind stacks never need them.
    const { EksCluster } = require("./eks-cluster") as typeof import("./eks-cluster");
    const cluster = new EksCluster(
        name,
        {
            clusterName: config.name,
            region: config.region,
            kubernetesVersion: config.kubernetesVersion,
            zones: config.zones,
            vpcCidr: config.vpcCidr,
            natGateways: config.natGateways,
            nodeGroup: config.nodeGroup,
            adminRoleArns: config.adminRoleArns,
            publicAccessCidrs: config.publicAccessCidrs,
            tags: { ...config.tags, environment: env.environment, "managed-by": "pulumi/gitops-platform" },
            deletionProtection: env.tier === "production",
        },
        opts,
    );
    return { ...pick(cluster), readyFor: cluster.readyFor };
}

function pick(c: Omit<Cluster, "readyFor">): Omit<Cluster, "readyFor"> {
    return { clusterName: c.clusterName, kubeconfig: c.kubeconfig, kubeContext: c.kubeContext };
}
