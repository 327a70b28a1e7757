import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { judge } from "../../components/flux-ready-provider";
import { kindReleaseProblem } from "../../components/kind-provider";
import { buildEnvironment, sharedKustomize } from "../../lib/flux-build";
import { KIND_RELEASE, PROJECT, TOKEN_ENV_VAR } from "../../lib/project";
import { CommandRunner } from "../../lib/run-command";
import { readStackDocument, stackFilePath } from "../../lib/stack-files";
import { definedEnv, firstError, prefixed, probeTools, pulumiOnPath, seconds } from "../local/workspace";

// `npm run e2e`: the development environment for real, on kind, from a throw-away stack: `pulumi up`,
// Flux and the platform Ready, then the teardown and `pulumi destroy`, checking that nothing is left.

export interface E2eContext {
    root: string;
    env: NodeJS.ProcessEnv;
    run: CommandRunner;
    print: (line: string) => void;
    now?: () => number;
    /** Waits between two looks at the cluster. @default a timer */
    sleep?: (ms: number) => Promise<void>;
    /** The throw-away stack's name. @default e2e-<6 random hex digits> */
    name?: string;
}

/** What the run syncs: the repository and branch under test, and a token that can read them. */
export interface E2eSource {
    url: string;
    branch: string;
    token: string;
    /** The user the token goes with: gitlab-ci-token for a CI job token. */
    username: string;
    /** The commit under test: the root sync and the platform source are pinned to it. */
    commit?: string;
}

/** A Flux Kustomization of the tree, with the layers it waits for (`namespace/name`). */
export interface PlanLayer {
    namespace: string;
    name: string;
    dependsOn: string[];
}

/** Something the layers apply that must come up: a workload, or a Helm release (its chart is not rendered here). */
export interface PlanWorkload {
    kind: "Deployment" | "StatefulSet" | "HelmRelease";
    namespace: string;
    name: string;
}

/** What the run waits for, derived from the tree as Flux builds it: whatever the team's layers are. */
export interface E2ePlan {
    clusterPath: string;
    layers: PlanLayer[];
    workloads: PlanWorkload[];
    /** Build errors: a tree that does not build is not worth a cluster. */
    errors: string[];
}

const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "HelmRelease"]);

/**
 * The layers of `clusterPath` (every Flux Kustomization the root sync applies, with its dependsOn) and
 * every Deployment, StatefulSet and HelmRelease those layers apply, from the one builder.
 */
export function e2ePlan(root: string, clusterPath = "clusters/development"): E2ePlan {
    const build = buildEnvironment(root, clusterPath, { kustomize: sharedKustomize() });
    const kustomizations = build.objects.filter(
        (o) => o.manifest.kind === "Kustomization" && o.manifest.apiVersion?.startsWith("kustomize.toolkit.fluxcd.io/"),
    );
    const layers = build.layers.map((l) => {
        const manifest = kustomizations.find(
            (k) => k.manifest.metadata?.name === l.name && (k.manifest.metadata?.namespace ?? "default") === l.namespace,
        )?.manifest;
        const deps = (manifest?.spec?.["dependsOn"] as { name: string; namespace?: string }[] | undefined) ?? [];
        return { namespace: l.namespace, name: l.name, dependsOn: deps.map((d) => `${d.namespace ?? l.namespace}/${d.name}`) };
    });
    const workloads = build.layers.flatMap((l) =>
        l.objects
            .map((o) => o.manifest)
            .filter((m) => WORKLOAD_KINDS.has(m.kind ?? "") && (m.kind !== "HelmRelease" || m.apiVersion?.startsWith("helm.toolkit.fluxcd.io/")))
            .map((m) => ({ kind: m.kind as PlanWorkload["kind"], namespace: m.metadata?.namespace ?? "default", name: m.metadata?.name ?? "" })),
    );
    const errors = build.findings.filter((f) => f.severity === "error").map((f) => `${f.file}: ${f.message}`);
    return { clusterPath, layers, workloads, errors };
}

/** The plan as `npm run e2e -- --plan` prints it. */
export function formatPlan(plan: E2ePlan): string[] {
    return [
        `e2e plan for ${plan.clusterPath}:`,
        ...plan.errors.map((e) => `  ✗ does not build: ${e}`),
        "  layers Ready, each no earlier than those it depends on:",
        ...plan.layers.map((l) => `    Kustomization ${l.namespace}/${l.name}${l.dependsOn.length > 0 ? ` (after ${l.dependsOn.join(", ")})` : ""}`),
        "  then available:",
        ...(plan.workloads.length > 0
            ? plan.workloads.map((w) => `    ${w.kind} ${w.namespace}/${w.name}`)
            : ["    (no Deployment, StatefulSet or HelmRelease in the layers)"]),
    ];
}

