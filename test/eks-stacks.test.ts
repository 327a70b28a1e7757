// The EKS stacks under mocks: the checks every stack passes, then the security defaults of EKS.
import { beforeAll, describe, expect, it } from "@jest/globals";
import type * as pulumiType from "@pulumi/pulumi";
import { DeclaredResource, FAKE_EKS, field, MockedRun, runProgram, stackFacts, stacksOn, valueOf } from "./support/program";
import { eksEndpointRestricted } from "../policy/policies";
import { resource, violationsOfResource } from "../policy/testing";
import { AWS_MODULES, describeEveryStack, sharedRuns } from "./support/stack-checks";

const shared = sharedRuns();

describeEveryStack(stacksOn("eks"), shared);

// --- EKS ---------------------------------------------------------------------------------------

const byName = (rs: DeclaredResource[]) => rs.map((r) => r.name).sort();

describe.each(stacksOn("eks"))("the %s stack on EKS", (stack) => {
    const env = stackFacts(stack).environment;
    let run: MockedRun<Record<string, unknown>>;
    let cluster: Record<string, unknown>;
    beforeAll(async () => {
        run = await shared(stack);
        cluster = run.one("eks:index:Cluster").inputs;
    });

    it("keeps the API endpoint private, plus an allow-list of CIDRs", () => {
        expect(cluster).toMatchObject({ endpointPrivateAccess: true, endpointPublicAccess: true, publicAccessCidrs: ["203.0.113.0/24"] });
    });

    it("authenticates through the EKS API with an admin access entry per configured role", () => {
        expect(cluster.authenticationMode).toBe("API");
        expect(cluster.accessEntries).toEqual({
            "admin-0": {
                principalArn: "arn:aws:iam::123456789012:role/platform-admin",
                accessPolicies: {
                    clusterAdmin: {
                        policyArn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                        accessScope: { type: "cluster" },
                    },
                },
            },
        });
    });

    it("encrypts Secrets with its own rotating KMS key", () => {
        const key = run.one("aws:kms/key:Key");
        expect(key.inputs).toMatchObject({ enableKeyRotation: true, deletionWindowInDays: 30 });
        expect(cluster.encryptionConfigKeyArn).toBe(`arn:aws:mock:eu-west-1:123456789012:${key.name}`);
    });

    it("gives nodes no public IPs and puts them in private subnets only", () => {
        expect(cluster).toMatchObject({ nodeAssociatePublicIpAddress: false, skipDefaultNodeGroup: true });
        const subnets = run.byType("aws:ec2/subnet:Subnet");
        expect(subnets.map((s) => s.inputs.mapPublicIpOnLaunch)).toEqual(subnets.map(() => false));
        const privateIds = subnets.filter((s) => s.name.includes("-private-")).map((s) => `${s.name}-id`);
        expect(run.one("eks:index:ManagedNodeGroup").inputs.subnetIds).toEqual(privateIds);
        expect(cluster.privateSubnetIds).toEqual(privateIds);
    });

    it("tags every AWS resource through the provider's default tags", () => {
        const provider = run.one("pulumi:providers:aws").inputs;
        expect(provider.region).toBe("eu-west-1");
        expect(JSON.parse(String(provider.defaultTags))).toEqual({
            tags: { team: "platform", "cost-center": `platform-${env}`, environment: env, "managed-by": "pulumi/gitops-platform" },
        });
    });

    it("writes a kubeconfig that asks `aws eks get-token` and embeds no credential", async () => {
        const output = run.result.kubeconfig as pulumiType.Output<string>;
        expect(await run.pulumi.isSecret(output)).toBe(true);
        const kubeconfig = JSON.parse(await valueOf(output));
        expect(kubeconfig.clusters).toEqual([
            { name: `gitops-${env}`, cluster: { server: FAKE_EKS.endpoint, "certificate-authority-data": FAKE_EKS.certificateAuthority } },
        ]);
        expect(kubeconfig.users).toEqual([
            {
                name: `gitops-${env}`,
                user: {
                    exec: {
                        apiVersion: "client.authentication.k8s.io/v1beta1",
                        command: "aws",
                        args: ["eks", "get-token", "--cluster-name", `gitops-${env}`, "--region", "eu-west-1", "--output", "json"],
                        interactiveMode: "Never",
                    },
                },
            },
        ]);
    });

    it("passes the policy pack's endpoint rule", async () => {
        const c = run.one("eks:index:Cluster");
        expect(await violationsOfResource(eksEndpointRestricted, resource(c.type, c.name, c.inputs))).toEqual([]);
    });

    it("tells Flux it runs on AWS", () => {
        expect(field(run.one("kubernetes:fluxcd.controlplane.io/v1:FluxInstance").inputs, "spec.cluster.type")).toBe("aws");
    });

    it("loads the AWS modules it uses, never the packages' indexes, and kind stacks none", () => {
        expect([...run.loaded].sort()).toEqual(AWS_MODULES.filter((m) => m.split("/").length > 2).sort());
    });
});

