// Each stack file, loaded the way the Pulumi CLI loads it, runs the real program under mocks: the kind
// stacks first (they must load no AWS module, and the loads are recorded per file), then the EKS stacks
// and their security defaults, and last the resource options (dependsOn, protect) the mocks never see.
// One run per stack serves every test of this file.
import { beforeAll, describe, expect, it } from "@jest/globals";
import { parse } from "yaml";
import type * as pulumiType from "@pulumi/pulumi";
import type { Environment as EnvironmentType } from "../components/environment";
import type { parseConfig as parseConfigType } from "../infra/config";
import type { environmentArgs as environmentArgsType } from "../infra/program";
import { eksEndpointRestricted } from "../policy/policies";
import { DEFAULT_FLUX_VERSION } from "../lib/project";
import { fluxReleaseFor } from "../tools/check/tree-check";
import { readFluxServedApis } from "../tools/schemas/vendored";
import { resource, violationsOfResource } from "../policy/testing";
import {
    DeclaredResource,
    FAKE_EKS_KUBECONFIG,
    FAKE_KUBECONFIG,
    field,
    isSecretInput,
    MockedRun,
    runMocked,
    runProgram,
    longLivedStacks,
    shippedStacks,
    stackConfig,
    stackFacts,
    stacksOn,
    TEST_TOKEN,
    valueOf,
} from "./support/program";
import { AWS_MODULES, describeEveryStack, FLUX_INSTANCE, FLUX_READY, plainStrings, secretNamed, secretValue, sharedRuns } from "./support/stack-checks";

const shared = sharedRuns();

it("ships one stack per environment on kind, and an AWS twin of each", () => {
    expect(longLivedStacks()).toEqual(["aws-development", "aws-production", "aws-staging", "development", "production", "staging"]);
    expect(longLivedStacks().map((s) => [s, stackFacts(s).environment])).toEqual([
        ["aws-development", "development"],
        ["aws-production", "production"],
        ["aws-staging", "staging"],
        ["development", "development"],
        ["production", "production"],
        ["staging", "staging"],
    ]);
});

describe.each(stacksOn("kind"))("the %s stack on kind", (stack) => {
    let run: MockedRun<Record<string, unknown>>;
    beforeAll(async () => {
        run = await shared(stack);
    });

    it("declares a kind cluster named after the environment", () => {
        expect(run.one("pulumi-nodejs:dynamic/kind:Cluster").inputs).toMatchObject({
            name: stack,
            nodeImage: "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
        });
    });

    it("exports the kind kubeconfig as a secret", async () => {
        const kubeconfig = run.result.kubeconfig as import("@pulumi/pulumi").Output<string>;
        expect(await run.pulumi.isSecret(kubeconfig)).toBe(true);
        expect(await valueOf(kubeconfig)).toBe(FAKE_KUBECONFIG);
    });

    it("never loads the AWS packages", () => {
        expect(run.loaded).toEqual([]);
    });
});

describeEveryStack(stacksOn("kind"), shared);

describe("a kind cluster in Docker-in-Docker", () => {
    it("hands the API server's listen address and host to the kind provider, and nothing when unset", async () => {
        const cluster = JSON.parse(stackConfig("development")["gitops-platform:cluster"] ?? "{}") as object;
        const dind = await runProgram("development", {
            config: { "gitops-platform:cluster": JSON.stringify({ ...cluster, apiServer: { listenAddress: "0.0.0.0", host: "docker" } }) },
        });
        expect(dind.one("pulumi-nodejs:dynamic/kind:Cluster").inputs.apiServer).toEqual({ listenAddress: "0.0.0.0", host: "docker" });
        expect("apiServer" in (await shared("development")).one("pulumi-nodejs:dynamic/kind:Cluster").inputs).toBe(false);
        // Nothing about Flux changed, so the next `pulumi up` does not wait for Flux again.
        expect(secretValue(dind.one(FLUX_READY).inputs.revision)).toBe(secretValue((await shared("development")).one(FLUX_READY).inputs.revision));
    });
});

