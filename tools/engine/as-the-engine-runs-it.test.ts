import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { cliConfig } from "../../lib/stack-files";
import { fakeKubeApi, fakeStatusApi, kubeconfigFor } from "../../test/support/fake-kube-api";
import { compilerOptionsOf, ProgramRun, runAsEngine } from "./language-host";
import { Answer, ProviderHost, startProviderHost } from "./provider-host";
import { REPO_ROOT } from "../../lib/project";

// The program and its two dynamic providers as the Pulumi CLI runs them: the program through Pulumi's
// own cmd/run (cwd, tsconfig and loader as the language host picks them), the providers serialised by
// Pulumi's closure serialiser inside that run, then executed by Pulumi's dynamic-provider host from
// that text, over gRPC, as the engine does.

const KIND = "pulumi-nodejs:dynamic/kind:Cluster";
const TEARDOWN = "pulumi-nodejs:dynamic/flux:Teardown";
const READY = "pulumi-nodejs:dynamic/flux:Ready";

// One run of the development stack's program serves every test here: it is what `pulumi preview`
// would execute, and its serialised providers are what the engine would store.
let run: ProgramRun;
let serialised: Record<string, string>;
beforeAll(async () => {
    run = await runAsEngine({
        projectDir: REPO_ROOT,
        project: "gitops-platform",
        stack: "development",
        config: { ...cliConfig(REPO_ROOT, "development"), "gitops-platform:token": "host-test-token" },
        secretKeys: ["gitops-platform:token"],
    });
    serialised = run.report.providers;
}, 60_000);

const ok = <T>(answer: Answer<T>): T => {
    if ("failed" in answer) throw new Error(`the provider failed: ${answer.failed.message}`);
    return answer.ok;
};

describe("the program as `pulumi preview` runs it (Pulumi's own cmd/run, mocks for the engine)", () => {
    it("runs from the project folder, where run.js finds tsconfig.pulumi.json", () => {
        expect(run.stderr).toBe("");
        expect(run.report.code).toBe(0);
        expect(run.report.cwd).toBe(REPO_ROOT);
        expect(run.report.tsNode?.configFile).toBe(path.join(REPO_ROOT, "tsconfig.pulumi.json"));
    });

    it("compiles transpile-only, so a preview never type-checks", () => {
        expect(run.report.tsNode?.transpileOnly).toBe(true);
    });

    it("declares the environment: the kind cluster, the Flux install and the root sync", () => {
        const types = run.report.resources.map((r) => r.type);
        expect(types).toEqual(
            expect.arrayContaining([
                "gitops-platform:index:Environment",
                "pulumi-nodejs:dynamic/kind:Cluster",
                "kubernetes:helm.sh/v3:Release",
                "kubernetes:fluxcd.controlplane.io/v1:FluxInstance",
            ]),
        );
    });

    it("emits the JavaScript the type-checked configuration describes (same target and module)", () => {
        const checked = compilerOptionsOf(path.join(REPO_ROOT, "tsconfig.json"));
        expect({ module: run.report.tsNode?.module, target: run.report.tsNode?.target }).toEqual({ module: checked.module, target: checked.target });
    });
});

describe("what the program needs installed", () => {
    it("is all in dependencies: a deploy that installs without devDependencies runs it", () => {
        const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
        expect(run.report.packages.length).toBeGreaterThan(10);
        // `debug` (node_modules/debug/src/node.js) loads supports-color only when it is installed: an optional peer.
        const optional = new Set(["node_modules/supports-color", "node_modules/has-flag"]);
        const devOnly = run.report.packages.filter((p) => !optional.has(p) && (lock.packages[p]?.dev === true || lock.packages[p] === undefined));
        expect(devOnly).toEqual([]);
    });
});

