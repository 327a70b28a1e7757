import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { EksClusterArgs } from "./eks-cluster";
import { FluxAlerts, FluxAlertsArgs } from "./flux-alerts";
import type { FluxObjectRef } from "../lib/gitops-tree";
import { durationSeconds } from "../lib/validators";
import { FLUX_DEFAULTS, FluxBootstrap, FluxBootstrapArgs, fluxReadyOrder } from "./flux-bootstrap";
import { FluxReady } from "./flux-ready";
import { FluxTeardown } from "./flux-teardown";
import type { TeardownCluster } from "./flux-teardown-provider";
import { KindCluster, KindClusterArgs } from "./kind-cluster";

/** The cluster an environment runs on: one of the cluster components, with that component's own args. */
export type EnvironmentCluster = ({ backend: "kind" } & KindClusterArgs) | ({ backend: "eks" } & EksClusterArgs);

export interface EnvironmentArgs {
    /** The cluster: kind (a local cluster in Docker) or EKS. */
    cluster: EnvironmentCluster;
    /**
     * Flux: the operator chart, the distribution, the root sync and the platform repository's
     * credentials. Its cluster type follows the backend.
     */
    flux: Omit<FluxBootstrapArgs, "clusterType">;
    /** Failed reconciliations reported through a Flux notification Provider and Alert. @default no alerts */
    alerts?: FluxAlertsArgs;
    /** Protects the cluster and the Flux install from deletion. @default false */
    protect?: boolean;
    /**
     * Lets the Kubernetes provider drop objects from state when the cluster is gone, so `pulumi destroy`
     * of a cluster deleted by hand does not wedge. @default true
     */
    deleteUnreachable?: boolean;
    /** How the cluster folder pulls the platform (GitRepository or OCIRepository); exported as is. */
    platformSourceKind: string;
    /**
     * The sources, Kustomizations and HelmReleases the cluster folder declares, causes first: `pulumi up`
     * waits for each to be Ready (for `flux.readyTimeout`). @default none: only the root sync and the FluxInstance
     */
    fluxObjects?: FluxObjectRef[];
}

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

        // A protected cluster and Flux install stop `pulumi destroy` before it touches them.
        const clusterOpts = { parent: this, protect: args.protect };
        const cluster =
            args.cluster.backend === "kind"
                ? kindCluster(`${name}-cluster`, args.cluster, clusterOpts)
                : eksCluster(`${name}-cluster`, args.cluster, clusterOpts);

        const provider = new k8s.Provider(
            `${name}-kubernetes`,
            { kubeconfig: cluster.kubeconfig, deleteUnreachable: args.deleteUnreachable ?? true },
            { parent: this, dependsOn: cluster.readyFor },
        );

        const flux = new FluxBootstrap(
            `${name}-flux`,
            { ...args.flux, clusterType: args.cluster.backend === "eks" ? "aws" : "kubernetes" },
            { parent: this, provider, protect: args.protect },
        );

        // `pulumi up` ends when what Flux syncs is Ready, or fails naming what is not.
        const readySeconds = durationSeconds(args.flux.readyTimeout ?? FLUX_DEFAULTS.readyTimeout);
        if (readySeconds > 0) {
            new FluxReady(
                `${name}-ready`,
                {
                    kubeconfig: cluster.kubeconfig,
                    timeoutSeconds: Math.ceil(readySeconds),
                    objects: fluxReadyOrder(args.fluxObjects ?? []),
                    revision: flux.revision,
                },
                { parent: this, dependsOn: [flux] },
            );
        }

        if (args.alerts) {
            // The notification CRDs arrive with Flux: after the FluxInstance.
            new FluxAlerts(`${name}-alerts`, args.alerts, { parent: this, provider, dependsOn: [flux] });
        }

        // Depends on the whole Flux install, so `pulumi destroy` runs it first: it deletes what Flux synced,
        // in finaliser-safe order, while Flux is still there to finalise it.
        new FluxTeardown(
            `${name}-teardown`,
            { kubeconfig: cluster.kubeconfig, cluster: teardownCluster(args.cluster) },
            { parent: this, dependsOn: [flux], protect: args.protect },
        );

        this.clusterName = cluster.clusterName;
        this.kubeconfig = cluster.kubeconfig;
        this.kubeContext = cluster.kubeContext;
        this.sync = { url: args.flux.sync.url, ref: flux.syncRef, path: flux.syncPath };
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

function kindCluster(name: string, args: KindClusterArgs, opts: pulumi.ComponentResourceOptions): Cluster {
    const cluster = new KindCluster(name, args, opts);
    // `kind create cluster --wait` returns once the nodes are ready.
    return { ...pick(cluster), readyFor: [] };
}

function eksCluster(name: string, args: EksClusterArgs, opts: pulumi.ComponentResourceOptions): Cluster {
    // Loaded only here: kind stacks never need the AWS modules.
    const { EksCluster } = require("./eks-cluster") as typeof import("./eks-cluster");
    const cluster = new EksCluster(name, args, opts);
    return { ...pick(cluster), readyFor: cluster.readyFor };
}

/** What the teardown asks when the API cannot be reached: does the cluster still exist? */
function teardownCluster(c: EnvironmentCluster): TeardownCluster {
    return c.backend === "kind" ? { backend: "kind", name: c.clusterName } : { backend: "eks", name: c.clusterName, region: c.region };
}

function pick(c: Omit<Cluster, "readyFor">): Omit<Cluster, "readyFor"> {
    return { clusterName: c.clusterName, kubeconfig: c.kubeconfig, kubeContext: c.kubeContext };
}
