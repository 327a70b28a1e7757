import { describe, expect, it } from "@jest/globals";
import { developmentSim, FluxSim } from "../test/support/flux-sim";
import { planTeardown, runTeardown, skipTeardown } from "./flux-teardown-provider";

// `pulumi destroy`'s Flux teardown against simulated Flux controllers (test/support/flux-sim.ts, each
// behaviour cited there from the controllers' source), in virtual time: the budget is the provider's
// 600 s, and the scenarios take milliseconds.

const BUDGET = { timeoutMs: 600_000, pollMs: 2_000 };
const run = (sim: FluxSim, options: Partial<typeof BUDGET> = {}) => runTeardown(sim.api, { ...BUDGET, ...options, clock: sim.clock });
const happened = (sim: FluxSim) => sim.events.map((e) => e.what);

describe("a routine destroy of the development tree", () => {
    it("finishes within its budget: no layer re-applies what was deleted, none health-checks a Terminating release", async () => {
        const sim = developmentSim();
        await run(sim);
        expect(happened(sim).filter((e) => /re-applied|health/.test(e))).toEqual([]);
        expect(sim.now).toBeLessThan(BUDGET.timeoutMs);
        expect(sim.operator).toMatchObject({ installed: false, instance: false, fluxSystemStuck: false });
    });

    it("deletes each layer once, after one patch that resumes it, stops waiting and health checks, and makes its prune wait", async () => {
        const sim = developmentSim();
        await run(sim);
        const layer = (name: string) =>
            sim.writes.filter((w) => w.includes(`Kustomization flux-system/${name} `) || w.endsWith(`Kustomization flux-system/${name}`));
        expect(layer("platform-configs")).toEqual([
            expect.stringMatching(
                /^PATCH Kustomization flux-system\/platform-configs \{"spec":\{"suspend":false,"wait":false,"healthChecks":null,"deletionPolicy":"WaitForTermination","timeout":"\d+s"\}\}$/,
            ),
            "DELETE Kustomization flux-system/platform-configs",
        ]);
    });

    it("never deletes directly what a layer still in the plan applied: its prune does", async () => {
        const sim = developmentSim();
        await run(sim);
        expect(sim.writes.filter((w) => w.startsWith("DELETE HelmRelease"))).toEqual([]);
        expect(
            planTeardown(await developmentSim().api.list("Kustomization"))
                .flat()
                .map((r) => `${r.kind} ${r.namespace}/${r.name}`),
        ).toEqual([
            "Kustomization apps/shop",
            "Kustomization flux-system/platform-configs",
            "Kustomization flux-system/platform-service-configs",
            "Kustomization flux-system/platform-services",
        ]);
    });

    it("returns only once what the layers pruned is gone: the namespaces have finished terminating", async () => {
        const sim = developmentSim();
        await run(sim);
        expect(sim.terminating()).toEqual([]);
        expect(sim.get("Namespace", "", "podinfo")).toBeUndefined();
        expect(happened(sim)).toContain("Kustomization/flux-system/platform-services finalised (pruned, waited for termination)");
    });

    it("waits for what a layer pruned even after the layer's own wait timed out and let it go", async () => {
        const sim = developmentSim();
        // A namespace slower than what is left of the budget, which the patch gave the layer as its timeout.
        sim.get("Namespace", "", "podinfo")!.terminateMs = 400_000;
        await expect(run(sim, { timeoutMs: 300_000 })).rejects.toThrow(
            /^Flux teardown gave up after 300s; still deleting: Namespace podinfo\. .*look with `kubectl describe namespace podinfo`/,
        );
        expect(happened(sim)).toContainEqual(
            expect.stringMatching(/^Kustomization\/flux-system\/platform-services finalised after its timeout, still terminating: Namespace\/\/podinfo$/),
        );
    });
});