describe("the serialised providers", () => {
    it("stay small and capture no SDK by value", () => {
        expect(Object.keys(serialised).sort()).toEqual([READY, TEARDOWN, KIND]);
        for (const text of Object.values(serialised)) {
            // The teardown is the largest (phases, retries with deadlines, asking the cluster's owner, undoing
            // its freeze on a give-up, waiting for what the layers prune): 31.2 KB.
            expect(text.length).toBeLessThan(33_000);
            // A by-value copy of the SDK would bring its classes along; a require of a package is fine.
            expect(text).not.toMatch(/class Output\b|function serializeFunction|class ComponentResource\b/);
        }
    });

    it("carry no secret", () => {
        for (const text of Object.values(serialised)) expect(text).not.toContain("host-test-token");
    });
});

/** A `kind` on PATH that plays the real CLI's part: a cluster is a file in `state`. */
const fakeKinds: string[] = [];
afterAll(() => {
    for (const dir of fakeKinds) fs.rmSync(dir, { recursive: true, force: true });
});

function fakeKindOnPath(): { env: NodeJS.ProcessEnv; state: string; calls: () => string[] } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-fake-kind-"));
    fakeKinds.push(dir);
    const state = path.join(dir, "state");
    fs.mkdirSync(state);
    const script = `#!/bin/sh
echo "$*" >> "${state}/calls"
case "$1 $2" in
  "create cluster") cat > "${state}/config-$3-$4"; touch "${state}/cluster-$4" ;;
  "get kubeconfig")
    if [ -f "${state}/kubeconfig-fails" ]; then echo 'ERROR: failed to get cluster internal kubeconfig: command "docker exec --privileged development-control-plane cat /etc/kubernetes/admin.conf" failed' >&2; exit 1; fi
    printf 'apiVersion: v1\\nkind: Config\\ncurrent-context: kind-%s\\n' "$4" ;;
  "get clusters") for f in "${state}"/cluster-*; do [ -e "$f" ] && basename "$f" | sed 's/^cluster-//'; done; true ;;
  "delete cluster") rm -f "${state}/cluster-$4" ;;
esac
`;
    fs.writeFileSync(path.join(dir, "kind"), script, { mode: 0o755 });
    // The provider's node check (`docker exec <cluster>-control-plane kubectl get nodes`): every node Ready.
    fs.writeFileSync(path.join(dir, "docker"), `#!/bin/sh\necho "$2 True"\n`, { mode: 0o755 });
    return {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
        state,
        calls: () => fs.readFileSync(path.join(state, "calls"), "utf8").trim().split("\n"),
    };
}

const kindInputs = { name: "development", nodeImage: "kindest/node:v1.35.0", controlPlaneNodes: 1, workers: 0, portMappings: [] };

/** One provider host with a fake `kind` on its PATH serves both providers, as one host serves a whole `pulumi up`. */
let sharedHost: Promise<{ host: ProviderHost; kind: ReturnType<typeof fakeKindOnPath> }> | undefined;
function hostWithFakeKind() {
    sharedHost ??= (async () => {
        const kind = fakeKindOnPath();
        return { kind, host: await startProviderHost(kind.env) };
    })();
    return sharedHost;
}
afterAll(async () => (await sharedHost)?.host.stop());

