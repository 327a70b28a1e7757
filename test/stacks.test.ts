import {
    DeclaredResource,
    field,
    FAKE_KUBECONFIG,
    isSecretInput,
    MockedRun,
    runProgram,
    shippedStacks,
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

it("ships one stack per environment", () => {
    expect(shippedStacks()).toEqual(["development", "production", "staging"]);
});

describe.each(shippedStacks())("the %s stack", (stack) => {
    let run: MockedRun<Record<string, unknown>>;
    beforeAll(async () => {
        run = await shared(stack);
    });

    it("declares a kind cluster named after the environment", () => {
        expect(run.one("pulumi-nodejs:dynamic/kind:Cluster").inputs).toMatchObject({ name: stack, nodeImage: "kindest/node:v1.35.0" });
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

    it(`syncs clusters/${stack} from the main branch through the FluxInstance`, () => {
        const instance = run.one(FLUX_INSTANCE).inputs;
        expect(instance.metadata).toEqual({ name: "flux", namespace: "flux-system" });
        expect(field(instance, "spec.sync")).toEqual({
            kind: "GitRepository",
            url: "https://gitlab.com/gitops-platform/gitops-platform.git",
            ref: "refs/heads/main",
            path: `clusters/${stack}`,
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
        const kubeconfig = run.result.kubeconfig as import("@pulumi/pulumi").Output<string>;
        expect(await pulumi.isSecret(kubeconfig)).toBe(true);
        expect(await valueOf(kubeconfig)).toBe(FAKE_KUBECONFIG);
        for (const [name, output] of Object.entries(run.result)) {
            const isOutput = pulumi.Output.isInstance(output);
            const value = isOutput ? await valueOf(output) : output;
            if (isOutput && (await pulumi.isSecret(output))) continue;
            expect([name, JSON.stringify(value ?? null).includes(TEST_TOKEN)]).toEqual([name, false]);
        }
    });

    it("exports the sync source, ref and path", async () => {
        expect(await valueOf(run.result.clusterName as import("@pulumi/pulumi").Output<string>)).toBe(stack);
        expect(run.result.sync).toEqual({
            url: "https://gitlab.com/gitops-platform/gitops-platform.git",
            ref: "refs/heads/main",
            path: `clusters/${stack}`,
        });
        expect(run.result.environmentName).toBe(stack);
    });

    it("declares a FluxInstance the upstream CRD schema accepts, with no field the API server would drop", () => {
        const validate = crdValidator("fluxcd.controlplane.io_fluxinstances.yaml", "v1");
        if (!validate) {
            throw new Error(`The FluxInstance CRD is not at ${SHARED_SCHEMAS}; this check needs ../shared/schemas beside the repository.`);
        }
        const instance = run.one(FLUX_INSTANCE).inputs;
        expect(validate(instance) ? [] : validate.errors).toEqual([]);
    });

    it("never loads the AWS packages on a kind stack", () => {
        expect(run.loaded).toEqual([]);
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
