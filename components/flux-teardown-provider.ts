import type * as pulumi from "@pulumi/pulumi";
import { CommandRunner, spawnCommand } from "../lib/run-command";
import { importClientNode, isUnreachable, statusOf, withRetries } from "./kube-api";

// The finaliser-safe teardown that runs inside `pulumi destroy`, before Flux and the cluster go.
// Flux objects with finalisers (HelmReleases, pruning Kustomizations) must be deleted while their
// controllers still run, consumers of custom resources before the controllers that serve them, or the
// external resources they own (load balancers, volumes) are left behind. Like the kind provider, this
// file is self-contained: Pulumi serialises the provider with everything it references.

/** Marks a HelmRelease or Kustomization that provides CRDs or controllers other objects use. */
export const TEARDOWN_LABEL = "gitops-platform.io/teardown";
/** The label value that defers deletion to the last phases. Anything else, or no label, is a consumer. */
export const PROVIDER = "provider";

export type FluxKind = "Kustomization" | "HelmRelease" | "FluxInstance";

export interface FluxRef {
    kind: FluxKind;
    namespace: string;
    name: string;
}

/** The fields of a listed Kustomization or HelmRelease the plan needs. */
export interface FluxObject {
    kind: "Kustomization" | "HelmRelease";
    metadata: { name: string; namespace: string; labels?: Record<string, string> };
    spec?: { dependsOn?: { name: string; namespace?: string }[]; suspend?: boolean };
}

export const FLUX_API: Record<FluxKind, { group: string; version: string; plural: string }> = {
    Kustomization: { group: "kustomize.toolkit.fluxcd.io", version: "v1", plural: "kustomizations" },
    HelmRelease: { group: "helm.toolkit.fluxcd.io", version: "v2", plural: "helmreleases" },
    FluxInstance: { group: "fluxcd.controlplane.io", version: "v1", plural: "fluxinstances" },
};

/** The root sync the FluxInstance creates (`spec.sync.name` defaults to its namespace). */
export const ROOT_SYNC: FluxRef = { kind: "Kustomization", namespace: "flux-system", name: "flux-system" };
export const FLUX_INSTANCE: FluxRef = { kind: "FluxInstance", namespace: "flux-system", name: "flux" };

export function describeRef(r: FluxRef): string {
    return `${r.kind} ${r.namespace}/${r.name}`;
}

/**
 * The order to delete Flux objects in: phases that run one after the other, each deleted together and
 * waited for. Consumers go before providers; within each, an object goes before anything it
 * `dependsOn`. The root sync is left alone: it is suspended, and Flux goes with the FluxInstance.
 */
export function planTeardown(objects: FluxObject[]): FluxRef[][] {
    const key = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;
    const byKey = new Map<string, FluxObject>();
    for (const o of objects) {
        if (o.kind === ROOT_SYNC.kind && o.metadata.namespace === ROOT_SYNC.namespace && o.metadata.name === ROOT_SYNC.name) continue;
        byKey.set(key(o.kind, o.metadata.namespace, o.metadata.name), o);
    }
    // An object's level is the length of the longest dependsOn chain below it: deleting from the
    // highest level down removes dependents before what they depend on.
    const levels = new Map<string, number>();
    const levelOf = (k: string, seen: Set<string>): number => {
        const known = levels.get(k);
        if (known !== undefined) return known;
        if (seen.has(k)) return 0; // a dependsOn cycle: Flux would never have reconciled it either
        seen.add(k);
        const o = byKey.get(k)!;
        let level = 0;
        for (const d of o.spec?.dependsOn ?? []) {
            const dk = key(o.kind, d.namespace ?? o.metadata.namespace, d.name);
            if (byKey.has(dk)) level = Math.max(level, levelOf(dk, seen) + 1);
        }
        levels.set(k, level);
        return level;
    };
    for (const k of byKey.keys()) levelOf(k, new Set());

    const phases = new Map<string, FluxRef[]>();
    for (const [k, o] of byKey) {
        const provider = o.metadata.labels?.[TEARDOWN_LABEL] === PROVIDER;
        // Sort key: consumers (0) before providers (1), higher levels first.
        const phase = `${provider ? 1 : 0}:${String(1000 - levels.get(k)!).padStart(4, "0")}`;
        const refs = phases.get(phase) ?? [];
        refs.push({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name });
        phases.set(phase, refs);
    }
    return [...phases.keys()].sort().map((p) => phases.get(p)!.sort((a, b) => describeRef(a).localeCompare(describeRef(b))));
}