describe("the kind provider in Pulumi's dynamic-provider host", () => {
    let host: ProviderHost;
    let kind: ReturnType<typeof fakeKindOnPath>;
    const inputs = () => ({ ...kindInputs, __provider: serialised[KIND] });
    beforeAll(async () => {
        ({ host, kind } = await hostWithFakeKind());
    });

    it("creates the cluster and answers with its kubeconfig and context", async () => {
        const created = ok(await host.create(inputs()));
        expect(created.id).toBe("development");
        expect(created.properties).toMatchObject({
            ...kindInputs,
            kubeconfig: "apiVersion: v1\nkind: Config\ncurrent-context: kind-development\n",
            context: "kind-development",
        });
        expect(created.properties.__provider).toBe(serialised[KIND]);
        expect(kind.calls()).toEqual(["create cluster --name development --config=- --wait 120s", "get kubeconfig --name development"]);
    });

    it("reports a cluster it created but could not read as created-but-not-initialised, so it stays in state", async () => {
        fs.writeFileSync(path.join(kind.state, "kubeconfig-fails"), "");
        let inState: Record<string, unknown> = {};
        try {
            const answer = await host.create({ ...inputs(), name: "half" });
            if ("failed" in answer) inState = answer.failed.initFailure?.properties ?? {};
            expect("failed" in answer && answer.failed).toEqual({
                message: expect.stringMatching(
                    /^kind created the cluster "half" but could not read its kubeconfig: `kind get kubeconfig` failed with exit code 1:\nERROR: failed to get cluster internal kubeconfig/,
                ),
                initFailure: {
                    id: "half",
                    properties: expect.objectContaining({ name: "half", kubeconfig: "", context: "kind-half", __provider: serialised[KIND] }),
                    reasons: [expect.stringMatching(/^kind created the cluster "half" but could not read its kubeconfig/)],
                },
            });
        } finally {
            fs.rmSync(path.join(kind.state, "kubeconfig-fails"));
        }
        // The next `pulumi up` finds the resource in state with an init error and updates it.
        const retried = ok(await host.update("half", { ...inputs(), name: "half", kubeconfig: "" }, { ...inputs(), name: "half" }));
        expect(retried.properties).toMatchObject({ name: "half", context: "kind-half", kubeconfig: expect.stringContaining("current-context: kind-half") });
        // And `pulumi destroy` can load the provider from what the failure left in state.
        expect(await host.delete("half", inState)).toEqual({ ok: null });
        expect(kind.calls().slice(-1)).toEqual(["delete cluster --name half"]);
    });

    it("updates in place, keeping the cluster, when only its own code changed", async () => {
        const edited = (serialised[KIND] ?? "").replace("needs a running Docker engine", "needs a running Docker daemon");
        expect(edited).not.toBe(serialised[KIND]);
        const olds = { ...inputs(), kubeconfig: "old", context: "kind-development" };
        expect(ok(await host.diff("development", olds, { ...kindInputs, __provider: edited }))).toEqual({
            changes: "some",
            replaces: [],
            deleteBeforeReplace: true,
        });
        const updated = ok(await host.update("development", olds, { ...kindInputs, __provider: edited }));
        expect(updated.properties).toMatchObject({ name: "development", context: "kind-development", __provider: edited });
        expect(kind.calls().filter((c) => /^(create|delete) cluster --name development\b/.test(c))).toEqual([
            "create cluster --name development --config=- --wait 120s",
        ]);
    });

    it("sees no change when neither the inputs nor its code changed", async () => {
        expect(ok(await host.diff("development", { ...inputs(), kubeconfig: "k" }, inputs()))).toEqual({
            changes: "none",
            replaces: [],
            deleteBeforeReplace: true,
        });
    });

    it("replaces the cluster, deleting first, when a node setting changed", async () => {
        expect(ok(await host.diff("development", { ...inputs(), kubeconfig: "k" }, { ...inputs(), workers: 2 }))).toEqual({
            changes: "some",
            replaces: ["workers"],
            deleteBeforeReplace: true,
        });
    });

    it("reads a cluster that was deleted outside Pulumi as gone", async () => {
        ok(await host.delete("development", inputs()));
        expect(ok(await host.read("development", inputs()))).toEqual({ id: "", properties: { __provider: serialised[KIND] } });
    });
});

describe("the kind provider without kind on PATH", () => {
    it("tells the engine to install kind, not 'Unknown Error'", async () => {
        const host = await startProviderHost({ ...process.env, PATH: path.dirname(process.execPath) });
        try {
            const answer = await host.create({ ...kindInputs, __provider: serialised[KIND] });
            expect("failed" in answer && answer.failed.message).toBe(
                "The kind CLI is not on PATH. Install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), make sure `kind version` works in this shell, and run `pulumi up` again.",
            );
        } finally {
            await host.stop();
        }
    });
});

async function listen(server: http.Server): Promise<number> {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as AddressInfo).port;
}