/** The kubectl that waits for one workload: Available, rolled out, or Ready (helm-controller waits for the chart's objects). */
function waitFor(w: PlanWorkload): string[] {
    switch (w.kind) {
        case "Deployment":
            return ["-n", w.namespace, "wait", "--for=condition=Available", `deployment/${w.name}`, "--timeout=300s"];
        case "StatefulSet":
            return ["-n", w.namespace, "rollout", "status", `statefulset/${w.name}`, "--timeout=300s"];
        case "HelmRelease":
            return ["-n", w.namespace, "wait", "--for=condition=Ready", `helmrelease.helm.toolkit.fluxcd.io/${w.name}`, "--timeout=300s"];
    }
}

/** The source under test, from the environment (the pipeline's own variables, or the user's). */
export function sourceFrom(env: NodeJS.ProcessEnv): E2eSource | string {
    const url = env["E2E_REPOSITORY_URL"] ?? (env["CI_PROJECT_URL"] ? `${env["CI_PROJECT_URL"]}.git` : undefined);
    const branch = env["E2E_BRANCH"] ?? env["CI_COMMIT_BRANCH"] ?? env["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"];
    const jobToken = env["CI_JOB_TOKEN"];
    const token = env[TOKEN_ENV_VAR] ?? jobToken;
    const missing = [
        url ? "" : "E2E_REPOSITORY_URL (or CI_PROJECT_URL)",
        branch ? "" : "E2E_BRANCH (or CI_COMMIT_BRANCH)",
        token ? "" : `${TOKEN_ENV_VAR} (or CI_JOB_TOKEN)`,
    ].filter(Boolean);
    if (!url || !branch || !token) return missing.join(", ");
    const commit = env["E2E_COMMIT"] ?? env["CI_COMMIT_SHA"];
    return { url, branch, token, username: env[TOKEN_ENV_VAR] ? "git" : "gitlab-ci-token", ...(commit ? { commit } : {}) };
}

/** The tools the run needs, and the source: one line naming whatever is missing, or undefined. */
export async function missing(ctx: E2eContext): Promise<string | undefined> {
    const { docker, kind, pulumi, kubectl } = await probeTools(ctx.run, ["docker", "kind", "pulumi", "kubectl"]);
    const lacking: string[] = [];
    if (!docker) lacking.push("Docker");
    else if (docker.code !== 0) lacking.push("a running Docker engine");
    if (!kind) lacking.push(`kind ${KIND_RELEASE}.x`);
    else if (kindReleaseProblem(kind.stdout)) lacking.push(`kind ${KIND_RELEASE}.x (found ${kind.stdout.trim()})`);
    if (!pulumi) lacking.push("the Pulumi CLI");
    if (!kubectl) lacking.push("kubectl");
    const source = sourceFrom(ctx.env);
    if (typeof source === "string") lacking.push(source);
    return lacking.length > 0 ? `npm run e2e needs ${lacking.join(", ")}; see the README's "End-to-end test"` : undefined;
}

