// Each kind stack file, loaded the way the Pulumi CLI loads it, runs the real program under mocks.
import { beforeAll, describe, expect, it } from "@jest/globals";
import { field, FAKE_KUBECONFIG, MockedRun, runMocked, runProgram, shippedStacks, stackFacts, stacksOn, TEST_TOKEN, valueOf } from "./support/program";
import { describeEveryStack, FLUX_INSTANCE, plainStrings, secretNamed, secretValue, sharedRuns } from "./support/stack-checks";

const shared = sharedRuns();

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

describeEveryStack(stacksOn("kind"), shared);

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
    const WEBHOOK = "https://hooks.slack.com/services/T000/B000/XXXX";

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
                eventSources: [
                    { kind: "GitRepository", name: "*", namespace: "flux-system" },
                    { kind: "OCIRepository", name: "*", namespace: "flux-system" },
                    { kind: "HelmRepository", name: "*", namespace: "flux-system" },
                    { kind: "Kustomization", name: "*", namespace: "flux-system" },
                    { kind: "HelmRelease", name: "*", namespace: "cert-manager" },
                    { kind: "HelmRelease", name: "*", namespace: "podinfo" },
                ],
            },
        });
        const plain = run.resources.flatMap((r) => plainStrings(r.inputs)).filter((v) => v.includes("hooks.slack.com"));
        expect(plain).toEqual([]);
    });
});

describe("the entry point", () => {
    it("infra/index.ts runs the program once and exports exactly its outputs", async () => {
        const run = await runMocked("development", {}, (load) => load("../../infra/index") as Record<string, unknown>);
        expect(Object.keys(run.result).sort()).toEqual(["clusterName", "environmentName", "kubeContext", "kubeconfig", "platformSourceKind", "sync"]);
        expect(run.byType("kubernetes:fluxcd.controlplane.io/v1:FluxInstance")).toHaveLength(1);
    });
});
