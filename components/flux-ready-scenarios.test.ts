import { describe, expect, it } from "@jest/globals";
import type { FluxObjectRef } from "../lib/gitops-tree";
import { READY, SyncSim } from "../test/support/flux-sim";
import { waitForFlux } from "./flux-ready-provider";

// `pulumi up`'s readiness gate against simulated Flux controllers (test/support/flux-sim.ts `SyncSim`, its
// behaviours cited there), in virtual time: verdicts follow Flux's attempts, never the machine's speed.

const ref = (kind: string, name: string, apiVersion: string, namespace = "flux-system"): FluxObjectRef => ({ apiVersion, kind, namespace, name });
const SOURCE = "source.toolkit.fluxcd.io/v1";
const KS = "kustomize.toolkit.fluxcd.io/v1";
const rootSource = ref("GitRepository", "flux-system", SOURCE);
const platform = ref("GitRepository", "platform", SOURCE);
const services = ref("Kustomization", "platform-services", KS);
const configs = ref("Kustomization", "platform-configs", KS);
const extra = ref("Kustomization", "platform-extra", KS);
const root = ref("Kustomization", "flux-system", KS);
const instance = ref("FluxInstance", "flux", "fluxcd.controlplane.io/v1");
const podinfo = ref("HelmRelease", "podinfo", "helm.toolkit.fluxcd.io/v2", "podinfo");

/** A cluster Ready for revision A of main: the root sync, the platform source and two layers. */
function synced(): SyncSim {
    const sim = new SyncSim();
    const was = { observedGeneration: 1, ready: READY, nextAt: 60_000 };
    sim.remote = { revision: "main@sha1:aaaaaaa", folder: [SyncSim.key(platform), SyncSim.key(services), SyncSim.key(configs)] };
    sim.put(rootSource, "source", { ...was, artifact: "main@sha1:aaaaaaa" })
        .put(platform, "source", { ...was, artifact: "main@sha1:aaaaaaa" })
        .put(services, "layer", was)
        .put(configs, "layer", was)
        .put(root, "root", { ...was, lastAppliedRevision: "main@sha1:aaaaaaa" })
        .put(instance, "instance", was)
        .template(extra, "layer");
    return sim;
}

const gate = [rootSource, platform, services, configs, root, instance];
const wait = (sim: SyncSim, objects = gate, timeoutMs = 600_000) =>
    waitForFlux(sim.api, objects, { timeoutMs, pollMs: 5_000, clock: sim.clock, requestId: "up-1" });

describe("a merge that adds a layer (the root sync still Ready for the previous revision)", () => {
    it("asks Flux to fetch now, and waits for the new layer instead of calling it missing", async () => {
        const sim = synced();
        sim.remote = { revision: "main@sha1:bbbbbbb", folder: [...sim.remote.folder, SyncSim.key(extra)] };
        await wait(sim, [rootSource, platform, services, configs, extra, root, instance]);
        expect(sim.requests).toEqual([
            "GitRepository flux-system/flux-system up-1-1",
            "GitRepository flux-system/platform up-1-1",
            "Kustomization flux-system/flux-system up-1-1",
            "FluxInstance flux-system/flux up-1-1",
        ]);
        expect(sim.object(root)?.lastAppliedRevision).toBe("main@sha1:bbbbbbb");
        expect(sim.object(extra)?.ready).toEqual(READY);
        // Well within one interval of the source: the request, not the interval, brought the fetch.
        expect(sim.now).toBeLessThan(60_000);
    });

    it("fails at once when the revision Flux fetched after the request does not declare it (the branch was not pushed)", async () => {
        const sim = synced();
        sim.remote = { revision: "main@sha1:bbbbbbb", folder: sim.remote.folder };
        await expect(wait(sim, [rootSource, platform, services, configs, extra, root, instance])).rejects.toThrow(
            "Flux is not Ready: Kustomization flux-system/platform-extra: does not exist, although the root sync applied main@sha1:bbbbbbb, " +
                "the newest revision of the branch it follows: this checkout's cluster folder declares it, that revision does not (push the branch Flux follows?).",
        );
    });
});

