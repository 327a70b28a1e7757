import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import * as http from "http";
import { fakeKubeApi as fakeApiServer, kubeconfigFor } from "../test/support/fake-kube-api";
import { compiledForNode, listen, runInNode } from "../test/support/node-child";
import { describeRef, FluxObject, planTeardown, TEARDOWN_LABEL } from "./flux-teardown-provider";
import { isUnreachable } from "./kube-api";

const ks = (namespace: string, name: string, extra: Partial<FluxObject> = {}): FluxObject => ({
    kind: "Kustomization",
    metadata: { namespace, name, ...extra.metadata },
    spec: extra.spec,
});
const hr = (namespace: string, name: string, extra: Partial<FluxObject> = {}): FluxObject => ({
    kind: "HelmRelease",
    metadata: { namespace, name, ...extra.metadata },
    spec: extra.spec,
});
const provider = { labels: { [TEARDOWN_LABEL]: "provider" } };

/** What a cluster synced from clusters/development holds, plus one application team's objects. */
const developmentCluster: FluxObject[] = [
    ks("flux-system", "flux-system"),
    ks("flux-system", "platform-services", { metadata: { namespace: "flux-system", name: "platform-services", ...provider } }),
    ks("flux-system", "platform-service-configs", { spec: { dependsOn: [{ name: "platform-services" }] } }),
    ks("flux-system", "platform-configs", { spec: { dependsOn: [{ name: "platform-service-configs" }] } }),
    hr("cert-manager", "cert-manager", { metadata: { namespace: "cert-manager", name: "cert-manager", ...provider } }),
    hr("podinfo", "podinfo"),
    ks("apps", "shop", { spec: { dependsOn: [{ name: "platform-configs", namespace: "flux-system" }] } }),
    hr("apps", "shop-db"),
    hr("apps", "shop-api", { spec: { dependsOn: [{ name: "shop-db" }] } }),
];

