import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import type { FluxObjectRef } from "../lib/gitops-tree";
import { Answer, fakeStatusApi, kubeconfigFor } from "../test/support/fake-kube-api";
import { compiledForNode, listen, runInNode } from "../test/support/node-child";
import { judge, pluralOf } from "./flux-ready-provider";

const ref = (kind: string, name: string, apiVersion = "kustomize.toolkit.fluxcd.io/v1"): FluxObjectRef => ({
    apiVersion,
    kind,
    namespace: "flux-system",
    name,
});
const ready = (status: string, reason: string, message = "", extra: object = {}) => ({
    metadata: { generation: 1 },
    status: { observedGeneration: 1, conditions: [{ type: "Ready", status, reason, message }], ...extra },
});

describe("whether a Flux object is Ready", () => {
    it("is Ready only for the generation it was asked for", () => {
        const stale = { metadata: { generation: 2 }, status: { observedGeneration: 1, conditions: [{ type: "Ready", status: "True", reason: "Succeeded" }] } };
        expect(judge(ref("FluxInstance", "flux"), stale)).toEqual({
            state: "waiting",
            why: "not reconciled since its last change (generation 2, observed 1)",
        });
        expect(judge(ref("FluxInstance", "flux"), ready("True", "ReconciliationSucceeded"))).toEqual({ state: "ready" });
    });

    it("is waiting, not failed, while it progresses or waits for a dependency or its source", () => {
        for (const reason of ["Progressing", "ProgressingWithRetry", "DependencyNotReady", "HealthCheckCanceled"]) {
            expect(judge(ref("Kustomization", "platform-configs"), ready("False", reason)).state).toBe("waiting");
        }
        expect(judge(ref("Kustomization", "platform-configs"), ready("False", "ArtifactFailed", "Source artifact not found, retrying in 30s")).state).toBe(
            "waiting",
        );
        expect(
            judge(ref("Kustomization", "platform-configs"), ready("False", "ArtifactFailed", "kustomization path not found: stat x: no such file")).state,
        ).toBe("failed");
        expect(judge(ref("Kustomization", "platform-configs"), ready("Unknown", "Progressing", "Reconciliation in progress"))).toEqual({
            state: "waiting",
            why: "Ready=Unknown (Progressing): Reconciliation in progress",
        });
        expect(judge(ref("Kustomization", "x"), { metadata: { generation: 1 } })).toEqual({ state: "waiting", why: "not reconciled yet (no Ready condition)" });
    });

    it("has failed when its own fetch, build or apply failed, and for good when it is Stalled", () => {
        // A source's ArtifactFailed is its own failure; only a Kustomization waits on someone else's.
        expect(judge(ref("OCIRepository", "platform", "source.toolkit.fluxcd.io/v1"), ready("False", "ArtifactFailed", "tag not found"))).toEqual({
            state: "failed",
            why: "Ready=False (ArtifactFailed): tag not found",
            stalled: false,
        });
        const stalled = ready("False", "BuildFailed", "build failed: unknown component", {
            conditions: [
                { type: "Ready", status: "False", reason: "BuildFailed", message: "build failed: unknown component" },
                { type: "Stalled", status: "True", reason: "BuildFailed", message: "build failed: unknown component" },
            ],
        });
        expect(judge(ref("FluxInstance", "flux"), stalled)).toEqual({
            state: "failed",
            why: "Stalled (BuildFailed): build failed: unknown component",
            stalled: true,
        });
    });

    it("is judged on the reconcile the wait asked for, once the controller has handled it", () => {
        const handled = (at: string) => ready("True", "Succeeded", "", { lastHandledReconcileAt: at });
        expect(judge(ref("GitRepository", "platform", "source.toolkit.fluxcd.io/v1"), handled("up-1-1"), "up-1-2")).toEqual({
            state: "waiting",
            why: "has not handled the reconcile request yet",
        });
        expect(judge(ref("GitRepository", "platform", "source.toolkit.fluxcd.io/v1"), handled("up-1-2"), "up-1-2")).toEqual({ state: "ready" });
    });

    it("reads each kind from the plural its CRD serves", () => {
        expect(["GitRepository", "OCIRepository", "Kustomization", "FluxInstance", "HelmRelease"].map(pluralOf)).toEqual([
            "gitrepositories",
            "ocirepositories",
            "kustomizations",
            "fluxinstances",
            "helmreleases",
        ]);
    });
});

// The wait, with the real @kubernetes/client-node, against local servers whose Flux objects change as
// they are read, as a cluster's do while Flux installs itself and syncs.