describe("the Flux teardown in Pulumi's dynamic-provider host", () => {
    let host: ProviderHost;
    let kind: ReturnType<typeof fakeKindOnPath>;
    beforeAll(async () => {
        // The teardown asks kind whether a cluster it cannot reach still exists.
        ({ host, kind } = await hostWithFakeKind());
    });
    const props = (port: number, timeoutSeconds: number) => ({ kubeconfig: kubeconfigFor(port), timeoutSeconds, __provider: serialised[TEARDOWN] });

    it("reaches the engine with the message naming the stuck object and the command to run", async () => {
        const api = fakeKubeApi([{ kind: "HelmRelease", metadata: { namespace: "podinfo", name: "podinfo" } }], { finaliseAfter: "never" });
        const port = await listen(api.server);
        try {
            const answer = await host.delete("flux-teardown", props(port, 1));
            expect("failed" in answer && answer.failed).toEqual({
                message:
                    "Flux teardown gave up after 1s; still deleting: HelmRelease podinfo/podinfo. " +
                    "Flux is reconciling again (the operator reconciles the FluxInstance), so what is left keeps working. Their finalisers are waiting on something: " +
                    "look with `kubectl -n podinfo describe helmrelease podinfo`, fix it, and run `pulumi destroy` again: it carries on from here.",
            });
        } finally {
            api.server.close();
        }
    }, 20_000);

    it("deletes what Flux synced, uninstalls Flux and succeeds once the finalisers ran", async () => {
        const api = fakeKubeApi(
            [
                { kind: "Kustomization", metadata: { namespace: "flux-system", name: "flux-system" } },
                { kind: "HelmRelease", metadata: { namespace: "podinfo", name: "podinfo" } },
            ],
            { finaliseAfter: 1 },
        );
        const port = await listen(api.server);
        try {
            expect(await host.delete("flux-teardown", props(port, 30))).toEqual({ ok: null });
            // The operator's uninstall took Flux and the root sync with it.
            expect({ left: [...api.live.keys()], installed: api.flux.installed }).toEqual({ left: [], installed: false });
        } finally {
            api.server.close();
        }
    }, 20_000);

    const unreachablePort = async () => {
        const closed = http.createServer();
        const port = await listen(closed);
        await new Promise((resolve) => closed.close(resolve));
        return port;
    };
    const onKind = (port: number, timeoutSeconds: number) => ({ ...props(port, timeoutSeconds), cluster: { backend: "kind", name: "gone-or-not" } });

    it("succeeds at once when the API is unreachable because kind no longer has the cluster", async () => {
        // An hour's budget: retrying the dead API for it would outlast this test, so passing means it asked kind at once.
        expect(await host.delete("flux-teardown", onKind(await unreachablePort(), 3600))).toEqual({ ok: null });
        expect(kind.calls()).toContain("get clusters");
    });

    it("refuses to call an unreachable cluster gone while kind still lists it, naming the way out", async () => {
        fs.writeFileSync(path.join(kind.state, "cluster-gone-or-not"), "");
        try {
            const answer = await host.delete("flux-teardown", onKind(await unreachablePort(), 1));
            expect("failed" in answer && answer.failed.message).toMatch(
                /^Flux teardown could not (patch|list) .*ECONNREFUSED.*\. The API server of kind cluster gone-or-not cannot be reached, and the cluster still exists, .* If the cluster was deleted by hand, run GITOPS_PLATFORM_SKIP_FLUX_TEARDOWN=1 pulumi destroy\.$/,
            );
        } finally {
            fs.rmSync(path.join(kind.state, "cluster-gone-or-not"));
        }
    }, 20_000);

    it("never concludes from an unreachable API alone that the cluster is gone", async () => {
        const answer = await host.delete("flux-teardown", props(await unreachablePort(), 1));
        expect("failed" in answer && answer.failed.message).toMatch(/The API server of the cluster cannot be reached, and the cluster still exists/);
    }, 20_000);

    it("stores a new version of its code through an in-place update, keeping its inputs", async () => {
        const edited = (serialised[TEARDOWN] ?? "").replace("fix it, and run", "fix it, then run");
        expect(edited).not.toBe(serialised[TEARDOWN]);
        const olds = props(6443, 600);
        const news = { ...olds, __provider: edited };
        expect(ok(await host.diff("flux-teardown", olds, news))).toEqual({ changes: "some", replaces: [], deleteBeforeReplace: false });
        expect(ok(await host.update("flux-teardown", olds, news)).properties).toEqual(news);
        expect(ok(await host.diff("flux-teardown", olds, olds)).changes).toBe("none");
    });
});

