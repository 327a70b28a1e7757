import { beforeAll, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import { parse } from "yaml";
import * as path from "path";
import type * as pulumiType from "@pulumi/pulumi";
import { FLUX_INSTANCE_CRD, vendoredOperatorVersion } from "../../tools/schemas/vendored";
import { crdValidator } from "./crd-schema";
import { DeclaredResource, field, isSecretInput, MockedRun, runProgram, SECRET_SIG, stackFacts, TEST_TOKEN, valueOf } from "./program";
import { defined } from "../../lib/defined";
import { buildEnvironment, sharedKustomize } from "../../lib/flux-build";
import { DEFAULTS } from "../../infra/config";

// Checks every shipped stack must pass, whichever backend it runs on.

export const FLUX_INSTANCE = "kubernetes:fluxcd.controlplane.io/v1:FluxInstance";
export const SECRET = "kubernetes:core/v1:Secret";
export const RELEASE = "kubernetes:helm.sh/v3:Release";
export const FLUX_READY = "pulumi-nodejs:dynamic/flux:Ready";

/** A secret input's value, unwrapped; fails the test when the input is not secret. */
export function secretValue(value: unknown): unknown {
    expect(isSecretInput(value)).toBe(true);
    return (value as Record<string, unknown>).value;
}

export function secretNamed(run: MockedRun<unknown>, name: string): DeclaredResource {
    const found = run.byType(SECRET).filter((s) => field(s.inputs, "metadata.name") === name);
    expect(found).toHaveLength(1);
    return defined(found[0], `secret ${name}`);
}

/** Every string in a value that is not inside a secret. */
export function plainStrings(value: unknown): string[] {
    if (typeof value === "string") return [value];
    if (value === null || typeof value !== "object") return [];
    if (SECRET_SIG in value) return [];
    return Object.values(value).flatMap(plainStrings);
}

export const tokenForms = [TEST_TOKEN, Buffer.from(TEST_TOKEN).toString("base64"), Buffer.from(`platform-reader:${TEST_TOKEN}`).toString("base64")];

export type StackRun = MockedRun<Record<string, unknown>>;

/**
 * Every AWS and EKS module the program may load, each by the path it is loaded by (the components
 * import them one by one). Kind stacks must load none; the package indexes must never load.
 */
export const AWS_MODULES = [
    "@pulumi/aws",
    "@pulumi/eks",
    "@pulumi/aws/ec2",
    "@pulumi/aws/eks",
    "@pulumi/aws/getCallerIdentity",
    "@pulumi/aws/iam",
    "@pulumi/aws/kms",
    "@pulumi/aws/provider",
    "@pulumi/eks/cluster",
    "@pulumi/eks/managedNodeGroup",
    "@pulumi/eks/types/enums",
];

/** One program run per stack, shared by every test in a file that only reads it. */
export function sharedRuns(): (stack: string) => Promise<StackRun> {
    const runs = new Map<string, Promise<StackRun>>();
    return (stack) => {
        if (!runs.has(stack)) runs.set(stack, runProgram(stack, { recordLoads: AWS_MODULES }));
        return runs.get(stack)!;
    };
}

/** What the checks expect of a stack: its environment, whether it is a sandbox, the branch it follows. */
export type StackExpectations = (stack: string) => { environment: string; sandbox: boolean; branch: string };

export function describeEveryStack(stacks: string[], shared: (stack: string) => Promise<StackRun>, expect_: StackExpectations = stackFacts): void {
    describe.each(stacks)("the %s stack", (stack) => {
        const { environment: env, sandbox, branch } = expect_(stack);
        let run: MockedRun<Record<string, unknown>>;
        beforeAll(async () => {
            run = await shared(stack);
        });

        it("installs the flux-operator release whose FluxInstance CRD is vendored in schemas/", () => {
            // The CRD the FluxInstance is validated against must be the one this chart installs.
            expect(run.one(RELEASE).inputs.version).toBe(vendoredOperatorVersion());
        });

        it("installs the flux-operator chart from its OCI repository into flux-system", () => {
            expect(run.one(RELEASE).inputs).toMatchObject({
                name: "flux-operator",
                chart: "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator",
                version: DEFAULTS.fluxOperatorVersion,
                namespace: "flux-system",
                createNamespace: false,
            });
        });

        // A sandbox follows its own branch when its platform comes from Git; everything else follows main.
        it(`syncs clusters/${env} from the ${branch} branch through the FluxInstance`, () => {
            const instance = run.one(FLUX_INSTANCE).inputs;
            expect(instance.metadata).toMatchObject({ name: "flux", namespace: "flux-system" });
            expect(field(instance, "spec.sync")).toEqual({
                kind: "GitRepository",
                url: "https://gitlab.com/gitops-platform/gitops-platform.git",
                ref: `refs/heads/${branch}`,
                path: `clusters/${env}`,
                pullSecret: "flux-system",
                interval: "1m",
            });
        });

        it("makes pulumi up wait, for ten minutes, until the root sync, every platform source and layer, and the FluxInstance report Ready", () => {
            const gate = run.one(FLUX_READY).inputs;
            expect(gate.timeoutSeconds).toBe(600);
            expect(isSecretInput(gate.kubeconfig)).toBe(true);
            // Causes first, so a failure names the object to fix rather than one waiting on it: the root
            // sync's source, then what the root sync applies (sources, then each layer after the layers it
            // dependsOn), then the root sync, then the FluxInstance. Whatever the tree's layers are called.
            const order = gate.objects as { kind: string; namespace: string; name: string }[];
            const ids = order.map((o) => `${o.kind} ${o.namespace}/${o.name}`);
            expect(ids[0]).toBe("GitRepository flux-system/flux-system");
            expect(ids.slice(-2)).toEqual(["Kustomization flux-system/flux-system", "FluxInstance flux-system/flux"]);
            expect(ids).toContain(`${String(run.result.platformSourceKind)} flux-system/platform`);
            const applied = buildEnvironment(run.root, `clusters/${env}`, { rootOnly: true, kustomize: sharedKustomize() })
                .root.map((b) => b.manifest)
                .filter((m) => /^(source|kustomize|helm)\.toolkit\.fluxcd\.io\//.test(m.apiVersion ?? ""));
            expect(ids.slice(1, -2).sort()).toEqual(applied.map((m) => `${m.kind} ${m.metadata?.namespace ?? "default"}/${m.metadata?.name}`).sort());
            const at = (id: string) => ids.indexOf(id);
            const firstLayer = ids.findIndex((i) => i.startsWith("Kustomization ") || i.startsWith("HelmRelease "));
            const outOfOrder = applied.flatMap((m) => {
                const id = `${m.kind} ${m.metadata?.namespace ?? "default"}/${m.metadata?.name}`;
                const late = m.apiVersion?.startsWith("source.") && at(id) > firstLayer ? [`${id} after a layer`] : [];
                const deps = ((m.spec?.["dependsOn"] as { name: string; namespace?: string }[] | undefined) ?? [])
                    .map((d) => `${m.kind} ${d.namespace ?? m.metadata?.namespace ?? "default"}/${d.name}`)
                    .filter((dep) => at(dep) > at(id))
                    .map((dep) => `${id} before ${dep}, which it dependsOn`);
                return [...late, ...deps];
            });
            expect(outOfOrder).toEqual([]);
            const instance = run.one(FLUX_INSTANCE).inputs;
            // Not pulumi-kubernetes' waitFor: it would sit out the whole timeout on a failed sync.
            expect(field(instance, "metadata.annotations")).toEqual({ "fluxcd.controlplane.io/reconcileTimeout": "10m" });
            expect(field(instance, "spec.wait")).toBe(true);
            // The root Kustomization waits for what it applies (the platform layers), so the FluxInstance's
            // Ready covers them.
            const [rootPatch] = field(instance, "spec.kustomize.patches") as { target: unknown; patch: string }[];
            expect(rootPatch?.target).toEqual({ kind: "Kustomization", name: "flux-system" });
            expect(parse(rootPatch?.patch ?? "")).toEqual({
                apiVersion: "kustomize.toolkit.fluxcd.io/v1",
                kind: "Kustomization",
                metadata: { name: "flux-system" },
                spec: { wait: true, timeout: "10m" },
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
            expect(await pulumi.isSecret(run.result.kubeconfig as pulumiType.Output<string>)).toBe(true);
            for (const [name, output] of Object.entries(run.result)) {
                const isOutput = pulumi.Output.isInstance(output);
                const value = isOutput ? await valueOf(output) : output;
                if (isOutput && (await pulumi.isSecret(output))) continue;
                expect([name, JSON.stringify(value ?? null).includes(TEST_TOKEN)]).toEqual([name, false]);
            }
        });

        it("exports the sync source, ref and path", async () => {
            expect(await valueOf(run.result.clusterName as pulumiType.Output<string>)).toMatch(new RegExp(`^(gitops-)?${env}$`));
            expect(run.result.sync).toEqual({
                url: "https://gitlab.com/gitops-platform/gitops-platform.git",
                ref: `refs/heads/${branch}`,
                path: `clusters/${env}`,
            });
            expect(run.result.environmentName).toBe(env);
        });

        // A sandbox lives for days and keeps no record: nothing long-lived depends on its URNs.
        if (!sandbox) {
            it("declares exactly the URNs recorded in test/urns/, so no existing stack's state moves", () => {
                // A changed URN is a delete and a create for Pulumi. When a change means to move resources,
                // it adds aliases, then refreshes the record: UPDATE_URNS=1 npx jest test/
                const file = path.join(__dirname, "..", "urns", `${stack}.txt`);
                const declared = [...run.urns].sort().join("\n") + "\n";
                if (process.env.UPDATE_URNS === "1") fs.writeFileSync(file, declared);
                expect(declared).toBe(fs.readFileSync(file, "utf8"));
            });
        }

        it("declares a FluxInstance the upstream CRD schema accepts, with no field the API server would drop", () => {
            const validate = crdValidator(FLUX_INSTANCE_CRD, "v1");
            const instance = run.one(FLUX_INSTANCE).inputs;
            expect(validate(instance) ? [] : validate.errors).toEqual([]);
        });
    });
}