describe("the cadence of each environment", () => {
    it("development pulls the platform from Git with a basic-auth secret", async () => {
        const run = await shared("development");
        const secret = secretNamed(run, "platform-repository").inputs;
        expect(secret.type).toBe("kubernetes.io/basic-auth");
        expect(secretValue(secret.stringData)).toEqual({ username: "git", password: TEST_TOKEN });
        expect(run.result.platformSourceKind).toBe("GitRepository");
        expect(field(run.one(FLUX_INSTANCE).inputs, "spec.distribution")).toEqual({ version: "2.x", registry: "ghcr.io/fluxcd" });
    });

    it.each(["staging", "production"])("%s pulls platform artifacts with a registry login for registry.gitlab.com", async (stack) => {
        const run = await shared(stack);
        const secret = secretNamed(run, "platform-repository").inputs;
        expect(secret.type).toBe("kubernetes.io/dockerconfigjson");
        const dockerConfig = JSON.parse(String((secretValue(secret.stringData) as Record<string, unknown>)[".dockerconfigjson"]));
        expect(dockerConfig).toEqual({
            auths: {
                "registry.gitlab.com": {
                    username: "platform-reader",
                    password: TEST_TOKEN,
                    auth: Buffer.from(`platform-reader:${TEST_TOKEN}`).toString("base64"),
                },
            },
        });
        expect(run.result.platformSourceKind).toBe("OCIRepository");
    });

    it("staging follows a Flux minor line while production pins one Flux version", async () => {
        const staging = await shared("staging");
        const production = await shared("production");
        expect(field(staging.one(FLUX_INSTANCE).inputs, "spec.distribution.version")).toBe("2.8.x");
        expect(field(production.one(FLUX_INSTANCE).inputs, "spec.distribution.version")).toBe("2.8.8");
    });
});

describe("an unreachable cluster", () => {
    // Provider inputs reach the mocks as strings.
    it.each([
        ["development", "true"],
        ["staging", "true"],
        ["production", "false"],
    ])("%s drops Kubernetes objects from state when its cluster is gone: %s", async (stack, expected) => {
        const provider = (await shared(stack)).one("pulumi:providers:kubernetes");
        expect(provider.inputs.deleteUnreachable).toBe(expected);
    });
});

describe("config errors stop the program before any resource is declared", () => {
    it("a stack with no token declares nothing and names the fix", async () => {
        const run = await runProgram("development", { withToken: false, allowError: true });
        expect(run.resources).toEqual([]);
        expect(String(run.error)).toContain(
            "stacks/Pulumi.development.yaml has 1 config problem:\n  - gitops-platform:token: is not set, and neither is GITLAB_TOKEN.",
        );
    });
});

describe("alerts", () => {
    const WEBHOOK = "https://hooks.example.com/planted-not-a-real-webhook";

    it("a stack without alerts config declares no notification objects", async () => {
        const run = await shared("development");
        expect(run.resources.filter((r) => r.type.includes("notification.toolkit.fluxcd.io"))).toEqual([]);
    });

    it("a stack with alerts reports failures of the platform's sources, Kustomizations and HelmReleases", async () => {
        const run = await runProgram("development", {
            config: {
                "gitops-platform:alerts": JSON.stringify({ type: "slack", channel: "#platform-alerts" }),
                "gitops-platform:alertWebhookUrl": WEBHOOK,
            },
            secretKeys: ["gitops-platform:alertWebhookUrl"],
        });
        const secret = secretNamed(run, "flux-alerts-webhook").inputs;
        expect(secretValue(secret.stringData)).toEqual({ address: WEBHOOK });
        expect(run.one("kubernetes:notification.toolkit.fluxcd.io/v1beta3:Provider").inputs).toMatchObject({
            metadata: { name: "platform-alerts", namespace: "flux-system" },
            spec: { type: "slack", channel: "#platform-alerts", secretRef: { name: "flux-alerts-webhook" } },
        });
        expect(run.one("kubernetes:notification.toolkit.fluxcd.io/v1beta3:Alert").inputs).toMatchObject({
            metadata: { name: "platform-errors", namespace: "flux-system" },
            spec: {
                providerRef: { name: "platform-alerts" },
                eventSeverity: "error",
                // The chart repositories live beside their releases (cert-manager, podinfo): watched there.
                eventSources: [
                    ...["flux-system", "cert-manager", "podinfo"].flatMap((namespace) =>
                        ["GitRepository", "OCIRepository", "HelmRepository"].map((kind) => ({ kind, name: "*", namespace })),
                    ),
                    { kind: "Kustomization", name: "*", namespace: "flux-system" },
                    { kind: "HelmRelease", name: "*", namespace: "cert-manager" },
                    { kind: "HelmRelease", name: "*", namespace: "podinfo" },
                ],
            },
        });
        const plain = run.resources.flatMap((r) => plainStrings(r.inputs)).filter((v) => v.includes("planted-not-a-real-webhook"));
        expect(plain).toEqual([]);
    });

    it("are declared in API versions that the Flux release of every shipped stack serves", async () => {
        // The notification API versions do not depend on the stack; each stack's flux.version picks the release.
        const run = await runProgram("development", {
            config: { "gitops-platform:alerts": JSON.stringify({ type: "generic" }), "gitops-platform:alertWebhookUrl": WEBHOOK },
            secretKeys: ["gitops-platform:alertWebhookUrl"],
        });
        const notification = run.resources.filter((r) => r.type.includes("notification.toolkit.fluxcd.io"));
        expect(notification.map((r) => r.type.split(":")[2])).toEqual(["Provider", "Alert"]);
        const apis = readFluxServedApis();
        const verdicts = shippedStacks().flatMap((stack) => {
            const range = String(JSON.parse(stackConfig(stack)["gitops-platform:flux"] ?? "{}").version ?? DEFAULT_FLUX_VERSION);
            const release = fluxReleaseFor(range, apis) ?? `none for ${range}`;
            return notification.map((r) => {
                const [, apiVersion = "", kind = ""] = /^kubernetes:([^:]+):(.+)$/.exec(r.type) ?? [];
                return `${stack}: ${apis.releases[release]?.["notification.toolkit.fluxcd.io"]?.[kind]?.includes(apiVersion.split("/")[1] ?? "") ? "served" : `Flux ${release} does not serve ${apiVersion} ${kind}`}`;
            });
        });
        expect(verdicts).toEqual(shippedStacks().flatMap((stack) => [`${stack}: served`, `${stack}: served`]));
    });
});