describe("a teardown that gives up", () => {
    const stuckSim = () => {
        const sim = developmentSim();
        // A release whose uninstall never finishes (a finaliser waiting on a load balancer, say).
        sim.get("HelmRelease", "apps", "shop")!.uninstallMs = "never";
        return sim;
    };

    it("leaves Flux reconciling, not frozen, and says exactly what is left", async () => {
        const sim = stuckSim();
        const failure = run(sim, { timeoutMs: 120_000 });
        await expect(failure).rejects.toThrow(
            "Flux teardown gave up after 120s; still deleting: HelmRelease apps/shop. " +
                "Not deleted yet: Kustomization flux-system/platform-configs, Kustomization flux-system/platform-service-configs, Kustomization flux-system/platform-services. " +
                "Flux is reconciling again (the operator reconciles the FluxInstance; the root sync is resumed), so what is left keeps working. " +
                "Their finalisers are waiting on something: look with `kubectl -n apps describe helmrelease shop`, fix it, and run `pulumi destroy` again: it carries on from here.",
        );
        expect(sim.operator.reconcile).toBe("enabled");
        expect(sim.get("Kustomization", "flux-system", "flux-system")?.spec["suspend"]).toBe(false);
        expect(sim.get("Kustomization", "flux-system", "platform-configs")?.spec["suspend"]).toBeUndefined();
    });

    it("on the next run, never suspends a Kustomization that is being deleted, so its prune still runs", async () => {
        const sim = stuckSim();
        await expect(run(sim, { timeoutMs: 120_000 })).rejects.toThrow(/gave up/);
        // The stuck release is fixed; the next destroy carries on.
        sim.get("HelmRelease", "apps", "shop")!.uninstallMs = 1_000;
        sim.writes.length = 0;
        await run(sim);
        expect(sim.writes.filter((w) => w.includes('"suspend":true') && !w.includes("flux-system/flux-system"))).toEqual([]);
        expect(happened(sim).filter((e) => e.includes("orphaned"))).toEqual([]);
        expect(sim.operator).toMatchObject({ installed: false, fluxSystemStuck: false });
    });
});

describe("skipping the teardown on a cluster that still answers", () => {
    it("re-enables a FluxInstance an earlier give-up left disabled, so deleting it uninstalls Flux", async () => {
        const sim = developmentSim();
        sim.operator.reconcile = "disabled";
        const lines: string[] = [];
        await skipTeardown(sim.api, (l) => lines.push(l));
        expect(sim.operator.reconcile).toBe("enabled");
        expect(lines).toEqual([
            "skipped (GITOPS_PLATFORM_SKIP_FLUX_TEARDOWN=1): whatever Flux synced is left as it is; the FluxInstance's reconciliation was re-enabled, so deleting it uninstalls Flux",
        ]);
        await sim.api.remove({ kind: "FluxInstance", namespace: "flux-system", name: "flux" });
        expect(sim.operator.fluxSystemStuck).toBe(false);
    });
});

describe("the simulation itself (what makes the scenarios above meaningful)", () => {
    it("reproduces the old race: resuming then deleting a waiting layer re-applies a deleted release and sits out its timeout", async () => {
        const sim = developmentSim();
        await sim.api.patch({ kind: "Kustomization", namespace: "flux-system", name: "flux-system" }, { spec: { suspend: true } });
        await sim.api.remove({ kind: "HelmRelease", namespace: "podinfo", name: "podinfo" });
        await sim.api.remove({ kind: "HelmRelease", namespace: "cert-manager", name: "cert-manager" });
        sim.advance(6_000);
        await sim.api.patch({ kind: "Kustomization", namespace: "flux-system", name: "platform-services" }, { spec: { suspend: false } });
        await sim.api.remove({ kind: "Kustomization", namespace: "flux-system", name: "platform-services" });
        sim.advance(700_000);
        expect(happened(sim)).toContain("HelmRelease/podinfo/podinfo re-applied by Kustomization/flux-system/platform-services");
        expect(happened(sim)).toContain("Kustomization/flux-system/platform-services health-checks a Terminating object until its timeout");
        const finalised = sim.events.find((e) => e.what.startsWith("Kustomization/flux-system/platform-services finalised"));
        expect(finalised!.at).toBeGreaterThan(BUDGET.timeoutMs);
    });

    it("orphans what a Kustomization applied when it is finalised while suspended", async () => {
        const sim = developmentSim();
        await sim.api.patch({ kind: "Kustomization", namespace: "apps", name: "shop" }, { spec: { suspend: true } });
        await sim.api.remove({ kind: "Kustomization", namespace: "apps", name: "shop" });
        sim.advance(5_000);
        expect(happened(sim)).toContain("Kustomization/apps/shop orphaned HelmRelease/apps/shop");
    });
});