const ORDER: FluxObjectRef[] = [
    ref("GitRepository", "flux-system", "source.toolkit.fluxcd.io/v1"),
    ref("GitRepository", "platform", "source.toolkit.fluxcd.io/v1"),
    ref("Kustomization", "platform-services"),
    ref("Kustomization", "platform-configs"),
    ref("Kustomization", "flux-system"),
    ref("FluxInstance", "flux", "fluxcd.controlplane.io/v1"),
];
const keyOf = (r: FluxObjectRef) => `${pluralOf(r.kind)}/${r.namespace}/${r.name}`;
/** Ready, with the revision a source fetched and a Kustomization applied (the same one). */
const synced = () =>
    ready("True", "Succeeded", "Applied revision: main@sha1:0a1b2c", { artifact: { revision: "main@sha1:0a1b2c" }, lastAppliedRevision: "main@sha1:0a1b2c" });
const allReady = (): Record<string, (n: number) => Answer> => Object.fromEntries(ORDER.map((r) => [keyOf(r), () => synced()]));

interface Outcome {
    error?: string;
    log: string[];
}

function runWaits(scenarios: { port: number; timeoutMs: number }[]): Promise<Outcome[]> {
    const executor = compiledForNode(["components/flux-ready-provider.ts", "components/kube-api.ts"]);
    const driver = `
        const w = require(${JSON.stringify(executor)});
        (async () => {
            // Side by side: each scenario has its own server.
            const results = await Promise.all(JSON.parse(process.env.SCENARIOS).map(async (s) => {
                const log = [];
                try {
                    const api = await w.readinessApi(s.kubeconfig);
                    await w.waitForFlux(api, s.objects, { timeoutMs: s.timeoutMs, pollMs: 20, requestTimeoutMs: 300, requestId: "up-1", log: (l) => log.push(l) });
                    return { log };
                } catch (e) {
                    return { error: e.message, log };
                }
            }));
            console.log(JSON.stringify(results));
            process.exit(0);
        })();`;
    const env = { SCENARIOS: JSON.stringify(scenarios.map((s) => ({ ...s, kubeconfig: kubeconfigFor(s.port), objects: ORDER }))) };
    return runInNode(driver, env);
}