describe("waiting for Flux", () => {
    const withReadyTimeout = (readyTimeout: string) =>
        runProgram("development", { config: { "gitops-platform:flux": JSON.stringify({ version: "2.x", readyTimeout }) } });

    it("waits as long as flux.readyTimeout says", async () => {
        const run = await withReadyTimeout("1h30m");
        expect(run.one(FLUX_READY).inputs.timeoutSeconds).toBe(5400);
        const instance = run.one(FLUX_INSTANCE).inputs;
        expect(field(instance, "metadata.annotations")).toEqual({ "fluxcd.controlplane.io/reconcileTimeout": "1h30m" });
        expect(field(instance, "spec.kustomize.patches")).toEqual([expect.objectContaining({ patch: expect.stringContaining("timeout: 1h30m") })]);
    });

    it("does not wait at all with flux.readyTimeout 0s, as a sandbox may choose", async () => {
        const run = await withReadyTimeout("0s");
        expect(run.byType(FLUX_READY)).toEqual([]);
        const instance = run.one(FLUX_INSTANCE).inputs;
        expect(field(instance, "metadata.annotations")).toEqual({});
        expect(field(instance, "spec.kustomize")).toBeUndefined();
    });

    it("waits again when Flux is asked to be something else, or to pull with something else", async () => {
        const revision = (run: MockedRun<unknown>) => secretValue(run.one(FLUX_READY).inputs.revision);
        const before = revision(await shared("development"));
        expect(before).toMatch(/^[0-9a-f]{16}$/);
        // Derived from the token, so kept secret.
        expect(isSecretInput((await shared("development")).one(FLUX_READY).inputs.revision)).toBe(true);
        // One after the other: the mocks are global to the process.
        const changed: MockedRun<unknown>[] = [];
        const variants: { config?: Record<string, string>; token?: string }[] = [
            { config: { "gitops-platform:flux": JSON.stringify({ version: "2.7.x" }) } },
            { config: { "gitops-platform:flux": JSON.stringify({ version: "2.x", registry: "registry.example/fluxcd" }) } },
            { token: "another-test-token-0a1b2c3d" },
            {
                config: {
                    "gitops-platform:platformRepository": JSON.stringify({
                        type: "git",
                        url: "https://gitlab.com/gitops-platform/gitops-platform.git",
                        username: "reader",
                    }),
                },
            },
        ];
        for (const options of variants) {
            changed.push(await runProgram("development", { ...options, allowError: true }));
        }
        expect(changed.map((r) => r.error)).toEqual([undefined, undefined, undefined, undefined]);
        expect(changed.map(revision).filter((r) => r === before)).toEqual([]);
        expect(new Set(changed.map(revision)).size).toBe(changed.length);
    });

    it("starts waiting only once the whole Flux install is applied", async () => {
        expect(await (await buildEnvironment("development")).waitsFor("development-ready")).toEqual(["development-flux"]);
    });

    it("refuses a readyTimeout that is not a duration, naming the key and the fix", async () => {
        const run = await runProgram("development", {
            config: { "gitops-platform:flux": JSON.stringify({ version: "2.x", readyTimeout: "ten minutes" }) },
            allowError: true,
        });
        expect(String(run.error)).toContain("gitops-platform:flux.readyTimeout: is not a duration. Fix: e.g. '10m', or '0s' not to wait for Flux");
    });
});

