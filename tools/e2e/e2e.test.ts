import { afterAll, beforeEach, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { FakeCli, fakeCheckout, installFakes, recordedCalls, runnerWith } from "../../test/support/fake-cli";
import { cliConfig } from "../../lib/stack-files";
import { parseConfig } from "../../infra/config";
import { REPO_ROOT } from "../../lib/project";
import { e2e, e2ePlan, formatPlan, layersInOrder, nothingLeft, writeStackFile } from "./e2e";

// `npm run e2e` against stand-ins for pulumi, kind, Docker and kubectl: the steps it takes, in order,
// what it prints when something fails, and that it always tears down and cleans up.

const NAME = "e2e-test01";
let root: string;
let bin: string;
let state: string;
let printed: string[];
const roots: string[] = [];
const COMMIT = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const SOURCE = {
    E2E_REPOSITORY_URL: "https://gitlab.example/platform/gitops-platform.git",
    E2E_BRANCH: "feature/x",
    E2E_COMMIT: COMMIT,
    CI_JOB_TOKEN: "not-a-real-job-token",
};

beforeEach(() => {
    ({ root, bin, state } = fakeCheckout("e2e"));
    roots.push(root);
    printed = [];
});
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

const calls = () => recordedCalls(state);

/** The test's clock: it moves only when the run sleeps, so waiting is judged without waiting. */
let clock = 0;
let slept: number[] = [];

async function run(fakes: FakeCli[], extra: NodeJS.ProcessEnv = SOURCE): Promise<number> {
    installFakes(bin, fakes);
    const env = { PATH: bin, FAKE_STATE: state, ...extra };
    clock = 0;
    slept = [];
    const sleep = async (ms: number) => {
        slept.push(ms);
        clock += ms;
    };
    return e2e({ root, env, run: runnerWith(env), print: (l) => printed.push(l), now: () => clock, sleep, name: NAME });
}

describe("npm run e2e", () => {
    it("without the tools or the source to sync, exits 2 with one line naming what is missing", async () => {
        installFakes(bin, ["docker"]);
        fs.writeFileSync(path.join(state, "docker-down"), "");
        expect(await run(["docker"], {})).toBe(2);
        expect(printed).toEqual([
            'npm run e2e needs a running Docker engine, kind v0.31.x, the Pulumi CLI, kubectl, E2E_REPOSITORY_URL (or CI_PROJECT_URL), E2E_BRANCH (or CI_COMMIT_BRANCH), GITLAB_TOKEN (or CI_JOB_TOKEN); see the README\'s "End-to-end test"',
        ]);
    });

    /** Runs the test and returns its exit code with the throw-away stack file, read while it existed. */
    async function runWatchingStackFile(env: NodeJS.ProcessEnv): Promise<{ code: number; stackFile: unknown }> {
        let stackFile: unknown;
        const watcher = setInterval(() => {
            const file = path.join(root, "stacks", `Pulumi.${NAME}.yaml`);
            if (!stackFile && fs.existsSync(file)) stackFile = parse(fs.readFileSync(file, "utf8"));
        }, 5);
        const code = await run(["pulumi", "kind", "docker", "kubectl"], env);
        clearInterval(watcher);
        return { code, stackFile };
    }

    it("brings development up from a throw-away stack syncing the branch under test, checks Flux and what its layers apply, then tears down and cleans up", async () => {
        const { code, stackFile } = await runWatchingStackFile(SOURCE);
        expect(printed.filter((l) => l.startsWith("✗"))).toEqual([]);
        expect(code).toBe(0);
        expect(stackFile).toMatchObject({
            config: {
                "gitops-platform:environment": "development",
                "gitops-platform:cluster": { backend: "kind", name: NAME },
                "gitops-platform:sync": { url: SOURCE.E2E_REPOSITORY_URL, branch: "feature/x", commit: COMMIT, username: "gitlab-ci-token" },
                "gitops-platform:platformRepository": { url: SOURCE.E2E_REPOSITORY_URL, username: "gitlab-ci-token" },
            },
        });
        const steps = calls()
            .filter((c) => /^pulumi (stack init|up|destroy)|^kubectl --kubeconfig|^kind (get|delete)/.test(c))
            .map((c) =>
                c
                    .replace(/ \|.*/, "")
                    .replace(/ --(skip-preview|exec-kind \S+|color \S+|non-interactive|stack \S+)/g, "")
                    .replace(/ --target \S+::development-teardown/, " --target <teardown>")
                    .replace(/--kubeconfig \S+gitops-e2e-state-\w+\/kubeconfig/, "--kubeconfig <stack kubeconfig>"),
            );
        expect(steps).toEqual([
            `pulumi stack init ${NAME}`,
            "pulumi up --yes",
            `kubectl --kubeconfig <stack kubeconfig> -n flux-system get fluxinstance flux -o json`,
            `kubectl --kubeconfig <stack kubeconfig> get kustomizations -A -o json`,
            // What the sample's layers apply: its two Helm releases, found in the tree, not named here.
            `kubectl --kubeconfig <stack kubeconfig> -n cert-manager wait --for=condition=Ready helmrelease.helm.toolkit.fluxcd.io/cert-manager --timeout=300s`,
            `kubectl --kubeconfig <stack kubeconfig> -n podinfo wait --for=condition=Ready helmrelease.helm.toolkit.fluxcd.io/podinfo --timeout=300s`,
            "pulumi destroy --yes --target <teardown>",
            `kubectl --kubeconfig <stack kubeconfig> get namespaces -o json`,
            `kubectl --kubeconfig <stack kubeconfig> get crds -o name`,
            "pulumi destroy --yes",
            "kind get clusters",
        ]);
        expect(calls().filter((c) => c.startsWith("pulumi up"))[0]).toMatch(/\| backend=file:\/\/\S+gitops-e2e-state-\S+ passphrase=set$/);
        expect(printed).toContain("✓ the platform layers are Ready, in order (0s)");
        expect(printed).toContain(`[${NAME}] Updating (${NAME}):`);
        expect(printed.at(-1)).toBe(`e2e passed: ${NAME}`);
        expect(fs.existsSync(path.join(root, "stacks", `Pulumi.${NAME}.yaml`))).toBe(false);
    });

    it("in Docker-in-Docker, has the API server listen for the Docker service's host and reaches it there", async () => {
        const { code, stackFile } = await runWatchingStackFile({ ...SOURCE, E2E_KIND_API_SERVER_HOST: "docker" });
        expect(code).toBe(0);
        expect(stackFile).toMatchObject({ config: { "gitops-platform:cluster": { apiServer: { listenAddress: "0.0.0.0", host: "docker" } } } });
    });

    it("when Flux never gets Ready, prints the Flux objects and the operator's last lines, then still tears down", async () => {
        fs.writeFileSync(
            path.join(state, `fail-${NAME}`),
            `    error: Flux was not Ready within 600s (flux.readyTimeout): Kustomization flux-system/platform-services: Ready=False (HealthCheckFailed): timeout\n`,
        );
        expect(await run(["pulumi", "kind", "docker", "kubectl"])).toBe(1);
        expect(printed).toContainEqual(expect.stringMatching(/^✗ .*Flux was not Ready within 600s/));
        const after = printed.slice(printed.findIndex((l) => l.startsWith("✗")));
        expect(after.slice(1, 6)).toEqual([
            "--- Flux objects",
            "NAMESPACE     NAME   AGE   READY   STATUS",
            "flux-system   flux   5m    False   health check failed",
            "--- flux-operator, last 40 lines",
            '{"level":"error","msg":"Reconciler error","error":"timeout waiting for: [Kustomization/flux-system/flux-system status: InProgress]"}',
        ]);
        expect(calls().filter((c) => c.startsWith("pulumi destroy"))).toHaveLength(2);
        expect(fs.existsSync(path.join(state, `cluster-${NAME}`))).toBe(false);
        expect(printed.at(-1)).toBe(`e2e failed: ${NAME}`);
        expect(fs.existsSync(path.join(root, "stacks", `Pulumi.${NAME}.yaml`))).toBe(false);
    });

    it("waits, within a bound, for what Flux prunes in the background to finish terminating", async () => {
        fs.writeFileSync(path.join(state, "terminating-looks"), "3");
        expect(await run(["pulumi", "kind", "docker", "kubectl"])).toBe(0);
        expect(slept).toEqual([5000, 5000, 5000]);
        expect(printed).toContain("✓ nothing is left Terminating, and Flux is uninstalled (15s)");
    });

    it("fails naming the namespace when it is still Terminating after five minutes", async () => {
        fs.writeFileSync(path.join(state, "terminating-looks"), "1000");
        expect(await run(["pulumi", "kind", "docker", "kubectl"])).toBe(1);
        expect(printed).toContain("✗ namespaces left Terminating: podinfo");
        expect(slept.reduce((a, b) => a + b, 0)).toBe(300_000);
    });

    it("does not take a kind that cannot reach Docker for a cluster that is gone", async () => {
        // Docker unreachable by the end: kind can list nothing, which must not read as "no cluster left".
        fs.writeFileSync(path.join(state, "docker-gone"), "");
        expect(await run(["pulumi", "kind", "docker", "kubectl"])).toBe(1);
        expect(printed).toContainEqual(expect.stringMatching(/^✗ kind could not list its clusters: ERROR: failed to list clusters/));
    });

    it("deletes the kind cluster itself when pulumi destroy left it behind", async () => {
        fs.writeFileSync(path.join(state, "cluster-survives"), "");
        expect(await run(["pulumi", "kind", "docker", "kubectl"])).toBe(1);
        expect(printed).toContain(`✗ kind still lists the cluster ${NAME}`);
        expect(calls()).toContain(`kind delete cluster --name ${NAME}`);
    });
});

describe("the throw-away stack", () => {
    it("pins the root sync and the platform source to the commit under test, from a fork's own URL", () => {
        const fork = "https://gitlab.com/someone-else/gitops-platform.git";
        writeStackFile(root, NAME, { url: fork, branch: "feature/x", token: "unused", username: "gitlab-ci-token", commit: COMMIT }, undefined);
        const config = parseConfig(cliConfig(root, NAME), { stack: NAME, repoRoot: root, env: { GITLAB_TOKEN: "not-a-real-token" } });
        expect(config.sync).toMatchObject({ url: fork, branch: "feature/x", commit: COMMIT });
        expect(config.platformRepository).toMatchObject({ type: "git", url: fork });
    });

    it("is one the program accepts: development's config on its own cluster, syncing the branch under test with a job token", () => {
        const url = "https://gitlab.com/gitops-platform/gitops-platform.git";
        writeStackFile(root, NAME, { url, branch: "feature/x", token: "unused", username: "gitlab-ci-token" }, "docker");
        const config = parseConfig(cliConfig(root, NAME), { stack: NAME, repoRoot: root, env: { GITLAB_TOKEN: "not-a-real-token" } });
        expect(config.environment).toBe("development");
        expect(config.cluster).toMatchObject({ backend: "kind", name: NAME, apiServer: { listenAddress: "0.0.0.0", host: "docker" } });
        expect(config.sync).toMatchObject({ url, branch: "feature/x", path: "clusters/development", username: "gitlab-ci-token" });
    });
});

describe("what the end-to-end test calls success", () => {
    const layer = (name: string, at: string, status = "True") => ({
        metadata: { name, namespace: "flux-system" },
        status: { conditions: [{ type: "Ready", status, lastTransitionTime: at }] },
    });
    // A team's layers: names and order come from the plan, never from the sample.
    const layers = [
        { namespace: "flux-system", name: "infra-controllers", dependsOn: [] },
        { namespace: "flux-system", name: "infra-configs", dependsOn: ["flux-system/infra-controllers"] },
        { namespace: "flux-system", name: "apps", dependsOn: ["flux-system/infra-configs"] },
    ];

    it("the layers Ready in dependency order, each no earlier than the one before", () => {
        expect(() =>
            layersInOrder(
                {
                    items: [
                        layer("infra-controllers", "2026-11-30T10:00:30Z"),
                        layer("infra-configs", "2026-11-30T10:00:20Z"),
                        layer("apps", "2026-11-30T10:00:40Z"),
                    ],
                },
                layers,
            ),
        ).toThrow("infra-configs became Ready before infra-controllers, which it depends on");
        expect(() => layersInOrder({ items: [layer("infra-controllers", "2026-11-30T10:00:00Z")] }, layers)).toThrow(
            "Kustomization flux-system/infra-configs is not Ready",
        );
        expect(() =>
            layersInOrder(
                {
                    items: [
                        layer("infra-controllers", "2026-11-30T10:00:00Z"),
                        layer("infra-configs", "2026-11-30T10:00:20Z"),
                        layer("apps", "2026-11-30T10:00:40Z"),
                    ],
                },
                layers,
            ),
        ).not.toThrow();
    });

    it("plans a team's tree from what Flux builds: its layers in order, and the releases and workloads they apply", () => {
        const plan = e2ePlan(path.join(REPO_ROOT, "test", "fixtures", "overlay-tree"), "clusters/staging");
        expect(formatPlan(plan)).toEqual([
            "e2e plan for clusters/staging:",
            "  layers Ready, each no earlier than those it depends on:",
            "    Kustomization flux-system/infra-controllers",
            "    Kustomization flux-system/infra-configs (after flux-system/infra-controllers)",
            "    Kustomization flux-system/apps (after flux-system/infra-configs)",
            "  then available:",
            "    HelmRelease cert-manager/cert-manager",
            "    HelmRelease podinfo/podinfo",
        ]);
    });

    it("plans a Deployment and a StatefulSet a layer applies directly, and stops before any cluster when the tree does not build", async () => {
        const apps = path.join(root, "platform", "services");
        fs.writeFileSync(
            path.join(apps, "workloads.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: podinfo\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  namespace: podinfo\n",
        );
        const k = path.join(apps, "kustomization.yaml");
        fs.writeFileSync(k, fs.readFileSync(k, "utf8").replace("resources:\n", "resources:\n  - workloads.yaml\n"));
        expect(e2ePlan(root).workloads).toEqual(
            expect.arrayContaining([
                { kind: "Deployment", namespace: "podinfo", name: "web" },
                { kind: "StatefulSet", namespace: "podinfo", name: "db" },
            ]),
        );
        fs.writeFileSync(k, fs.readFileSync(k, "utf8").replace("resources:\n", "resources:\n  - missing.yaml\n"));
        expect(await run(["pulumi", "kind", "docker", "kubectl"])).toBe(1);
        expect(printed.at(-1)).toBe("✗ clusters/development does not build (npm run check says more); no cluster was created");
        // Only the tools' version probes ran: no stack, no cluster.
        expect(calls().filter((c) => /^(pulumi|kind|kubectl) /.test(c) && !/^\w+ version/.test(c))).toEqual([]);
    });

    it("no namespace left Terminating and no Flux CRD left after the teardown", () => {
        expect(() => nothingLeft('{"items":[{"metadata":{"name":"podinfo"},"status":{"phase":"Terminating"}}]}', "")).toThrow(
            "namespaces left Terminating: podinfo",
        );
        expect(() => nothingLeft('{"items":[]}', "customresourcedefinition.apiextensions.k8s.io/kustomizations.kustomize.toolkit.fluxcd.io\n")).toThrow(
            "Flux CRDs left after the teardown: customresourcedefinition.apiextensions.k8s.io/kustomizations.kustomize.toolkit.fluxcd.io",
        );
    });
});