describe("the Flux readiness gate in Pulumi's dynamic-provider host", () => {
    const objects = [
        { apiVersion: "source.toolkit.fluxcd.io/v1", kind: "GitRepository", namespace: "flux-system", name: "flux-system" },
        { apiVersion: "fluxcd.controlplane.io/v1", kind: "FluxInstance", namespace: "flux-system", name: "flux" },
    ];
    const props = (port: number) => ({
        kubeconfig: kubeconfigFor(port),
        timeoutSeconds: 60,
        objects,
        revision: "0123456789abcdef",
        __provider: serialised[READY],
    });
    const readyObject = {
        metadata: { generation: 1 },
        status: { observedGeneration: 1, conditions: [{ type: "Ready", status: "True", reason: "Succeeded" }] },
    };

    it("lets pulumi up go on once Flux is Ready", async () => {
        const { host } = await hostWithFakeKind();
        const api = fakeStatusApi({ "gitrepositories/flux-system/flux-system": () => readyObject, "fluxinstances/flux-system/flux": () => readyObject });
        const port = await listen(api.server);
        try {
            expect(ok(await host.create(props(port))).id).toBe("flux-ready");
            // Asked to reconcile now, then read once each: Ready, and the request handled.
            expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
                "PATCH /apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system",
                "PATCH /apis/fluxcd.controlplane.io/v1/namespaces/flux-system/fluxinstances/flux",
                "GET /apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system",
                "GET /apis/fluxcd.controlplane.io/v1/namespaces/flux-system/fluxinstances/flux",
            ]);
        } finally {
            api.server.close();
        }
    }, 20_000);

    it("fails pulumi up with the failing object's own reason, not 'Unknown Error'", async () => {
        const { host } = await hostWithFakeKind();
        const stalled = {
            metadata: { generation: 1 },
            status: { conditions: [{ type: "Stalled", status: "True", reason: "BuildFailed", message: "build failed: no Flux distribution matches 2.99.x" }] },
        };
        const api = fakeStatusApi({ "gitrepositories/flux-system/flux-system": () => readyObject, "fluxinstances/flux-system/flux": () => stalled });
        const port = await listen(api.server);
        try {
            const answer = await host.create(props(port));
            expect("failed" in answer && answer.failed.message).toBe(
                "Flux is not Ready: FluxInstance flux-system/flux: Stalled (BuildFailed): build failed: no Flux distribution matches 2.99.x. " +
                    "`kubectl -n flux-system describe fluxinstance flux` and `kubectl -n flux-system logs deploy/flux-operator` show why the operator could not install Flux. " +
                    "The cluster and Flux are left as they are: fix the cause and run `pulumi up` again.",
            );
        } finally {
            api.server.close();
        }
    }, 20_000);

    it("never slows pulumi refresh or pulumi destroy: neither asks the cluster anything", async () => {
        const { host } = await hostWithFakeKind();
        const api = fakeStatusApi({});
        const port = await listen(api.server);
        try {
            expect(ok(await host.read("flux-ready", props(port)))).toEqual({ id: "flux-ready", properties: props(port) });
            expect(await host.delete("flux-ready", props(port))).toEqual({ ok: null });
            expect(api.requests).toEqual([]);
        } finally {
            api.server.close();
        }
    }, 20_000);

    it("waits again when what Flux was asked to be changed, and not otherwise", async () => {
        const { host } = await hostWithFakeKind();
        const olds = props(6443);
        expect(ok(await host.diff("flux-ready", olds, { ...olds, revision: "fedcba9876543210" })).changes).toBe("some");
        expect(ok(await host.diff("flux-ready", olds, olds)).changes).toBe("none");
    });
});