describe("the teardown order", () => {
    it("deletes consumers from the top of their dependsOn chains down, then the providers, and never the root sync", () => {
        expect(planTeardown(developmentCluster).map((phase) => phase.map(describeRef))).toEqual([
            ["Kustomization apps/shop"],
            ["Kustomization flux-system/platform-configs"],
            ["HelmRelease apps/shop-api", "Kustomization flux-system/platform-service-configs"],
            ["HelmRelease apps/shop-db", "HelmRelease podinfo/podinfo"],
            ["HelmRelease cert-manager/cert-manager", "Kustomization flux-system/platform-services"],
        ]);
    });

    it("treats the objects of a freshly bootstrapped cluster as nothing to do", () => {
        expect(planTeardown([ks("flux-system", "flux-system")])).toEqual([]);
    });

    it("ignores a dependsOn on an object that does not exist", () => {
        expect(planTeardown([hr("apps", "a", { spec: { dependsOn: [{ name: "gone" }] } })]).map((p) => p.map(describeRef))).toEqual([["HelmRelease apps/a"]]);
    });

    it("survives a dependsOn cycle instead of recursing forever", () => {
        const cycle = [ks("x", "a", { spec: { dependsOn: [{ name: "b" }] } }), ks("x", "b", { spec: { dependsOn: [{ name: "a" }] } })];
        expect(planTeardown(cycle).flat().map(describeRef).sort()).toEqual(["Kustomization x/a", "Kustomization x/b"]);
    });

    it("recognises an unreachable API server", () => {
        expect(isUnreachable(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" }))).toBe(true);
        expect(isUnreachable(new Error("HTTP-Code: 403 Forbidden"))).toBe(false);
    });
});

// The executor, with the real @kubernetes/client-node, against a local server speaking the calls it makes.

/** Runs the executor once per scenario, all at once, in a single Node process. */
function runExecutorInNode(scenarios: { port: number; timeoutMs: number }[]): Promise<{ phases?: string[][]; error?: string }[]> {
    const executor = compiledForNode(["components/flux-teardown-provider.ts", "components/kube-api.ts", "lib/run-command.ts"]);
    const driver = `
        const t = require(${JSON.stringify(executor)});
        (async () => {
            // Side by side: each scenario has its own server.
            const results = await Promise.all(JSON.parse(process.env.SCENARIOS).map(async (s) => {
                try {
                    const api = await t.clientNodeApi(s.kubeconfig);
                    const phases = await t.runTeardown(api, { timeoutMs: s.timeoutMs, pollMs: 10, requestTimeoutMs: 300 });
                    return { phases: phases.map((p) => p.map(t.describeRef)) };
                } catch (e) {
                    return { error: e.message };
                }
            }));
            console.log(JSON.stringify(results));
            // A request the silent server never answers would keep this process alive.
            process.exit(0);
        })();`;
    return runInNode(driver, { SCENARIOS: JSON.stringify(scenarios.map((s) => ({ kubeconfig: kubeconfigFor(s.port), timeoutMs: s.timeoutMs }))) });
}

/** What each Kustomization of `developmentCluster` applied: the root sync the layers, the layers the releases. */
const developmentInventories = {
    "kustomizations/flux-system/flux-system": [
        "kustomizations/flux-system/platform-services",
        "kustomizations/flux-system/platform-service-configs",
        "kustomizations/flux-system/platform-configs",
    ],
    "kustomizations/flux-system/platform-services": ["helmreleases/cert-manager/cert-manager", "helmreleases/podinfo/podinfo"],
    "kustomizations/apps/shop": ["helmreleases/apps/shop-db", "helmreleases/apps/shop-api"],
};

describe("the teardown executor against a Kubernetes API", () => {
    const healthy = fakeApiServer(developmentCluster, { applied: developmentInventories });
    const stuck = fakeApiServer(
        [
            ks("flux-system", "flux-system"),
            hr("podinfo", "podinfo"),
            hr("cert-manager", "cert-manager", { metadata: { namespace: "cert-manager", name: "cert-manager", ...provider } }),
        ],
        { finaliseAfter: "never" },
    );
    // A cluster mid-upgrade behind a flaky proxy: leader elections, a conflict, a bad gateway, then fine.
    const flaky = fakeApiServer([ks("flux-system", "flux-system"), hr("podinfo", "podinfo")], {
        fault: ({ method, n }) =>
            n <= 2
                ? { status: 500, message: "etcdserver: leader changed" }
                : method === "DELETE" && n < 12
                  ? { status: 409, message: "Operation cannot be fulfilled: the object has been modified" }
                  : n === 14
                    ? { status: 502, message: "Bad Gateway" }
                    : undefined,
    });
    // Accepts every connection and never answers.
    const silent = fakeApiServer([ks("flux-system", "flux-system")], { fault: () => "hang" });
    const noFlux = http.createServer((_req, res) => {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", code: 404 }));
    });
    let results: { phases?: string[][]; error?: string }[];

    beforeAll(async () => {
        results = await runExecutorInNode([
            { port: await listen(healthy.server), timeoutMs: 5000 },
            { port: await listen(stuck.server), timeoutMs: 300 },
            { port: await listen(noFlux), timeoutMs: 1000 },
            { port: await listen(flaky.server), timeoutMs: 5000 },
            { port: await listen(silent.server), timeoutMs: 800 },
        ]);
    });
    afterAll(() => {
        healthy.server.close();
        stuck.server.close();
        noFlux.close();
        flaky.server.close();
        silent.server.close();
    });

    const short = (r: { method: string; path: string; body?: unknown }) =>
        `${r.method} ${r.path.replace(/^\/apis\/[^/]+\/[^/]+\/namespaces\//, "")}${r.body ? ` ${JSON.stringify(r.body).replace(/"timeout":"\d+s"/, '"timeout":"<n>s"')}` : ""}`;

    it("stops the operator and the root sync re-applying, then deletes phase by phase, each layer after one patch, what the layers applied by their prune", () => {
        expect(results[0]?.error).toBeUndefined();
        const writes = healthy.requests.filter((r) => r.method !== "GET").map(short);
        const layerPatch = '{"spec":{"suspend":false,"wait":false,"healthChecks":null,"deletionPolicy":"WaitForTermination","timeout":"<n>s"}}';
        expect(writes).toEqual([
            'PATCH flux-system/fluxinstances/flux {"metadata":{"annotations":{"fluxcd.controlplane.io/reconcile":"disabled"}}}',
            'PATCH flux-system/kustomizations/flux-system {"spec":{"suspend":true}}',
            `PATCH apps/kustomizations/shop ${layerPatch}`,
            "DELETE apps/kustomizations/shop",
            `PATCH flux-system/kustomizations/platform-configs ${layerPatch}`,
            "DELETE flux-system/kustomizations/platform-configs",
            `PATCH flux-system/kustomizations/platform-service-configs ${layerPatch}`,
            "DELETE flux-system/kustomizations/platform-service-configs",
            `PATCH flux-system/kustomizations/platform-services ${layerPatch}`,
            "DELETE flux-system/kustomizations/platform-services",
            'PATCH flux-system/fluxinstances/flux {"metadata":{"annotations":{"fluxcd.controlplane.io/reconcile":null}}}',
            "DELETE flux-system/fluxinstances/flux",
        ]);
        expect(new Set(healthy.requests.filter((r) => r.method === "DELETE").map((r) => r.query))).toEqual(new Set(["?propagationPolicy=Foreground"]));
        // No phase starts before the one before it is gone.
        const lastGetOf = (p: string) => healthy.requests.map((r) => r.method + r.path).lastIndexOf(`GET${p}`);
        const deleteAt = (suffix: string) => healthy.requests.findIndex((r) => r.method === "DELETE" && r.path.endsWith(suffix));
        expect(lastGetOf("/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/apps/kustomizations/shop")).toBeLessThan(deleteAt("/platform-configs"));
        // What a layer pruned is looked up through discovery, whatever its kind, before the next phase.
        expect(lastGetOf("/apis/helm.toolkit.fluxcd.io/v2/namespaces/podinfo/helmreleases/podinfo")).toBeGreaterThan(deleteAt("/platform-services"));
    });

    it("leaves Flux uninstalled and nothing behind: no object orphaned, none re-applied, flux-system empty", () => {
        expect(healthy.flux).toMatchObject({ installed: false, instance: false, orphaned: [], reapplied: [] });
        expect([...healthy.live.keys()]).toEqual([]);
    });

    it("gives up after its timeout and names what is stuck, deleting nothing further", () => {
        expect(results[1]?.error).toBe(
            "Flux teardown gave up after 0s; still deleting: HelmRelease podinfo/podinfo. Not deleted yet: HelmRelease cert-manager/cert-manager. " +
                "Flux is reconciling again (the operator reconciles the FluxInstance; the root sync is resumed), so what is left keeps working. " +
                "Their finalisers are waiting on something: look with `kubectl -n podinfo describe helmrelease podinfo`, fix it, and run `pulumi destroy` again: it carries on from here.",
        );
        expect(stuck.requests.filter((r) => r.method === "DELETE").map((r) => r.path)).toEqual([
            "/apis/helm.toolkit.fluxcd.io/v2/namespaces/podinfo/helmreleases/podinfo",
        ]);
        // Flux stays installed and working, so the next `pulumi destroy` can finish the job.
        expect(stuck.flux.installed).toBe(true);
    });

    it("rides out leader elections, conflicts and a bad gateway, and still uninstalls everything", () => {
        expect(results[3]).toEqual({ phases: [["HelmRelease podinfo/podinfo"]] });
        expect(flaky.flux).toMatchObject({ installed: false, instance: false });
        expect(flaky.requests.length).toBeGreaterThan(14);
    });

    it("keeps to its time budget when the API server never answers", () => {
        expect(results[4]?.error).toMatch(
            /^Flux teardown could not (patch FluxInstance flux-system\/flux|list HelmReleases): request timed out after \ds \(\d+ attempts?\)$/,
        );
    });

    it("finds nothing to do on a cluster where Flux never installed its CRDs", () => {
        expect(results[2]).toEqual({ phases: [] });
    });
});
