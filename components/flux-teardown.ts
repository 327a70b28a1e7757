import * as pulumi from "@pulumi/pulumi";
import { FluxTeardownInputs, FluxTeardownProvider, TeardownCluster } from "./flux-teardown-provider";

export interface FluxTeardownArgs {
    /** Kubeconfig of the cluster Flux runs in. Secret. */
    kubeconfig: pulumi.Input<string>;
    /** How long `pulumi destroy` waits for Flux objects to finalise before it stops, naming them. @default 600 */
    timeoutSeconds?: number;
    /** The cluster, asked whether it still exists when its API cannot be reached. @default none: unreachable is an error */
    cluster?: TeardownCluster;
}

/**
 * Does nothing on `pulumi up`. On `pulumi destroy` it runs first, because it depends on the Flux install:
 * it stops the operator and the root sync from re-applying, then deletes the synced Kustomizations (and
 * any HelmRelease no layer applied) — consumers before the providers labelled
 * `gitops-platform.io/teardown: provider` — each layer pruning what it applied and waiting for it, so load
 * balancers and volumes are released before the cluster goes. A give-up leaves Flux reconciling.
 */
export class FluxTeardown extends pulumi.ComponentResource {
    readonly timeoutSeconds: number;

    constructor(name: string, args: FluxTeardownArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:FluxTeardown", name, {}, opts);
        this.timeoutSeconds = args.timeoutSeconds ?? 600;
        new FluxTeardownResource(
            name,
            { kubeconfig: pulumi.secret(args.kubeconfig), timeoutSeconds: this.timeoutSeconds, ...(args.cluster ? { cluster: args.cluster } : {}) },
            { parent: this },
        );
        this.registerOutputs({ timeoutSeconds: this.timeoutSeconds });
    }
}

// One provider object for every resource of this kind: Pulumi serialises a dynamic provider once per
// object (@pulumi/pulumi dynamic/index.js, `providerCache`), not once per resource.
const PROVIDER = new FluxTeardownProvider();

/** The Pulumi resource backed by `FluxTeardownProvider`. */
class FluxTeardownResource extends pulumi.dynamic.Resource {
    constructor(name: string, inputs: { [K in keyof FluxTeardownInputs]: pulumi.Input<FluxTeardownInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
        super(PROVIDER, name, inputs, { ...opts, additionalSecretOutputs: ["kubeconfig"] }, "flux", "Teardown");
    }
}