/** Runs the whole test; returns the exit code (0 passed, 1 failed, 2 could not start). */
export async function e2e(ctx: E2eContext): Promise<number> {
    const lacking = await missing(ctx);
    if (lacking) {
        ctx.print(lacking);
        return 2;
    }
    const plan = e2ePlan(ctx.root);
    if (plan.errors.length > 0) {
        for (const line of formatPlan(plan)) ctx.print(line);
        ctx.print("✗ clusters/development does not build (npm run check says more); no cluster was created");
        return 1;
    }
    const source = sourceFrom(ctx.env) as E2eSource;
    if (!source.commit) {
        // Run locally without E2E_COMMIT: the checkout's HEAD, which must be pushed to the branch.
        const head = await ctx.run("git", ["-C", ctx.root, "rev-parse", "HEAD"]).catch(() => undefined);
        if (head?.code === 0 && /^[0-9a-f]{40}$/.test(head.stdout.trim())) source.commit = head.stdout.trim();
    }
    const now = ctx.now ?? Date.now;
    const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const name = ctx.name ?? `e2e-${crypto.randomBytes(3).toString("hex")}`;
    const backend = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-e2e-state-"));
    const stackFile = stackFilePath(ctx.root, name);
    // The stack's own kubeconfig (its server is the one this job reaches, Docker-in-Docker included).
    const kubeconfig = path.join(backend, "kubeconfig");
    const kubectl = async (args: string[]) => {
        const r = await ctx.run("kubectl", ["--kubeconfig", kubeconfig, ...args]);
        if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.trim() || r.stdout.trim()}`);
        return r.stdout;
    };
    const step = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
        const started = now();
        ctx.print(`▸ ${what}`);
        const result = await body();
        ctx.print(`✓ ${what} (${seconds(now() - started)})`);
        return result;
    };

    ctx.print(`e2e: stack ${name}, syncing ${source.url} at ${source.branch}${source.commit ? ` (commit ${source.commit})` : " (its head)"}`);
    writeStackFile(ctx.root, name, source, ctx.env["E2E_KIND_API_SERVER_HOST"]);
    let stack: Stack | undefined;
    let failed = false;
    try {
        const workspace = await LocalWorkspace.create({
            workDir: ctx.root,
            envVars: {
                ...definedEnv(ctx.env),
                PULUMI_BACKEND_URL: `file://${backend}`,
                PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(12).toString("hex"),
                [TOKEN_ENV_VAR]: source.token,
            },
            pulumiCommand: await pulumiOnPath(ctx.env),
        });
        const created = await Stack.create(name, workspace);
        stack = created;
        await step("pulumi up (the cluster, Flux, and waiting for Flux to be Ready)", async () => {
            try {
                await created.up({ onOutput: prefixed(name, ctx.print), color: "never" });
            } finally {
                await saveKubeconfig(created, kubeconfig);
            }
        });
        await step("the FluxInstance is Ready", async () =>
            expectReady("FluxInstance", JSON.parse(await kubectl(["-n", "flux-system", "get", "fluxinstance", "flux", "-o", "json"]))),
        );
        await step("the platform layers are Ready, in order", async () =>
            layersInOrder(JSON.parse(await kubectl(["get", "kustomizations", "-A", "-o", "json"])) as KustomizationList, plan.layers),
        );
        for (const w of plan.workloads) await step(`${w.kind} ${w.namespace}/${w.name} is available`, () => kubectl(waitFor(w)));
    } catch (e) {
        failed = true;
        ctx.print(`✗ ${firstError(e)}`);
        await diagnose(ctx, kubeconfig);
    }

    try {
        if (stack) {
            const teardown = `urn:pulumi:${name}::${PROJECT}::${PROJECT}:index:Environment$${PROJECT}:index:FluxTeardown$pulumi-nodejs:dynamic/flux:Teardown::development-teardown`;
            const target = stack;
            await step("the Flux teardown (pulumi destroy --target the teardown)", () =>
                target.destroy({ target: [teardown], onOutput: prefixed(name, ctx.print), color: "never" }),
            );
            if (!failed)
                await step("nothing is left Terminating, and Flux is uninstalled", async () => {
                    // Flux deletes what the layers applied in the background (kustomize-controller prunes with
                    // Background propagation), so a namespace may still be going: look again, for a while.
                    const deadline = now() + LEFTOVERS_TIMEOUT_MS;
                    for (;;) {
                        try {
                            return nothingLeft(await kubectl(["get", "namespaces", "-o", "json"]), await kubectl(["get", "crds", "-o", "name"]));
                        } catch (e) {
                            if (now() >= deadline) throw e;
                            await sleep(LEFTOVERS_POLL_MS);
                        }
                    }
                });
            await step("pulumi destroy", () => target.destroy({ onOutput: prefixed(name, ctx.print), color: "never" }));
        }
        await step("the kind cluster is gone", async () => {
            const clusters = await ctx.run("kind", ["get", "clusters"]);
            // An unreachable Docker makes kind list nothing: that is no proof the cluster went.
            if (clusters.code !== 0) throw new Error(`kind could not list its clusters: ${clusters.stderr.trim() || clusters.stdout.trim()}`);
            if (
                clusters.stdout
                    .split("\n")
                    .map((l) => l.trim())
                    .includes(name)
            )
                throw new Error(`kind still lists the cluster ${name}`);
        });
    } catch (e) {
        failed = true;
        ctx.print(`✗ ${firstError(e)}`);
        // The machine must not keep a cluster the run made, whatever went wrong with the destroy.
        await ctx.run("kind", ["delete", "cluster", "--name", name]).catch(() => undefined);
    } finally {
        fs.rmSync(stackFile, { force: true });
        fs.rmSync(backend, { recursive: true, force: true });
    }
    ctx.print(failed ? `e2e failed: ${name}` : `e2e passed: ${name}`);
    return failed ? 1 : 0;
}

/** How long the teardown's leftovers may take to go, and how often to look. */
const LEFTOVERS_TIMEOUT_MS = 300_000;
const LEFTOVERS_POLL_MS = 5_000;

/** Where kubectl finds the cluster: the stack's kubeconfig output, readable by this user only. */
async function saveKubeconfig(stack: Stack, file: string): Promise<void> {
    const value = ((await stack.outputs().catch(() => ({}))) as Record<string, { value?: unknown }>)["kubeconfig"]?.value;
    if (typeof value === "string") fs.writeFileSync(file, value, { mode: 0o600 });
}

