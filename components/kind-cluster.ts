import * as pulumi from "@pulumi/pulumi";
import { KIND_CLUSTER_DEFAULTS } from "../lib/project";
import { KindApiServer, KindClusterInputs, KindClusterProvider, KindPortMapping } from "./kind-provider";

export interface KindClusterArgs {
    /** Cluster name, as `kind get clusters` lists it. The kubectl context is `kind-<name>`. */
    clusterName: string;
    /** Node image; its tag is the Kubernetes version. @default "kindest/node:v1.35.0" */
    nodeImage?: string;
    /** Control-plane nodes; odd, so etcd keeps quorum. @default 1 */
    controlPlaneNodes?: number;
    /** Worker nodes; 0 runs workloads on the control plane. @default 0 */
    workers?: number;
    /** Ports of the first control-plane node published on the host (e.g. 80/443 for an ingress). @default [] */
    portMappings?: KindPortMapping[];
    /**
     * Where the API server listens and the host clients reach it by, for Docker-in-Docker (a CI job).
     * @default kind's own: 127.0.0.1 on a random port
     */
    apiServer?: KindApiServer;
}

/**
 * A local Kubernetes cluster in Docker, created with the `kind` CLI. Any change of node layout, image
 * or name replaces the cluster: kind cannot change a running cluster's nodes.
 */
export class KindCluster extends pulumi.ComponentResource {
    readonly clusterName: pulumi.Output<string>;
    /** Admin kubeconfig (secret). */
    readonly kubeconfig: pulumi.Output<string>;
    /** The kubectl context kind adds to ~/.kube/config. */
    readonly kubeContext: pulumi.Output<string>;

    constructor(name: string, args: KindClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:KindCluster", name, {}, opts);

        const cluster = new KindClusterResource(
            name,
            {
                name: args.clusterName,
                nodeImage: args.nodeImage ?? KIND_CLUSTER_DEFAULTS.nodeImage,
                controlPlaneNodes: args.controlPlaneNodes ?? KIND_CLUSTER_DEFAULTS.controlPlaneNodes,
                workers: args.workers ?? KIND_CLUSTER_DEFAULTS.workers,
                portMappings: args.portMappings ?? [],
                ...(args.apiServer ? { apiServer: args.apiServer } : {}),
            },
            { parent: this },
        );

        this.clusterName = cluster.name;
        this.kubeconfig = pulumi.secret(cluster.kubeconfig);
        this.kubeContext = cluster.context;
        this.registerOutputs({ clusterName: this.clusterName, kubeconfig: this.kubeconfig, kubeContext: this.kubeContext });
    }
}

type KindClusterResourceArgs = { [K in keyof KindClusterInputs]: pulumi.Input<KindClusterInputs[K]> };

// One provider object for every resource of this kind: Pulumi serialises a dynamic provider once per
// object (@pulumi/pulumi dynamic/index.js, `providerCache`), not once per resource.
const PROVIDER = new KindClusterProvider();

/** The Pulumi resource backed by `KindClusterProvider`. `KindCluster` is the component to use. */
class KindClusterResource extends pulumi.dynamic.Resource {
    declare readonly name: pulumi.Output<string>;
    declare readonly kubeconfig: pulumi.Output<string>;
    declare readonly context: pulumi.Output<string>;

    constructor(name: string, inputs: KindClusterResourceArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            PROVIDER,
            name,
            { ...inputs, kubeconfig: undefined, context: undefined },
            { ...opts, additionalSecretOutputs: ["kubeconfig"] },
            "kind",
            "Cluster",
        );
    }
}
