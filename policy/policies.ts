import { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import * as semver from "semver";
import { findPlatformSource } from "../lib/gitops-tree";
import { REPO_ROOT } from "../lib/project";

// Mandatory rules, checked on every preview and update: what must hold whatever the config says.

const FLUX_INSTANCE = "kubernetes:fluxcd.controlplane.io/v1:FluxInstance";
const CLUSTER_TYPES = ["pulumi-nodejs:dynamic/kind:Cluster", "eks:index:Cluster"];

type Props = Record<string, unknown>;
const at = (props: Props, ...keys: string[]): unknown => keys.reduce<unknown>((v, k) => (v as Props | undefined)?.[k], props);

/** The environment a stack runs: the name of its Environment component. */
function environmentOf(resources: PolicyResource[]): string | undefined {
    return resources.find((r) => r.type === "gitops-platform:index:Environment")?.name;
}

export const productionIsPinnedAndProtected: StackValidationPolicy = {
    name: "production-is-pinned-and-protected",
    description: "Production runs one exact Flux version and one platform artifact pinned by digest, and its cluster and Flux are protected.",
    validateStack: (args, reportViolation) => {
        if (environmentOf(args.resources) !== "production") return;
        for (const instance of args.resources.filter((r) => r.type === FLUX_INSTANCE)) {
            const version = at(instance.props, "spec", "distribution", "version");
            if (typeof version === "string" && semver.valid(version) === null) {
                reportViolation(`FluxInstance ${instance.name} runs the Flux range '${version}'; production pins an exact version.`, instance.urn);
            }
            if (!instance.opts.protect) reportViolation(`FluxInstance ${instance.name} is not protected.`, instance.urn);
            const syncPath = at(instance.props, "spec", "sync", "path");
            if (typeof syncPath === "string") {
                const platform = findPlatformSource(REPO_ROOT, syncPath);
                // A tag alone can be moved in the registry; only a digest keeps production's content reviewed.
                if (platform?.kind !== "OCIRepository" || !/^sha256:[0-9a-f]{64}$/.test(platform.ref.digest ?? "")) {
                    reportViolation(
                        `${syncPath} must pin the platform to one OCI artifact by digest (tag and digest), not ${JSON.stringify(platform?.ref ?? {})}.`,
                        instance.urn,
                    );
                }
            }
        }
        for (const cluster of args.resources.filter((r) => CLUSTER_TYPES.includes(r.type))) {
            if (!cluster.opts.protect) reportViolation(`The production cluster ${cluster.name} is not protected.`, cluster.urn);
        }
    },
};

function endpointProblem(publicAccess: unknown, cidrs: unknown): string | undefined {
    // EKS leaves the public endpoint on, open to 0.0.0.0/0, unless told otherwise.
    if (publicAccess === false) return undefined;
    const list = Array.isArray(cidrs) ? (cidrs as string[]) : [];
    if (list.length === 0) return "the public API endpoint is open to the internet (no publicAccessCidrs)";
    const open = list.find((c) => c.endsWith("/0"));
    return open ? `the public API endpoint is open to ${open}` : undefined;
}

export const eksEndpointRestricted: ResourceValidationPolicy = {
    name: "eks-endpoint-private-or-restricted",
    description: "An EKS API endpoint is private, or public only to listed CIDR ranges.",
    validateResource: (args, reportViolation) => {
        let problem: string | undefined;
        if (args.type === "eks:index:Cluster") {
            problem = endpointProblem(args.props.endpointPublicAccess, args.props.publicAccessCidrs);
            if (args.props.endpointPrivateAccess !== true) problem = problem ?? "the private API endpoint is off, so nodes reach the API over the internet";
        } else if (args.type === "aws:eks/cluster:Cluster") {
            problem = endpointProblem(at(args.props, "vpcConfig", "endpointPublicAccess"), at(args.props, "vpcConfig", "publicAccessCidrs"));
        }
        if (problem) reportViolation(`EKS cluster ${args.name}: ${problem}.`);
    },
};

export const eksSecretsEncrypted: ResourceValidationPolicy = {
    name: "eks-secrets-encrypted",
    description: "Kubernetes Secrets in EKS are envelope-encrypted with a KMS key.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "aws:eks/cluster:Cluster") return;
        const resources = at(args.props, "encryptionConfig", "resources");
        if (!Array.isArray(resources) || !resources.includes("secrets")) {
            reportViolation(`EKS cluster ${args.name} does not encrypt Secrets with KMS (encryptionConfig.resources lacks "secrets").`);
        }
    },
};

export const policies = [productionIsPinnedAndProtected, eksEndpointRestricted, eksSecretsEncrypted];