/**
 * The throw-away stack: development's config, its own cluster, following the source under test. In
 * Docker-in-Docker, `apiServerHost` is the Docker service's host name (E2E_KIND_API_SERVER_HOST=docker).
 */
export function writeStackFile(root: string, name: string, source: E2eSource, apiServerHost: string | undefined): void {
    const doc = readStackDocument(root, "development");
    doc.setIn(["config", `${PROJECT}:cluster`, "name"], name);
    if (apiServerHost) doc.setIn(["config", `${PROJECT}:cluster`, "apiServer"], { listenAddress: "0.0.0.0", host: apiServerHost });
    doc.setIn(["config", `${PROJECT}:sync`, "url"], source.url);
    doc.setIn(["config", `${PROJECT}:sync`, "branch"], source.branch);
    // Pins the root sync and the platform source to the commit under test (components/flux-bootstrap.ts).
    if (source.commit) doc.setIn(["config", `${PROJECT}:sync`, "commit"], source.commit);
    doc.setIn(["config", `${PROJECT}:sync`, "username"], source.username);
    doc.setIn(["config", `${PROJECT}:platformRepository`, "url"], source.url);
    doc.setIn(["config", `${PROJECT}:platformRepository`, "username"], source.username);
    doc.commentBefore = ` Written by npm run e2e for one run and removed after it; never commit it.`;
    fs.writeFileSync(stackFilePath(root, name), doc.toString());
}

function expectReady(kind: string, object: object): void {
    const verdict = judge({ apiVersion: "", kind, namespace: "flux-system", name: "" }, object);
    if (verdict.state !== "ready") throw new Error(`${kind} is not Ready: ${verdict.state === "missing" ? "missing" : verdict.why}`);
}

interface KustomizationList {
    items: {
        metadata: { name: string; namespace?: string };
        status?: { conditions?: { type: string; status: string; lastTransitionTime?: string }[] };
    }[];
}

/** Each layer Ready, and none Ready before a layer it depends on. */
export function layersInOrder(list: KustomizationList, layers: PlanLayer[]): void {
    const readyAt = new Map<string, number>();
    for (const layer of layers) {
        const id = `${layer.namespace}/${layer.name}`;
        const item = list.items.find((i) => i.metadata.name === layer.name && (i.metadata.namespace ?? "flux-system") === layer.namespace);
        const ready = item?.status?.conditions?.find((c) => c.type === "Ready");
        if (!item || ready?.status !== "True") throw new Error(`Kustomization ${id} is not Ready`);
        readyAt.set(id, Date.parse(ready.lastTransitionTime ?? ""));
    }
    for (const layer of layers) {
        const id = `${layer.namespace}/${layer.name}`;
        for (const dep of layer.dependsOn) {
            const before = readyAt.get(dep);
            if (before !== undefined && (readyAt.get(id) ?? 0) < before)
                throw new Error(`${layer.name} became Ready before ${dep.split("/")[1]}, which it depends on`);
        }
    }
}

/** After the teardown: no namespace stuck Terminating, no Flux CRD left. */
export function nothingLeft(namespacesJson: string, crdNames: string): void {
    const namespaces = (JSON.parse(namespacesJson) as { items: { metadata: { name: string }; status?: { phase?: string } }[] }).items;
    const terminating = namespaces.filter((n) => n.status?.phase === "Terminating").map((n) => n.metadata.name);
    if (terminating.length > 0) throw new Error(`namespaces left Terminating: ${terminating.join(", ")}`);
    const flux = crdNames.split("\n").filter((l) => l.trim().endsWith("toolkit.fluxcd.io"));
    if (flux.length > 0) throw new Error(`Flux CRDs left after the teardown: ${flux.join(", ")}`);
}

/** What a failed run prints before it tears down: every Flux object's state and the operator's last words. */
async function diagnose(ctx: E2eContext, kubeconfig: string): Promise<void> {
    if (!fs.existsSync(kubeconfig)) return ctx.print("--- no cluster to look at: pulumi up did not get that far");
    const show = async (title: string, args: string[]) => {
        const r = await ctx.run("kubectl", ["--kubeconfig", kubeconfig, ...args]).catch((e: unknown) => ({ code: 1, stdout: "", stderr: String(e) }));
        ctx.print(`--- ${title}`);
        for (const line of (r.stdout || r.stderr).trimEnd().split("\n")) ctx.print(line);
    };
    await show("Flux objects", ["get", "fluxinstances,gitrepositories,ocirepositories,helmrepositories,kustomizations,helmreleases", "-A", "-o", "wide"]);
    await show("flux-operator, last 40 lines", ["-n", "flux-system", "logs", "deploy/flux-operator", "--tail=40"]);
}