describe("a stack pinned to one commit (the end-to-end test of a merge request)", () => {
    const COMMIT = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    const FORK = "https://gitlab.com/someone-else/gitops-platform.git";
    const pinned = (sync: Record<string, string>, platformRepository: Record<string, string>) =>
        runProgram("development", {
            config: { "gitops-platform:sync": JSON.stringify(sync), "gitops-platform:platformRepository": JSON.stringify(platformRepository) },
        });

    it("syncs that commit and has Flux pull the platform from it too, from the fork that runs it", async () => {
        const run = await pinned({ url: FORK, branch: "feature/x", commit: COMMIT }, { type: "git", url: FORK });
        const patches = field(run.one(FLUX_INSTANCE).inputs, "spec.kustomize.patches") as { target: { kind: string; name: string }; patch: string }[];
        expect(patches.map((p) => p.target)).toEqual([
            { kind: "Kustomization", name: "flux-system" },
            { kind: "GitRepository", name: "flux-system" },
        ]);
        // The root GitRepository the operator renders, checked out at the commit of its branch.
        expect(parse(patches[1]!.patch)).toEqual([{ op: "replace", path: "/spec/ref", value: { branch: "feature/x", commit: COMMIT } }]);
        // The root Kustomization waits as before, and retargets clusters/development's `platform` source.
        const root = parse(patches[0]!.patch) as { spec: { wait: boolean; patches: { target: unknown; patch: string }[] } };
        expect(root.spec.wait).toBe(true);
        expect(root.spec.patches).toHaveLength(1);
        expect(root.spec.patches[0]?.target).toEqual({ kind: "GitRepository", name: "platform", namespace: "flux-system" });
        expect(parse(root.spec.patches[0]!.patch)).toEqual([
            { op: "replace", path: "/spec/url", value: FORK },
            { op: "replace", path: "/spec/ref", value: { branch: "feature/x", commit: COMMIT } },
        ]);
    });

    it("without a commit, follows its branch and leaves the folder's platform source as the folder says", async () => {
        const run = await shared("development");
        const patches = field(run.one(FLUX_INSTANCE).inputs, "spec.kustomize.patches") as { target: { kind: string } }[];
        expect(patches.map((p) => p.target.kind)).toEqual(["Kustomization"]);
        expect(field(run.one(FLUX_INSTANCE).inputs, "spec.sync.ref")).toBe("refs/heads/main");
    });

    it("refuses a commit that is not a full SHA, and a fork's URL when nothing retargets the platform source", async () => {
        const short = await runProgram("development", {
            config: { "gitops-platform:sync": JSON.stringify({ url: FORK, branch: "x", commit: "4b825dc" }) },
            allowError: true,
        });
        expect(String(short.error)).toContain("gitops-platform:sync.commit: is not a full commit SHA. Fix: use the 40 hex digits `git rev-parse HEAD` prints");
        const unpinned = await runProgram("development", {
            config: { "gitops-platform:platformRepository": JSON.stringify({ type: "git", url: FORK }) },
            allowError: true,
        });
        expect(String(unpinned.error)).toContain(`gitops-platform:platformRepository.url: is ${FORK} but clusters/development/platform.yaml pulls`);
    });
});

