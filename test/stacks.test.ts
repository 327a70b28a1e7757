import type * as pulumiType from "@pulumi/pulumi";
import {
    DeclaredResource,
    FAKE_EKS,
    field,
    FAKE_KUBECONFIG,
    isSecretInput,
    MockedRun,
    runProgram,
    shippedStacks,
    stackFacts,
    stacksOn,
    SECRET_SIG,
    TEST_TOKEN,
    valueOf,
} from "./support/program";
import { crdValidator, SHARED_SCHEMAS } from "./support/crd-schema";

// Each shipped stack file, loaded the way the Pulumi CLI loads it, runs the real program under mocks.

const FLUX_INSTANCE = "kubernetes:fluxcd.controlplane.io/v1:FluxInstance";
const SECRET = "kubernetes:core/v1:Secret";
const RELEASE = "kubernetes:helm.sh/v3:Release";

/** A secret input's value, unwrapped; fails the test when the input is not secret. */
function secretValue(value: unknown): unknown {
    expect(isSecretInput(value)).toBe(true);
    return (value as Record<string, unknown>).value;
}

function secretNamed(run: MockedRun<unknown>, name: string): DeclaredResource {
    const found = run.byType(SECRET).filter((s) => field(s.inputs, "metadata.name") === name);
    expect(found).toHaveLength(1);
    return found[0];
}

/** Every string in a value that is not inside a secret. */
function plainStrings(value: unknown): string[] {
    if (typeof value === "string") return [value];
    if (value === null || typeof value !== "object") return [];
    if (SECRET_SIG in value) return [];
    return Object.values(value).flatMap(plainStrings);
}

const tokenForms = [TEST_TOKEN, Buffer.from(TEST_TOKEN).toString("base64"), Buffer.from(`platform-reader:${TEST_TOKEN}`).toString("base64")];

/** One program run per stack, shared by every test that only reads it. */
const runs = new Map<string, Promise<MockedRun<Record<string, unknown>>>>();
function shared(stack: string): Promise<MockedRun<Record<string, unknown>>> {
    if (!runs.has(stack)) runs.set(stack, runProgram(stack, { recordLoads: ["@pulumi/aws", "@pulumi/eks"] }));
    return runs.get(stack)!;
}

it("ships one stack per environment on kind, and an AWS twin of each", () => {
    expect(shippedStacks()).toEqual(["aws-development", "aws-production", "aws-staging", "development", "production", "staging"]);
    expect(shippedStacks().map((s) => [s, stackFacts(s).environment])).toEqual([
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
        expect(run.one("pulumi-nodejs:dynamic/kind:Cluster").inputs).toMatchObject({ name: stack, nodeImage: "kindest/node:v1.35.0" });
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

describe.each(shippedStacks())("the %s stack", (stack) => {
    const env = stackFacts(stack).environment;
    let run: MockedRun<Record<string, unknown>>;
    beforeAll(async () => {
        run = await shared(stack);
    });

    it("installs the flux-operator chart from its OCI repository into flux-system", () => {
        expect(run.one(RELEASE).inputs).toMatchObject({
            name: "flux-operator",
            chart: "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator",
            version: "0.58.0",
            namespace: "flux-system",
            createNamespace: false,
        });
    });

    it(`syncs clusters/${env} from the main branch through the FluxInstance`, () => {
        const instance = run.one(FLUX_INSTANCE).inputs;
        expect(instance.metadata).toEqual({ name: "flux", namespace: "flux-system" });
        expect(field(instance, "spec.sync")).toEqual({
            kind: "GitRepository",
            url: "https://gitlab.com/gitops-platform/gitops-platform.git",
            ref: "refs/heads/main",
            path: `clusters/${env}`,
            pullSecret: "flux-system",
            interval: "1m",
        });
    });

    it("gives the root sync basic-auth credentials, the password secret", () => {
        const credentials = secretNamed(run, "flux-system").inputs;
        expect(credentials.type).toBe("kubernetes.io/basic-auth");
        expect(field(credentials, "metadata.namespace")).toBe("flux-system");
        expect(secretValue(credentials.stringData)).toEqual({ username: "git", password: TEST_TOKEN });
    });

    it("never puts the token in a plain input, nor in the serialised kind provider", () => {
        const leaks = run.resources.flatMap((r) =>
            plainStrings(r.inputs)
                .filter((s) => tokenForms.some((t) => s.includes(t)))
                .map(() => `${r.type} ${r.name}`),
        );
        expect(leaks).toEqual([]);
    });

    it("exports the kubeconfig as a secret and no output carries the token in the clear", async () => {
        const { pulumi } = run;
        expect(await pulumi.isSecret(run.result.kubeconfig as import("@pulumi/pulumi").Output<string>)).toBe(true);
        for (const [name, output] of Object.entries(run.result)) {
            const isOutput = pulumi.Output.isInstance(output);
            const value = isOutput ? await valueOf(output) : output;
            if (isOutput && (await pulumi.isSecret(output))) continue;
            expect([name, JSON.stringify(value ?? null).includes(TEST_TOKEN)]).toEqual([name, false]);
        }
    });

    it("exports the sync source, ref and path", async () => {
        expect(await valueOf(run.result.clusterName as import("@pulumi/pulumi").Output<string>)).toMatch(new RegExp(`^(gitops-)?${env}$`));
        expect(run.result.sync).toEqual({
            url: "https://gitlab.com/gitops-platform/gitops-platform.git",
            ref: "refs/heads/main",
            path: `clusters/${env}`,
        });
        expect(run.result.environmentName).toBe(env);
    });

    it("declares a FluxInstance the upstream CRD schema accepts, with no field the API server would drop", () => {
        const validate = crdValidator("fluxcd.controlplane.io_fluxinstances.yaml", "v1");
        if (!validate) {
            throw new Error(`The FluxInstance CRD is not at ${SHARED_SCHEMAS}; this check needs ../shared/schemas beside the repository.`);
        }
        const instance = run.one(FLUX_INSTANCE).inputs;
        expect(validate(instance) ? [] : validate.errors).toEqual([]);
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

    it("tells Flux it runs on AWS", () => {
        expect(field(run.one("kubernetes:fluxcd.controlplane.io/v1:FluxInstance").inputs, "spec.cluster.type")).toBe("aws");
    });

    it("loads the AWS packages, which kind stacks never do", () => {
        expect(run.loaded.sort()).toEqual(["@pulumi/aws", "@pulumi/eks"]);
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
        const awsWithKindClusterType = aws.map((r) =>
            r.type.endsWith(":FluxInstance") ? { ...r, inputs: withClusterType(r.inputs, "kubernetes") } : r,
        );
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