/** The few Kubernetes API calls the teardown makes. */
export interface TeardownApi {
    /** Every object of a kind in all namespaces; none when its CRD is not installed. */
    list(kind: "Kustomization" | "HelmRelease"): Promise<FluxObject[]>;
    /** JSON merge patch; false when the object does not exist. */
    patch(ref: FluxRef, body: object): Promise<boolean>;
    /** Deletes with foreground propagation; already gone counts as done. */
    remove(ref: FluxRef): Promise<void>;
    exists(ref: FluxRef): Promise<boolean>;
}

export interface TeardownOptions {
    /** Give up after this long, naming what is still there. */
    timeoutMs: number;
    /** How often to look whether deleted objects are gone. */
    pollMs: number;
    /** How long one API request may take before it counts as failed (and is retried). @default 30000 */
    requestTimeoutMs?: number;
    log?: (line: string) => void;
}

/**
 * The error a teardown stops with when objects outlive the timeout. A plain Error, not a subclass:
 * Pulumi's closure serialiser turns `super(message)` in an Error subclass into `Error.call(this, message)`,
 * which sets no message (pulumi/pulumi#10974), and `pulumi destroy` would print "Unknown Error".
 */
export function teardownStuck(stuck: FluxRef[], timeoutMs: number): Error & { stuck: FluxRef[] } {
    const [first = { kind: "Kustomization", namespace: "flux-system", name: "flux-system" }] = stuck;
    const message =
        `Flux teardown gave up after ${Math.round(timeoutMs / 1000)}s; still deleting: ${stuck.map(describeRef).join(", ")}. ` +
        `Their finalisers are waiting on something: look with \`kubectl -n ${first.namespace} describe ${first.kind.toLowerCase()} ${first.name}\`, ` +
        "fix it, and run `pulumi destroy` again. The cluster is left as it was, so nothing leaks.";
    return Object.assign(new Error(message), { stuck });
}

/** The Flux Operator skips a FluxInstance with this annotation set to "disabled". */
const RECONCILE_ANNOTATION = "fluxcd.controlplane.io/reconcile";

/**
 * Runs the story's teardown: stop everything re-applying, delete consumers, then providers, waiting for
 * each phase, and finally uninstall Flux through its operator, so nothing is left with a finaliser that
 * no controller would remove.
 */
export async function runTeardown(cluster: TeardownApi, options: TeardownOptions): Promise<FluxRef[][]> {
    const log = options.log ?? (() => undefined);
    const deadline = Date.now() + options.timeoutMs;
    const api = retrying(cluster, deadline, options);
    const waitUntilGone = async (refs: FluxRef[]) => {
        let remaining = refs;
        for (;;) {
            let present: boolean[];
            try {
                present = await Promise.all(remaining.map((r) => api.exists(r)));
            } catch (e) {
                // Out of budget while looking: what is still there is the news, not the last request.
                if (Date.now() + options.pollMs > deadline) throw teardownStuck(remaining, options.timeoutMs);
                throw e;
            }
            remaining = remaining.filter((_, i) => present[i]);
            if (remaining.length === 0) return;
            if (Date.now() + options.pollMs > deadline) throw teardownStuck(remaining, options.timeoutMs);
            await new Promise((resolve) => setTimeout(resolve, options.pollMs));
        }
    };

    // Nothing may re-create what is about to be deleted: not the operator, and no Kustomization (a live
    // parent would re-apply a consumer deleted under it within its interval).
    await api.patch(FLUX_INSTANCE, { metadata: { annotations: { [RECONCILE_ANNOTATION]: "disabled" } } });
    const objects = [...(await api.list("HelmRelease")), ...(await api.list("Kustomization"))];
    const kustomizations = objects.filter((o) => o.kind === "Kustomization").map(refOf);
    for (const k of kustomizations) await api.patch(k, { spec: { suspend: true } });
    if (kustomizations.length > 0) log(`suspended ${kustomizations.map(describeRef).join(", ")}`);

    const phases = planTeardown(objects);
    for (const phase of phases) {
        log(`deleting ${phase.map(describeRef).join(", ")}`);
        for (const r of phase) {
            // kustomize-controller prunes what a Kustomization applied only if it is not suspended when
            // deleted (`finalize` skips garbage collection otherwise): resume it as it is deleted.
            if (r.kind === "Kustomization") await api.patch(r, { spec: { suspend: false } });
            await api.remove(r);
        }
        await waitUntilGone(phase);
    }

    // Flux itself: the operator uninstalls it (controllers, CRDs, the finalisers on the root sync) when
    // its FluxInstance is deleted, but not while reconciliation is disabled: its uninstaller returns
    // early for a disabled instance (flux-operator internal/controller/fluxinstance_uninstaller.go).
    if (await api.patch(FLUX_INSTANCE, { metadata: { annotations: { [RECONCILE_ANNOTATION]: null } } })) {
        log(`uninstalling Flux: deleting ${describeRef(FLUX_INSTANCE)}`);
        await api.remove(FLUX_INSTANCE);
        await waitUntilGone([FLUX_INSTANCE]);
    }
    return phases;
}

