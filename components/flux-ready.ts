import * as pulumi from "@pulumi/pulumi";
import type { FluxObjectRef } from "../lib/gitops-tree";
import { FluxReadyInputs, FluxReadyProvider } from "./flux-ready-provider";

export interface FluxReadyArgs {
    /** Kubeconfig of the cluster Flux runs in. Secret. */
    kubeconfig: pulumi.Input<string>;
    /** How long `pulumi up` waits before it fails, naming what is not Ready. */
    timeoutSeconds: number;
    /** The objects that must be Ready, causes first (see `waitForFlux`). */
    objects: FluxObjectRef[];
    /** A digest of what Flux was asked to be and pulls with: when it changes, `pulumi up` waits again. */
    revision: pulumi.Input<string>;
}

/**
 * Makes `pulumi up` end when Flux has synced: the FluxInstance, the root sync and every source and
 * Kustomization of the cluster folder Ready. It fails as soon as one of them has failed for good, with
 * that object's Ready condition and where to look. `pulumi destroy` and `pulumi refresh` do not wait.
 */
export class FluxReady extends pulumi.ComponentResource {
    readonly timeoutSeconds: number;
    readonly objects: string[];

    constructor(name: string, args: FluxReadyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:FluxReady", name, {}, opts);
        this.timeoutSeconds = args.timeoutSeconds;
        this.objects = args.objects.map((o) => `${o.kind} ${o.namespace}/${o.name}`);
        new FluxReadyResource(
            name,
            { kubeconfig: pulumi.secret(args.kubeconfig), timeoutSeconds: args.timeoutSeconds, objects: args.objects, revision: args.revision },
            { parent: this },
        );
        this.registerOutputs({ timeoutSeconds: this.timeoutSeconds, objects: this.objects });
    }
}

// One provider object for every resource of this kind: Pulumi serialises a dynamic provider once per
// object (@pulumi/pulumi dynamic/index.js, `providerCache`), not once per resource.
const PROVIDER = new FluxReadyProvider();

/** The Pulumi resource backed by `FluxReadyProvider`. */
class FluxReadyResource extends pulumi.dynamic.Resource {
    constructor(name: string, inputs: { [K in keyof FluxReadyInputs]: pulumi.Input<FluxReadyInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
        super(PROVIDER, name, inputs, { ...opts, additionalSecretOutputs: ["kubeconfig"] }, "flux", "Ready");
    }
}
