import { describe, expect, it } from "@jest/globals";
import { PolicyResource } from "@pulumi/policy";
import { eksEndpointRestricted, eksSecretsEncrypted, policies, productionIsPinnedAndProtected } from "./policies";
import { resource, violationsOfResource, violationsOfStack } from "./testing";

function productionStack(overrides: { version?: string; syncPath?: string; protect?: boolean } = {}): PolicyResource[] {
    const protect = overrides.protect ?? true;
    return [
        resource("gitops-platform:index:Environment", "production", {}),
        resource("pulumi-nodejs:dynamic/kind:Cluster", "production-cluster", { name: "production" }, protect),
        resource(
            "kubernetes:fluxcd.controlplane.io/v1:FluxInstance",
            "production-flux-instance",
            { spec: { distribution: { version: overrides.version ?? "2.8.8" }, sync: { path: overrides.syncPath ?? "clusters/production" } } },
            protect,
        ),
    ];
}

it("the pack holds the three mandatory rules", () => {
    expect(policies.map((p) => p.name)).toEqual(["production-is-pinned-and-protected", "eks-endpoint-private-or-restricted", "eks-secrets-encrypted"]);
});

describe("production is pinned and protected", () => {
    it("passes the shipped production: Flux 2.8.8, the platform on tag 0.0.6 by its digest, everything protected", async () => {
        expect(await violationsOfStack(productionIsPinnedAndProtected, productionStack())).toEqual([]);
    });

    it("refuses a Flux range", async () => {
        expect(await violationsOfStack(productionIsPinnedAndProtected, productionStack({ version: "2.x" }))).toEqual([
            "FluxInstance production-flux-instance runs the Flux range '2.x'; production pins an exact version.",
        ]);
    });

    it("refuses a platform that follows a semver range", async () => {
        expect(await violationsOfStack(productionIsPinnedAndProtected, productionStack({ syncPath: "clusters/staging" }))).toEqual([
            'clusters/staging must pin the platform to one OCI artifact by digest (tag and digest), not {"semver":"0.0.x"}.',
        ]);
    });

    it("refuses a platform pinned by a tag alone, which the registry lets anyone with push rights move", async () => {
        expect(await violationsOfStack(productionIsPinnedAndProtected, productionStack({ syncPath: "test/fixtures/platform-pins/tag-only" }))).toEqual([
            'test/fixtures/platform-pins/tag-only must pin the platform to one OCI artifact by digest (tag and digest), not {"tag":"0.0.6"}.',
        ]);
    });

    it("refuses an unprotected cluster and Flux", async () => {
        expect(await violationsOfStack(productionIsPinnedAndProtected, productionStack({ protect: false }))).toEqual([
            "FluxInstance production-flux-instance is not protected.",
            "The production cluster production-cluster is not protected.",
        ]);
    });

    it("leaves development free to follow ranges, unprotected", async () => {
        const development = productionStack({ version: "2.x", syncPath: "clusters/development", protect: false });
        development[0] = resource("gitops-platform:index:Environment", "development", {});
        expect(await violationsOfStack(productionIsPinnedAndProtected, development)).toEqual([]);
    });
});

describe("EKS endpoints are private or CIDR-restricted", () => {
    const eks = (props: Record<string, unknown>) => resource("eks:index:Cluster", "production-cluster", props);

    it("accepts a private endpoint plus an allow-list", async () => {
        expect(
            await violationsOfResource(
                eksEndpointRestricted,
                eks({ endpointPrivateAccess: true, endpointPublicAccess: true, publicAccessCidrs: ["203.0.113.0/24"] }),
            ),
        ).toEqual([]);
    });

    it("accepts a private-only endpoint", async () => {
        expect(await violationsOfResource(eksEndpointRestricted, eks({ endpointPrivateAccess: true, endpointPublicAccess: false }))).toEqual([]);
    });

    it.each<[string, Record<string, unknown>, string]>([
        [
            "open to the internet",
            { endpointPrivateAccess: true, publicAccessCidrs: ["0.0.0.0/0"] },
            "EKS cluster production-cluster: the public API endpoint is open to 0.0.0.0/0.",
        ],
        [
            "public with no allow-list",
            { endpointPrivateAccess: true },
            "EKS cluster production-cluster: the public API endpoint is open to the internet (no publicAccessCidrs).",
        ],
        [
            "without the private endpoint",
            { endpointPrivateAccess: false, publicAccessCidrs: ["203.0.113.0/24"] },
            "EKS cluster production-cluster: the private API endpoint is off, so nodes reach the API over the internet.",
        ],
    ])("refuses an endpoint %s", async (_what, props, message) => {
        expect(await violationsOfResource(eksEndpointRestricted, eks(props))).toEqual([message]);
    });

    it("checks the aws.eks.Cluster the component creates, whose CIDRs default to everywhere", async () => {
        const raw = resource("aws:eks/cluster:Cluster", "raw", { vpcConfig: { endpointPublicAccess: true } });
        expect(await violationsOfResource(eksEndpointRestricted, raw)).toEqual([
            "EKS cluster raw: the public API endpoint is open to the internet (no publicAccessCidrs).",
        ]);
    });
});

describe("EKS Secrets are encrypted", () => {
    it("accepts envelope encryption of secrets", async () => {
        const cluster = resource("aws:eks/cluster:Cluster", "c", { encryptionConfig: { resources: ["secrets"], provider: {} } });
        expect(await violationsOfResource(eksSecretsEncrypted, cluster)).toEqual([]);
    });

    it("refuses a cluster without it", async () => {
        expect(await violationsOfResource(eksSecretsEncrypted, resource("aws:eks/cluster:Cluster", "c", {}))).toEqual([
            'EKS cluster c does not encrypt Secrets with KMS (encryptionConfig.resources lacks "secrets").',
        ]);
    });
});