describe("the entry point", () => {
    it("infra/index.ts runs the program once and exports exactly its outputs", async () => {
        const run = await runMocked("development", {}, (load) => load("../../infra/index") as Record<string, unknown>);
        expect(Object.keys(run.result).sort()).toEqual(["clusterName", "environmentName", "kubeContext", "kubeconfig", "platformSourceKind", "sync"]);
        expect(run.byType("kubernetes:fluxcd.controlplane.io/v1:FluxInstance")).toHaveLength(1);
    });
});

// --- EKS ---------------------------------------------------------------------------------------

describeEveryStack(stacksOn("eks"), shared);

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

    it("authenticates through the EKS API with an admin access entry per configured role, and a read-only one for the pipeline's previewer", () => {
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
            // Without it, pulumi preview and the drift check's refresh cannot read one Kubernetes resource.
            "viewer-0": {
                principalArn: "arn:aws:iam::123456789012:role/platform-previewer",
                accessPolicies: {
                    view: { policyArn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy", accessScope: { type: "cluster" } },
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
        // Managed node groups take no public-IP setting: private subnets (mapPublicIpOnLaunch false) are what keep nodes private.
        expect(cluster).toMatchObject({ skipDefaultNodeGroup: true });
        expect(cluster.nodeAssociatePublicIpAddress).toBeUndefined();
        const subnets = run.byType("aws:ec2/subnet:Subnet");
        expect(subnets.map((s) => s.inputs.mapPublicIpOnLaunch)).toEqual(subnets.map(() => false));
        const privateIds = subnets.filter((s) => s.name.includes("-private-")).map((s) => `${s.name}-id`);
        expect(run.one("eks:index:ManagedNodeGroup").inputs.subnetIds).toEqual(privateIds);
        expect(cluster.privateSubnetIds).toEqual(privateIds);
    });

    it("tags every AWS resource through the provider's default tags", () => {
        const provider = run.one("pulumi:providers:aws").inputs;
        expect(provider.region).toBe("eu-west-1");
        const { tags } = JSON.parse(String(provider.defaultTags)) as { tags: Record<string, string> };
        const own = { environment: env, "managed-by": "pulumi/gitops-platform", team: "platform" };
        // A sandbox is billed and found as itself: its name, owner and expiry, never its source's cost centre.
        const asSandbox = { ...own, sandbox: env, owner: expect.any(String), expires: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) };
        const asLongLived = { ...own, "cost-center": `platform-${env}` };
        expect(tags).toEqual(stackFacts(stack).sandbox ? asSandbox : asLongLived);
    });

    it("connects with the kubeconfig pulumi-eks generates, kept secret in the provider and the stack output", async () => {
        const output = run.result.kubeconfig as pulumiType.Output<string>;
        expect(await run.pulumi.isSecret(output)).toBe(true);
        expect(await valueOf(output)).toBe(FAKE_EKS_KUBECONFIG);
        expect(secretValue(run.one("pulumi:providers:kubernetes").inputs.kubeconfig)).toBe(FAKE_EKS_KUBECONFIG);
        expect(await valueOf(run.result.kubeContext as pulumiType.Output<string>)).toBe("aws");
    });

    it("names AWS-managed policies in the partition AWS reports", () => {
        expect(
            Object.values(cluster.accessEntries as Record<string, { accessPolicies: { clusterAdmin: { policyArn: string } } }>)[0]?.accessPolicies.clusterAdmin
                .policyArn,
        ).toBe("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy");
        expect(run.byType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.inputs.policyArn)).toEqual([
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
            "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
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
        const run = await runProgram("aws-staging", { preview: true, newStack: true });
        expect(run.one("kubernetes:fluxcd.controlplane.io/v1:FluxInstance").inputs).toMatchObject({ kind: "FluxInstance" });
        expect(run.one("kubernetes:helm.sh/v3:Release").inputs).toMatchObject({ name: "flux-operator" });
        // The cluster's kubeconfig is not known yet: the Kubernetes provider previews without one.
        expect(run.one("pulumi:providers:kubernetes").inputs.kubeconfig).toEqual({ __pulumiUnknown: true });
    });
});

describe("an EKS stack in another AWS partition", () => {
    it("names the managed policies in that partition, which its region's name would not tell", async () => {
        const run = await runProgram("aws-development", { partition: "aws-iso-b" });
        const arns = [
            ...run.byType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => String(a.inputs.policyArn)),
            ...Object.values(
                run.one("eks:index:Cluster").inputs.accessEntries as Record<string, { accessPolicies: Record<string, { policyArn: string }> }>,
            ).flatMap((e) => Object.values(e.accessPolicies).map((p) => p.policyArn)),
        ];
        expect(arns.length).toBeGreaterThan(3);
        expect(arns.filter((arn) => !arn.startsWith("arn:aws-iso-b:"))).toEqual([]);
    });
});