describe("size follows the environment", () => {
    it("production spreads over three zones with a NAT gateway in each", async () => {
        const run = await shared("aws-production");
        expect(byName(run.byType("aws:ec2/natGateway:NatGateway"))).toEqual([
            "production-cluster-network-nat-eu-west-1a",
            "production-cluster-network-nat-eu-west-1b",
            "production-cluster-network-nat-eu-west-1c",
        ]);
        expect(run.one("eks:index:ManagedNodeGroup").inputs.scalingConfig).toEqual({ minSize: 3, desiredSize: 3, maxSize: 6 });
        expect(run.one("eks:index:Cluster").inputs.deletionProtection).toBe(true);
    });

    it.each(["aws-development", "aws-staging"])("%s shares one NAT gateway across two zones", async (stack) => {
        const run = await shared(stack);
        expect(run.byType("aws:ec2/natGateway:NatGateway")).toHaveLength(1);
        expect(run.byType("aws:ec2/subnet:Subnet")).toHaveLength(4);
        expect(run.one("eks:index:Cluster").inputs.deletionProtection).toBe(false);
    });

    it("every private subnet routes out through a NAT gateway in production's own zone", async () => {
        const run = await shared("aws-production");
        const routes = run.byType("aws:ec2/routeTable:RouteTable").filter((r) => r.name.includes("-private-"));
        expect(routes.map((r) => [r.name, field(r.inputs, "routes")])).toEqual(
            ["a", "b", "c"].map((z) => [
                `production-cluster-network-private-eu-west-1${z}`,
                [{ cidrBlock: "0.0.0.0/0", natGatewayId: `production-cluster-network-nat-eu-west-1${z}-id` }],
            ]),
        );
    });
});

describe("the backend changes only the cluster", () => {
    const kubernetesObjects = (run: MockedRun<unknown>) =>
        run.resources
            .filter((r) => r.type.startsWith("kubernetes:"))
            .map((r) => ({ type: r.type, name: r.name, inputs: r.inputs }))
            .sort((a, b) => a.name.localeCompare(b.name));

    it.each(["development", "staging", "production"])("%s declares the same Flux and secrets on kind and on EKS", async (env) => {
        const kind = kubernetesObjects(await shared(env));
        const aws = kubernetesObjects(await shared(`aws-${env}`));
        const awsWithKindClusterType = aws.map((r) => (r.type.endsWith(":FluxInstance") ? { ...r, inputs: withClusterType(r.inputs, "kubernetes") } : r));
        expect(awsWithKindClusterType).toEqual(kind);
    });
});

function withClusterType(inputs: Record<string, unknown>, type: string): Record<string, unknown> {
    const spec = inputs.spec as Record<string, Record<string, unknown>>;
    return { ...inputs, spec: { ...spec, cluster: { ...spec.cluster, type } } };
}

describe("a preview of a brand-new EKS stack", () => {
    it("completes and declares Flux although the cluster does not exist yet", async () => {
        const run = await runProgram("aws-staging", { preview: true });
        expect(run.one("kubernetes:fluxcd.controlplane.io/v1:FluxInstance").inputs).toMatchObject({ kind: "FluxInstance" });
        expect(run.one("kubernetes:helm.sh/v3:Release").inputs).toMatchObject({ name: "flux-operator" });
    });
});