describe("pulumi up waiting for Flux against a Kubernetes API", () => {
    // Flux installing itself: nothing, then the FluxInstance progressing on an old generation, the
    // sources appearing, the layers waiting on each other, then everything Ready.
    const settles = fakeStatusApi({
        ...Object.fromEntries(
            ORDER.map((r) => [
                keyOf(r),
                (n: number): Answer => (n < 3 ? "absent" : n < 6 ? ready("False", "DependencyNotReady", "dependency not ready") : synced()),
            ]),
        ),
        "fluxinstances/flux-system/flux": (n) =>
            n < 4 ? { metadata: { generation: 2 }, status: { observedGeneration: 1, conditions: [{ type: "Ready", status: "True" }] } } : synced(),
    });
    const neverReady = fakeStatusApi({
        ...allReady(),
        "kustomizations/flux-system/platform-services": () => ready("Unknown", "Progressing", "Reconciliation in progress"),
        "kustomizations/flux-system/platform-configs": () => ready("False", "DependencyNotReady", "dependency 'flux-system/platform-services' is not ready"),
        "kustomizations/flux-system/flux-system": () => ready("Unknown", "Progressing", "Reconciliation in progress"),
    });
    const wrongToken = fakeStatusApi({
        ...allReady(),
        "gitrepositories/flux-system/platform": () =>
            ready(
                "False",
                "AuthenticationFailed",
                "failed to checkout and determine revision: unable to clone 'https://gitlab.example/platform.git': authentication required",
            ),
        "kustomizations/flux-system/platform-services": () => ready("False", "ArtifactFailed", "Source artifact not found, retrying in 30s"),
        "kustomizations/flux-system/platform-configs": () => ready("False", "DependencyNotReady", "dependency not ready"),
        "fluxinstances/flux-system/flux": () => ready("Unknown", "Progressing", "Reconciliation in progress"),
    });
    const stalled = fakeStatusApi({
        ...allReady(),
        "fluxinstances/flux-system/flux": () => ({
            metadata: { generation: 1 },
            status: {
                conditions: [
                    { type: "Ready", status: "False", reason: "BuildFailed", message: "build failed: no Flux distribution matches 2.99.x" },
                    { type: "Stalled", status: "True", reason: "BuildFailed", message: "build failed: no Flux distribution matches 2.99.x" },
                ],
            },
        }),
    });
    const flaky = fakeStatusApi(
        Object.fromEntries(ORDER.map((r) => [keyOf(r), (n: number): Answer => (n <= 2 ? { status: 500, message: "etcdserver: leader changed" } : synced())])),
    );
    const down = fakeStatusApi(
        Object.fromEntries(ORDER.map((r) => [keyOf(r), (): Answer => ({ status: 503, message: "the server is currently unable to handle the request" })])),
    );
    const forbidden = fakeStatusApi(
        Object.fromEntries(
            ORDER.map((r) => [keyOf(r), (): Answer => ({ status: 403, message: `${pluralOf(r.kind)} is forbidden: User "ci" cannot get resource` })]),
        ),
    );
    // The checkout declares platform-configs; the branch Flux follows does not have it yet.
    const notPushed = fakeStatusApi({ ...allReady(), "kustomizations/flux-system/platform-configs": () => "absent" });
    const servers = [settles, neverReady, wrongToken, stalled, flaky, down, forbidden, notPushed];
    let results: Outcome[];

    beforeAll(async () => {
        results = await runWaits([
            { port: await listen(settles.server), timeoutMs: 5000 },
            { port: await listen(neverReady.server), timeoutMs: 1000 },
            { port: await listen(wrongToken.server), timeoutMs: 10_000 },
            { port: await listen(stalled.server), timeoutMs: 10_000 },
            { port: await listen(flaky.server), timeoutMs: 5000 },
            { port: await listen(down.server), timeoutMs: 400 },
            { port: await listen(forbidden.server), timeoutMs: 10_000 },
            { port: await listen(notPushed.server), timeoutMs: 10_000 },
        ]);
    });
    afterAll(() => servers.forEach((s) => s.server.close()));

    it("returns once every object is Ready for its current generation, saying what it waited for", () => {
        expect(results[0]?.error).toBeUndefined();
        expect(results[0]?.log).toContain("FluxInstance flux-system/flux: not reconciled since its last change (generation 2, observed 1)");
        expect(results[0]?.log).toContain("Kustomization flux-system/platform-configs: Ready=False (DependencyNotReady): dependency not ready");
        expect(results[0]?.log.filter((l) => l.endsWith(": ready"))).toHaveLength(ORDER.length);
        // It asked the sources, the root sync and the FluxInstance to reconcile now, by merge patch.
        expect(settles.requests.filter((r) => r.method === "PATCH").map((r) => [r.path.split("/").slice(-2).join("/"), r.contentType, r.body])).toContainEqual([
            "gitrepositories/platform",
            "application/merge-patch+json",
            { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "up-1-1" } } },
        ]);
    });

    it("gives up after flux.readyTimeout, naming the object holding the others up and everything else not Ready", () => {
        expect(results[1]?.error).toBe(
            "Flux was not Ready within 1s (flux.readyTimeout): Kustomization flux-system/platform-services: Ready=Unknown (Progressing): Reconciliation in progress. " +
                "Not Ready either: Kustomization flux-system/platform-configs, Kustomization flux-system/flux-system. " +
                "`kubectl -n flux-system describe kustomization platform-services` shows what failed; fix it in Git and Flux retries on its own. " +
                "The cluster and Flux are left as they are: fix the cause and run `pulumi up` again. If it only needs longer, raise flux.readyTimeout.",
        );
    });

    it("fails on a wrong token once the attempts it asked for failed, with the source's own message rather than the Kustomizations waiting on it", () => {
        expect(results[2]?.error).toBe(
            "Flux is not Ready: GitRepository flux-system/platform: Ready=False (AuthenticationFailed): failed to checkout and determine revision: " +
                "unable to clone 'https://gitlab.example/platform.git': authentication required. Check the URL and ref it pulls and the token it pulls with " +
                "(the stack's sync, platformRepository and token settings); `kubectl -n flux-system describe gitrepository platform` shows the last attempt. " +
                "The cluster and Flux are left as they are: fix the cause and run `pulumi up` again.",
        );
    });

    it("stops at once when the operator has stalled, with its reason", () => {
        expect(results[3]?.error).toMatch(
            /^Flux is not Ready: FluxInstance flux-system\/flux: Stalled \(BuildFailed\): build failed: no Flux distribution matches 2\.99\.x\. `kubectl -n flux-system describe fluxinstance flux` and `kubectl -n flux-system logs deploy\/flux-operator` show why/,
        );
    });

    it("retries the API server's transient errors", () => {
        expect(results[4]?.error).toBeUndefined();
        expect(results[4]?.log.some((l) => l.startsWith("retrying ") && l.endsWith("etcdserver: leader changed"))).toBe(true);
    });

    it("reports an API server that keeps failing once the budget is spent, with the API's message", () => {
        expect(results[5]?.error).toMatch(
            /^Waiting for Flux, could not (read|ask) (GitRepository|Kustomization|FluxInstance) flux-system\/[a-z-]+( to reconcile)?: the server is currently unable to handle the request \(\d+ attempts\)$/,
        );
    });

    it("does not retry a refusal: a kubeconfig without rights is the answer", () => {
        expect(results[6]?.error).toMatch(
            /^Waiting for Flux, could not (read|ask) \w+ flux-system\/[a-z-]+( to reconcile)?: \w+ is forbidden: User "ci" cannot get resource \(1 attempt\)$/,
        );
    });

    it("fails fast on an object this checkout declares but the revision Flux applied does not have", () => {
        expect(results[7]?.error).toMatch(
            /^Flux is not Ready: Kustomization flux-system\/platform-configs: does not exist, although the root sync applied main@sha1:0a1b2c, the newest revision of the branch it follows: this checkout's cluster folder declares it, that revision does not \(push the branch Flux follows\?\)\. /,
        );
    });
});