describe("who runs an EKS stack", () => {
    // Refusing any other identity is an `apply` that throws (components/eks-cluster.ts), which fails the
    // run asynchronously; its message is deployerProblem's, tested in components/eks-access.test.ts.
    it("asks AWS who runs the program before the cluster, whose name waits on the answer", async () => {
        const run = await runProgram("aws-development", { callerArn: "arn:aws:sts::123456789012:assumed-role/platform-deployer/ci" });
        expect(run.calls).toContain("aws:index/getCallerIdentity:getCallerIdentity");
    });

    it("the deploy role gets its cluster", async () => {
        const run = await runProgram("aws-development", { callerArn: "arn:aws:sts::123456789012:assumed-role/platform-deployer/ci" });
        expect(run.one("eks:index:Cluster").inputs.name).toBe("gitops-development");
    });

    const previewer = "arn:aws:sts::123456789012:assumed-role/platform-previewer/gitlab-mr-42";

    it("a merge request's read-only role may preview, since a preview creates nothing", async () => {
        const run = await runProgram("aws-development", { callerArn: previewer, preview: true });
        expect(run.one("eks:index:Cluster").inputs.name).toBe("gitops-development");
    });
});

// --- resource options -------------------------------------------------------------------------

// Resource options (dependsOn, protect) never reach the mocks, so the Environment is built here with a
// transformation that records the options of itself and every child.

interface Recorded {
    type: string;
    name: string;
    resource: pulumiType.Resource;
    dependsOn: pulumiType.Resource[];
}

/**
 * Whether the engine is told to protect a resource. Children inherit `protect` from their parent after
 * transformations run, so the effective value is read from the constructed resource: the SDK keeps it
 * in `__protect` and sends exactly that to the engine.
 */
function isProtected(r: Recorded): boolean {
    return (r.resource as unknown as { __protect?: boolean }).__protect === true;
}

const built = new Map<string, ReturnType<typeof build>>();
function buildEnvironment(stack: string): ReturnType<typeof build> {
    if (!built.has(stack)) built.set(stack, build(stack));
    return built.get(stack)!;
}

async function build(stack: string) {
    const recorded: Recorded[] = [];
    const run = await runMocked(stack, {}, (load) => {
        const { parseConfig } = load("../../infra/config") as { parseConfig: typeof parseConfigType };
        const { Environment } = load("../../components/environment") as { Environment: typeof EnvironmentType };
        const { environmentArgs } = load("../../infra/program") as { environmentArgs: typeof environmentArgsType };
        const config = parseConfig(stackConfig(stack), { stack, env: { GITLAB_TOKEN: TEST_TOKEN } });
        return new Environment(config.environment, environmentArgs(config), {
            transformations: [
                (args) => {
                    const dependsOn = args.opts.dependsOn;
                    recorded.push({
                        type: args.type,
                        name: args.name,
                        resource: args.resource,
                        dependsOn: (Array.isArray(dependsOn) ? dependsOn : dependsOn ? [dependsOn] : []) as pulumiType.Resource[],
                    });
                    return undefined;
                },
            ],
        });
    });
    /** The logical names a resource was told to wait for, from their URNs. */
    const waitsFor = async (name: string) => {
        const entry = recorded.find((r) => r.name === name);
        if (!entry) throw new Error(`no resource named ${name}; have ${recorded.map((r) => r.name).join(", ")}`);
        const urns = await Promise.all(entry.dependsOn.map((d) => valueOf(d.urn)));
        return urns.map((u) => u.split("::").pop() ?? "").sort((a, b) => a.localeCompare(b));
    };
    return { run, recorded, waitsFor };
}