function refOf(o: FluxObject): FluxRef {
    return { kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name };
}

/** The same API calls, each retried while the fault is transient and the teardown's budget lasts. */
function retrying(api: TeardownApi, deadline: number, options: TeardownOptions): TeardownApi {
    const retry = { deadline, pollMs: options.pollMs, requestTimeoutMs: options.requestTimeoutMs, log: options.log };
    const attempt = <T>(what: string, call: () => Promise<T>) => withRetries("Flux teardown could not", what, call, retry);
    return {
        list: (kind) => attempt(`list ${kind}s`, () => api.list(kind)),
        patch: (ref, body) => attempt(`patch ${describeRef(ref)}`, () => api.patch(ref, body)),
        remove: (ref) => attempt(`delete ${describeRef(ref)}`, () => api.remove(ref)),
        exists: (ref) => attempt(`read ${describeRef(ref)}`, () => api.exists(ref)),
    };
}

/** The TeardownApi over @kubernetes/client-node, for a kubeconfig. */
export async function clientNodeApi(kubeconfig: string): Promise<TeardownApi> {
    const k8s = await importClientNode();
    const config = new k8s.KubeConfig();
    config.loadFromString(kubeconfig);
    const api = config.makeApiClient(k8s.CustomObjectsApi);
    const at = (r: FluxRef) => ({ ...FLUX_API[r.kind], namespace: r.namespace, name: r.name });
    return {
        async list(kind) {
            try {
                const result = (await api.listClusterCustomObject(FLUX_API[kind])) as { items?: FluxObject[] };
                return (result.items ?? []).map((o) => ({ ...o, kind }));
            } catch (e) {
                if (statusOf(e) === 404) return []; // the CRD is not installed: Flux never got this far
                throw e;
            }
        },
        async patch(ref, body) {
            try {
                await api.patchNamespacedCustomObject({ ...at(ref), body }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
                return true;
            } catch (e) {
                if (statusOf(e) === 404) return false;
                throw e;
            }
        },
        async remove(ref) {
            try {
                await api.deleteNamespacedCustomObject({ ...at(ref), propagationPolicy: "Foreground" });
            } catch (e) {
                if (statusOf(e) !== 404) throw e;
            }
        },
        async exists(ref) {
            try {
                await api.getNamespacedCustomObject(at(ref));
                return true;
            } catch (e) {
                if (statusOf(e) === 404) return false;
                throw e;
            }
        },
    };
}

/** The cluster whose own authority says whether it still exists: kind's list, or the EKS API. */
export interface TeardownCluster {
    backend: "kind" | "eks";
    name: string;
    /** AWS region, for EKS. */
    region?: string;
}

export interface FluxTeardownInputs {
    kubeconfig: string;
    timeoutSeconds: number;
    /** Absent in state written before it existed: then an unreachable API is an error, never "gone". */
    cluster?: TeardownCluster;
}

/**
 * Set in the environment of `pulumi destroy` to skip the teardown: only for a cluster deleted by hand.
 * An environment variable, not a config key: `pulumi destroy` runs no program, and the provider's delete
 * sees the inputs stored at the last `pulumi up`, so a key set now would never reach it.
 */
export const SKIP_TEARDOWN_ENV = "GITOPS_PLATFORM_SKIP_FLUX_TEARDOWN";

/**
 * Whether the cluster is gone, by its own authority: `kind get clusters` no longer lists it, or EKS says
 * it does not exist or is being deleted. An API server that does not answer proves nothing: a private
 * endpoint seen from the wrong network, a reset mid-way and a deleted cluster all look alike from here.
 */
export async function clusterGone(cluster: TeardownCluster | undefined, run: CommandRunner = spawnCommand): Promise<boolean> {
    if (!cluster) return false;
    try {
        if (cluster.backend === "kind") {
            const listed = await run("kind", ["get", "clusters"]);
            return (
                listed.code === 0 &&
                !listed.stdout
                    .split("\n")
                    .map((l) => l.trim())
                    .includes(cluster.name)
            );
        }
        const described = await run("aws", [
            "eks",
            "describe-cluster",
            "--name",
            cluster.name,
            "--region",
            cluster.region ?? "",
            "--query",
            "cluster.status",
            "--output",
            "text",
        ]);
        if (described.code === 0) return described.stdout.trim() === "DELETING";
        return /ResourceNotFoundException/.test(described.stderr);
    } catch {
        return false; // the CLI is missing: nothing proven
    }
}

export class FluxTeardownProvider implements pulumi.dynamic.ResourceProvider<FluxTeardownInputs, FluxTeardownInputs> {
    async create(inputs: FluxTeardownInputs): Promise<pulumi.dynamic.CreateResult<FluxTeardownInputs>> {
        // Nothing to do on the way up: this resource exists for its delete.
        return { id: "flux-teardown", outs: inputs };
    }

    async diff(_id: string, olds: FluxTeardownInputs, news: FluxTeardownInputs): Promise<pulumi.dynamic.DiffResult> {
        // `pulumi destroy` runs the teardown code stored in state with this resource. A new version of
        // the code must therefore be a change (an in-place update storing it), or no fix to the teardown
        // would ever reach a stack created before it.
        return {
            changes:
                olds.kubeconfig !== news.kubeconfig ||
                olds.timeoutSeconds !== news.timeoutSeconds ||
                JSON.stringify(olds.cluster) !== JSON.stringify(news.cluster) ||
                providerCodeChanged(olds, news),
        };
    }

    async update(_id: string, _olds: FluxTeardownInputs, news: FluxTeardownInputs): Promise<pulumi.dynamic.UpdateResult<FluxTeardownInputs>> {
        return { outs: news };
    }

    async delete(_id: string, props: FluxTeardownInputs): Promise<void> {
        const log = (line: string) => console.log(`flux teardown: ${line}`);
        if (process.env[SKIP_TEARDOWN_ENV] === "1") {
            log(`skipped (${SKIP_TEARDOWN_ENV}=1): whatever Flux synced is left as it is`);
            return;
        }
        const api = await clientNodeApi(props.kubeconfig);
        // A cluster deleted by hand (`kind delete cluster`) answers nothing: ask its owner at once rather
        // than retrying for the whole budget.
        const probe = await api.list("HelmRelease").then(
            () => undefined,
            (e: unknown) => e,
        );
        if (probe !== undefined && isUnreachable(probe) && (await clusterGone(props.cluster))) {
            log(`the cluster ${props.cluster?.name} no longer exists: nothing to tear down`);
            return;
        }
        try {
            await runTeardown(api, { timeoutMs: props.timeoutSeconds * 1000, pollMs: 2000, log });
        } catch (e) {
            if (!isUnreachable(e)) throw e;
            // A cluster that is gone holds nothing to clean up, but only the cluster's owner can say so.
            if (await clusterGone(props.cluster)) {
                log(`the cluster ${props.cluster?.name} no longer exists: nothing to tear down`);
                return;
            }
            const what = props.cluster ? `${props.cluster.backend} cluster ${props.cluster.name}` : "the cluster";
            throw new Error(
                `${(e as Error).message}. The API server of ${what} cannot be reached, and the cluster still exists, so what Flux ` +
                    "runs (and the load balancers and volumes it holds) cannot be cleaned up from here. Run `pulumi destroy` from a network " +
                    `that reaches the API (for EKS: one in publicAccessCidrs). If the cluster was deleted by hand, run ${SKIP_TEARDOWN_ENV}=1 pulumi destroy.`,
            );
        }
    }
}

/**
 * Whether the serialised provider in state (`__provider`, stored by the dynamic-provider host) differs
 * from the one this program would store. An unknown value during preview is not a change.
 */
function providerCodeChanged(olds: object, news: object): boolean {
    const before = (olds as { __provider?: unknown }).__provider;
    const after = (news as { __provider?: unknown }).__provider;
    const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // the RPC layer's unknown value
    return typeof before === "string" && typeof after === "string" && after !== unknown && before !== after;
}
