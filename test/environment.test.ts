import { beforeAll, describe, expect, it } from "@jest/globals";
import type * as pulumiType from "@pulumi/pulumi";
import type { Environment as EnvironmentType } from "../components/environment";
import type { parseConfig as parseConfigType } from "../infra/config";
import type { environmentArgs as environmentArgsType } from "../infra/program";
import { runMocked, stackConfig, TEST_TOKEN, valueOf } from "./support/program";

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
    it("the Kubernetes provider waits for the node group, so the operator's pods can schedule", async () => {
        const env = await buildEnvironment("aws-development");
        expect(await env.waitsFor("development-kubernetes")).toEqual(["development-cluster-nodes"]);
    });

    it("production protects the Secrets encryption key and the network along with the cluster", async () => {
        const env = await buildEnvironment("aws-production");
        const isProtectedType = (type: string) => env.recorded.filter((r) => r.type === type).every(isProtected);
        expect(isProtectedType("aws:kms/key:Key")).toBe(true);
        expect(isProtectedType("aws:ec2/vpc:Vpc")).toBe(true);
        expect(isProtectedType("eks:index:Cluster")).toBe(true);
        expect(env.recorded.filter((r) => !isProtected(r)).map((r) => r.type)).toEqual(["gitops-platform:index:Environment", "pulumi:providers:kubernetes"]);
    });

    it("development on EKS protects nothing", async () => {
        const env = await buildEnvironment("aws-development");
        expect(env.recorded.filter(isProtected)).toEqual([]);
    });
});