describe("Flux is bootstrapped in dependency order", () => {
    let env: Awaited<ReturnType<typeof buildEnvironment>>;
    beforeAll(async () => {
        env = await buildEnvironment("development");
    });

    it("the credentials wait for the flux-system namespace", async () => {
        expect(await env.waitsFor("development-flux-sync-credentials")).toEqual(["development-flux-namespace"]);
        expect(await env.waitsFor("development-flux-platform-repository")).toEqual(["development-flux-namespace"]);
    });

    it("the operator chart waits for both secrets, so the first sync can authenticate", async () => {
        expect(await env.waitsFor("development-flux-operator")).toEqual(["development-flux-platform-repository", "development-flux-sync-credentials"]);
    });

    it("the FluxInstance waits for the operator that owns its CRD", async () => {
        expect(await env.waitsFor("development-flux-instance")).toEqual(["development-flux-operator"]);
    });

    it("the teardown depends on the whole Flux install, so pulumi destroy runs it before Flux goes", async () => {
        expect(await env.waitsFor("development-teardown")).toEqual(["development-flux"]);
    });

    it("development protects nothing, so a sandbox-style teardown is one command", () => {
        expect(env.recorded.filter(isProtected).map((r) => r.name)).toEqual([]);
    });
});

describe("production protects the cluster and the Flux install", () => {
    it("protects the cluster, everything Flux runs on and the teardown, and nothing else", async () => {
        const env = await buildEnvironment("production");
        expect(env.recorded.filter(isProtected).map((r) => `${r.type} ${r.name}`)).toEqual([
            "gitops-platform:index:KindCluster production-cluster",
            "pulumi-nodejs:dynamic/kind:Cluster production-cluster",
            "gitops-platform:index:FluxBootstrap production-flux",
            "kubernetes:core/v1:Namespace production-flux-namespace",
            "kubernetes:core/v1:Secret production-flux-sync-credentials",
            "gitops-platform:index:PlatformRepositorySecret production-flux-platform-repository",
            "kubernetes:core/v1:Secret production-flux-platform-repository",
            "kubernetes:helm.sh/v3:Release production-flux-operator",
            "kubernetes:fluxcd.controlplane.io/v1:FluxInstance production-flux-instance",
            "gitops-platform:index:FluxTeardown production-teardown",
            "pulumi-nodejs:dynamic/flux:Teardown production-teardown",
        ]);
    });
});

describe("on EKS", () => {
    it("the Kubernetes provider waits for the node group and CoreDNS, so the operator's pods schedule and resolve", async () => {
        const env = await buildEnvironment("aws-development");
        expect(await env.waitsFor("development-kubernetes")).toEqual(["development-cluster-coredns", "development-cluster-nodes"]);
    });

    it("CoreDNS is an EKS add-on installed after the nodes, at the newest version for the cluster's Kubernetes", async () => {
        const run = await shared("aws-development");
        expect(run.one("aws:eks/addon:Addon").inputs).toMatchObject({ addonName: "coredns", resolveConflictsOnUpdate: "OVERWRITE" });
        expect(run.calls).toContain("aws:eks/getAddonVersion:getAddonVersion");
        const env = await buildEnvironment("aws-development");
        expect(await env.waitsFor("development-cluster-coredns")).toEqual(["development-cluster-nodes"]);
    });

    it("production protects the Secrets encryption key and the network along with the cluster", async () => {
        const env = await buildEnvironment("aws-production");
        const isProtectedType = (type: string) => env.recorded.filter((r) => r.type === type).every(isProtected);
        expect(isProtectedType("aws:kms/key:Key")).toBe(true);
        expect(isProtectedType("aws:ec2/vpc:Vpc")).toBe(true);
        expect(isProtectedType("eks:index:Cluster")).toBe(true);
        // The readiness gate deletes nothing, so protecting it would guard nothing.
        expect(env.recorded.filter((r) => !isProtected(r)).map((r) => r.type)).toEqual([
            "gitops-platform:index:Environment",
            "pulumi:providers:kubernetes",
            "gitops-platform:index:FluxReady",
            "pulumi-nodejs:dynamic/flux:Ready",
        ]);
    });

    it("development on EKS protects nothing", async () => {
        const env = await buildEnvironment("aws-development");
        expect(env.recorded.filter(isProtected)).toEqual([]);
    });
});

describe("EKS support pricing is a choice in the stack file", () => {
    it.each([
        ["aws-development", "STANDARD"],
        ["aws-staging", "STANDARD"],
        ["aws-production", "EXTENDED"],
    ])("%s runs on %s support", async (stack, supportType) => {
        const run = await shared(stack);
        expect(run.one("eks:index:Cluster").inputs.upgradePolicy).toEqual({ supportType });
    });
});