describe("a Stalled condition", () => {
    it("left by an old failed build is ignored once the FluxInstance is Ready for its current generation", async () => {
        const sim = synced();
        sim.object(instance)!.extraConditions = [
            { type: "Stalled", status: "True", reason: "BuildFailed", message: "build failed: no Flux distribution matches 2.99.x" },
        ];
        await expect(wait(sim)).resolves.toBeUndefined();
    });

    it("of an older generation is not the verdict: a newer generation is waited for", async () => {
        const sim = synced();
        const o = sim.object(instance)!;
        o.generation = 2;
        o.ready = { status: "False", reason: "BuildFailed", message: "build failed" };
        o.extraConditions = [{ type: "Stalled", status: "True", reason: "BuildFailed", message: "build failed" }];
        await expect(wait(sim)).resolves.toBeUndefined();
    });

    it("of the current generation, with Ready not True, stops the wait at once", async () => {
        const sim = synced();
        const o = sim.object(configs)!;
        o.attempt = () => ({ status: "False", reason: "InvalidCELExpression", message: "terminal error: invalid health check expression" });
        o.extraConditions = [{ type: "Stalled", status: "True", reason: "InvalidCELExpression", message: "terminal error: invalid health check expression" }];
        o.generation = 2;
        await expect(wait(sim)).rejects.toThrow(
            "Flux is not Ready: Kustomization flux-system/platform-configs: Stalled (InvalidCELExpression): terminal error: invalid health check expression.",
        );
        expect(sim.object(configs)?.attempts).toBe(1);
    });
});

describe("only the token, the platform repository or the operator changed", () => {
    it("is judged on a fetch made after the change, not on the artifact fetched before it", async () => {
        const sim = synced();
        // The new token is wrong: every fetch from now on is refused.
        sim.object(platform)!.attempt = () => ({ status: "False", reason: "AuthenticationFailed", message: "unable to clone: authentication required" });
        await expect(wait(sim)).rejects.toThrow(
            "Flux is not Ready: GitRepository flux-system/platform: Ready=False (AuthenticationFailed): unable to clone: authentication required.",
        );
    });
});

describe("a failure", () => {
    it("is the verdict after Flux's own attempts fail, each asked for by the gate: two, however long they take", async () => {
        const sim = synced();
        sim.object(platform)!.attempt = () => ({ status: "False", reason: "GitOperationFailed", message: "dial tcp: lookup gitlab.example: i/o timeout" });
        await expect(wait(sim)).rejects.toThrow(/GitRepository flux-system\/platform: Ready=False \(GitOperationFailed\)/);
        expect(sim.object(platform)?.attempts).toBe(2);
        expect(sim.requests.filter((r) => r.startsWith("GitRepository flux-system/platform"))).toEqual([
            "GitRepository flux-system/platform up-1-1",
            "GitRepository flux-system/platform up-1-2",
        ]);
    });

    it("that Flux recovers from on its next attempt is ridden out", async () => {
        const sim = synced();
        sim.object(platform)!.attempt = (n) => (n === 1 ? { status: "False", reason: "GitOperationFailed", message: "dial tcp: i/o timeout" } : READY);
        await expect(wait(sim)).resolves.toBeUndefined();
    });

    it("'kustomization path not found' is a failure, not a wait for the source", async () => {
        const sim = synced();
        sim.object(configs)!.attempt = () => ({
            status: "False",
            reason: "ArtifactFailed",
            message: "kustomization path not found: stat /tmp/kustomization-1/clusters/sb-1: no such file or directory",
        });
        sim.object(configs)!.generation = 2;
        await expect(wait(sim)).rejects.toThrow(
            "Flux is not Ready: Kustomization flux-system/platform-configs: Ready=False (ArtifactFailed): kustomization path not found: stat /tmp/kustomization-1/clusters/sb-1: no such file or directory.",
        );
    });

    it("while the source has no artifact yet is a wait", async () => {
        const sim = synced();
        sim.object(configs)!.attempt = (n) =>
            n < 3 ? { status: "False", reason: "ArtifactFailed", message: "Source artifact not found, retrying in 30s" } : READY;
        sim.object(configs)!.generation = 2;
        await expect(wait(sim)).resolves.toBeUndefined();
    });
});

describe("a layer that never gets Ready", () => {
    it("is reported with the Flux objects inside it that are not Ready, in their own words", async () => {
        const sim = synced();
        sim.put(podinfo, "static", { ready: { status: "False", reason: "InstallFailed", message: "install retries exhausted" }, observedGeneration: 1 });
        const layer = sim.object(services)!;
        layer.inventory = [podinfo];
        layer.generation = 2;
        layer.attempt = () => ({ status: "Unknown", reason: "Progressing", message: "Reconciliation in progress" });
        await expect(wait(sim, gate, 120_000)).rejects.toThrow(
            "Flux was not Ready within 120s (flux.readyTimeout): Kustomization flux-system/platform-services: Ready=Unknown (Progressing): Reconciliation in progress. " +
                "Inside it: HelmRelease podinfo/podinfo: Ready=False (InstallFailed): install retries exhausted.",
        );
    });
});

describe("an OCI HelmRepository", () => {
    it("is Ready once it exists: source-controller never reconciles it, so it has no Ready condition", async () => {
        const sim = synced();
        const oci = ref("HelmRepository", "podinfo", SOURCE, "podinfo");
        sim.put(oci, "static", { spec: { type: "oci" } });
        await expect(wait(sim, [rootSource, platform, oci, services, configs, root, instance], 60_000)).resolves.toBeUndefined();
    });
});
