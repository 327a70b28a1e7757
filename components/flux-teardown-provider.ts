import type * as pulumi from "@pulumi/pulumi";
import { CommandRunner, spawnCommand } from "../lib/run-command";
import { type Clock, importClientNode, isUnreachable, realClock, statusOf, withRetries } from "./kube-api";

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
    metadata: { name: string; namespace: string; labels?: Record<string, string>; deletionTimestamp?: string };
    spec?: { dependsOn?: { name: string; namespace?: string }[]; suspend?: boolean };
    /** What a Kustomization applied: cli-utils object ids `<namespace>_<name>_<group>_<kind>` and their versions. */
    status?: { inventory?: { entries?: { id: string; v: string }[] } };
}

export const FLUX_API: Record<FluxKind, { group: string; version: string; plural: string }> = {
    Kustomization: { group: "kustomize.toolkit.fluxcd.io", version: "v1", plural: "kustomizations" },
    HelmRelease: { group: "helm.toolkit.fluxcd.io", version: "v2", plural: "helmreleases" },
    FluxInstance: { group: "fluxcd.controlplane.io", version: "v1", plural: "fluxinstances" },
};

/** The root sync the FluxInstance creates (`spec.sync.name` defaults to its namespace). */
export const ROOT_SYNC: FluxRef = { kind: "Kustomization", namespace: "flux-system", name: "flux-system" };
export const FLUX_INSTANCE: FluxRef = { kind: "FluxInstance", namespace: "flux-system", name: "flux" };

/**
 * The labels kustomize-controller puts on everything a Kustomization applies, naming it (fluxcd/pkg ssa
 * `SetOwnerLabels`, called from kustomize-controller internal/controller/kustomization_controller.go).
 */
const OWNER_NAME = "kustomize.toolkit.fluxcd.io/name";
const OWNER_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace";

export function describeRef(r: { kind: string; namespace: string; name: string }): string {
    return r.namespace ? `${r.kind} ${r.namespace}/${r.name}` : `${r.kind} ${r.name}`;
}

const isRoot = (o: { kind: string; namespace: string; name: string }) =>
    o.kind === ROOT_SYNC.kind && o.namespace === ROOT_SYNC.namespace && o.name === ROOT_SYNC.name;

/**
 * The order to delete Flux objects in: phases that run one after the other, each deleted together and
 * waited for. Consumers go before providers; within each, an object goes before anything it
 * `dependsOn`. The root sync is left alone: it is suspended, and Flux goes with the FluxInstance. An
 * object that a Kustomization of the plan applied is not deleted here: that Kustomization's prune deletes
 * it, and deleting it directly would race the owner re-applying it.
 */
export function planTeardown(objects: FluxObject[]): FluxRef[][] {
    const key = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;
    const planned = new Map<string, FluxObject>();
    for (const o of objects) {
        if (!isRoot({ kind: o.kind, ...o.metadata })) planned.set(key(o.kind, o.metadata.namespace, o.metadata.name), o);
    }
    const byKey = new Map<string, FluxObject>();
    for (const [k, o] of planned) {
        const owner = o.metadata.labels?.[OWNER_NAME];
        const ownerNamespace = o.metadata.labels?.[OWNER_NAMESPACE];
        if (owner && ownerNamespace && planned.has(key("Kustomization", ownerNamespace, owner))) continue;
        byKey.set(k, o);
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

/** An object a Kustomization applied, from its inventory entry. */
export interface AppliedObject {
    apiVersion: string;
    kind: string;
    namespace: string;
    name: string;
}

/** The objects of a Kustomization's inventory (cli-utils ObjMetadata ids: `<namespace>_<name>_<group>_<kind>`). */
export function inventoryOf(o: FluxObject): AppliedObject[] {
    return (o.status?.inventory?.entries ?? []).flatMap((e) => {
        const [namespace = "", name = "", group = "", kind = ""] = e.id.split("_");
        return name && kind ? [{ apiVersion: group ? `${group}/${e.v}` : e.v, kind, namespace, name }] : [];
    });
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
    /** Whether an object a Kustomization applied (any kind) still exists. */
    applied(object: AppliedObject): Promise<boolean>;
}

export interface TeardownOptions {
    /** Give up after this long, naming what is still there. */
    timeoutMs: number;
    /** How often to look whether deleted objects are gone. */
    pollMs: number;
    /** How long one API request may take before it counts as failed (and is retried). @default 30000 */
    requestTimeoutMs?: number;
    log?: (line: string) => void;
    /** @default realClock */
    clock?: Clock;
}

/**
 * The error a teardown stops with when objects outlive the timeout. A plain Error, not a subclass:
 * Pulumi's closure serialiser turns `super(message)` in an Error subclass into `Error.call(this, message)`,
 * which sets no message (pulumi/pulumi#10974), and `pulumi destroy` would print "Unknown Error".
 */
export function teardownStuck(
    stuck: { kind: string; namespace: string; name: string }[],
    timeoutMs: number,
    after: { notStarted: FluxRef[]; thawed: string[]; waitingOn?: { kind: string; namespace: string; name: string }[] } = { notStarted: [], thawed: [] },
): Error & { stuck: { kind: string; namespace: string; name: string }[] } {
    const waitingOn = after.waitingOn ?? [];
    const [first = ROOT_SYNC] = waitingOn.length > 0 ? waitingOn : stuck;
    const look = first.namespace
        ? `kubectl -n ${first.namespace} describe ${first.kind.toLowerCase()} ${first.name}`
        : `kubectl describe ${first.kind.toLowerCase()} ${first.name}`;
    const message =
        `Flux teardown gave up after ${Math.round(timeoutMs / 1000)}s; still deleting: ${stuck.map(describeRef).join(", ")}` +
        (waitingOn.length > 0 ? `, waiting for ${waitingOn.map(describeRef).join(", ")} to go. ` : ". ") +
        (after.notStarted.length > 0 ? `Not deleted yet: ${after.notStarted.map(describeRef).join(", ")}. ` : "") +
        (after.thawed.length > 0 ? `Flux is reconciling again (${after.thawed.join("; ")}), so what is left keeps working. ` : "") +
        `Their finalisers are waiting on something: look with \`${look}\`, ` +
        "fix it, and run `pulumi destroy` again: it carries on from here.";
    return Object.assign(new Error(message), { stuck });
}

/** The Flux Operator skips a FluxInstance with this annotation set to "disabled". */
const RECONCILE_ANNOTATION = "fluxcd.controlplane.io/reconcile";

/** The merge patches that stop and restart the operator's reconciliation of the FluxInstance. */
export const DISABLE_OPERATOR = { metadata: { annotations: { [RECONCILE_ANNOTATION]: "disabled" } } };
export const ENABLE_OPERATOR = { metadata: { annotations: { [RECONCILE_ANNOTATION]: null } } };

/**
 * The one patch a layer gets before it is deleted. The patch bumps its generation, and kustomize-controller
 * runs that whole reconcile before it handles the deletion (GenerationChangedPredicate; finalize runs at
 * the top of the next reconcile, kustomization_controller.go): so it must not wait or health-check
 * (a Terminating object is never Current nor Failed to kstatus, and the layer would sit out its timeout).
 * Resumed, because a suspended Kustomization is finalised without pruning (`finalizerShouldDeleteResources`);
 * and WaitForTermination, because otherwise its prune deletes with Background propagation and does not
 * wait (`finalize`: `WaitForSetTermination` only for that policy, bounded by `spec.timeout`).
 */
export function beforeDelete(timeoutSeconds: number): object {
    return { spec: { suspend: false, wait: false, healthChecks: null, deletionPolicy: "WaitForTermination", timeout: `${Math.max(1, timeoutSeconds)}s` } };
}

/**
 * Runs the story's teardown: stop the operator and the root sync re-applying, delete consumers, then
 * providers, each phase waited for together with everything its layers prune, and finally uninstall Flux
 * through its operator, so nothing is left with a finaliser that no controller would remove. If it runs
 * out of time, it undoes the freeze for what is left and says exactly what that is.
 *
 * Why each step (comments live here, not in the body: Pulumi stores the body's text in the state):
 * - Only the operator and the root sync (which applied the layers) are frozen: nothing a layer applied is
 *   deleted under it, so the layers need no freeze. What is being deleted is never suspended: finalised
 *   while suspended, a Kustomization orphans what it applied.
 * - A layer's patch gets four fifths of the remaining budget as its timeout: if its own wait runs out,
 *   there is time left to say what it left. Its finaliser stops waiting at that timeout, so what it
 *   pruned is waited for here too; a layer still there is named with what it waits on.
 * - Out of time, the freeze is undone (the next `pulumi up` must find a Flux that reconciles), and what is
 *   still deleting, what was not deleted yet and what was thawed are all said.
 * - Flux itself goes last: the operator uninstalls it (controllers, CRDs, the root sync's finalisers) when
 *   its FluxInstance is deleted, but not while reconciliation is disabled: its uninstaller returns early
 *   for a disabled instance (flux-operator internal/controller/fluxinstance_uninstaller.go).
 */
export async function runTeardown(cluster: TeardownApi, options: TeardownOptions): Promise<FluxRef[][]> {
    const log = options.log ?? (() => undefined);
    const clock = options.clock ?? realClock;
    const deadline = clock.now() + options.timeoutMs;
    const api = retrying(cluster, deadline, options, clock);
    type Thing = { kind: string; namespace: string; name: string };
    const waitUntilGone = async (things: Thing[], present: (t: Thing) => Promise<boolean>) => {
        let remaining = things;
        for (;;) {
            let still: boolean[];
            try {
                still = await Promise.all(remaining.map(present));
            } catch (e) {
                if (clock.now() + options.pollMs > deadline) throw Object.assign(new Error("out of time"), { stuck: remaining });
                throw e;
            }
            remaining = remaining.filter((_, i) => still[i]);
            if (remaining.length === 0) return;
            if (clock.now() + options.pollMs > deadline) throw Object.assign(new Error("out of time"), { stuck: remaining });
            await clock.sleep(options.pollMs);
        }
    };

    const thaw: { ref: FluxRef; patch: object; what: string }[] = [];
    if (await api.patch(FLUX_INSTANCE, DISABLE_OPERATOR))
        thaw.push({ ref: FLUX_INSTANCE, patch: ENABLE_OPERATOR, what: "the operator reconciles the FluxInstance" });
    const objects = [...(await api.list("HelmRelease")), ...(await api.list("Kustomization"))];
    const root = objects.find((o) => o.kind === "Kustomization" && isRoot({ kind: o.kind, ...o.metadata }));
    if (root && !root.metadata.deletionTimestamp && !root.spec?.suspend && (await api.patch(ROOT_SYNC, { spec: { suspend: true } }))) {
        thaw.push({ ref: ROOT_SYNC, patch: { spec: { suspend: false } }, what: "the root sync is resumed" });
        log(`suspended ${describeRef(ROOT_SYNC)}`);
    }

    const phases = planTeardown(objects);
    const byRef = new Map(objects.map((o) => [describeRef({ kind: o.kind, ...o.metadata }), o]));
    try {
        for (const [n, phase] of phases.entries()) {
            log(`deleting ${phase.map(describeRef).join(", ")}`);
            const pruned: AppliedObject[] = [];
            for (const r of phase) {
                const object = byRef.get(describeRef(r));
                if (r.kind === "Kustomization") {
                    pruned.push(...inventoryOf(object!));
                    await api.patch(r, beforeDelete(Math.floor(((deadline - clock.now()) * 0.8) / 1000)));
                }
                if (!object?.metadata.deletionTimestamp) await api.remove(r);
            }
            try {
                await waitUntilGone(phase, (t) => api.exists(t as FluxRef));
                await waitUntilGone(pruned, (t) => api.applied(t as AppliedObject));
            } catch (e) {
                const stuck = (e as { stuck?: Thing[] }).stuck;
                if (!stuck) throw e;
                const waitingOn: Thing[] = [];
                if (stuck.some((t) => t.kind === "Kustomization")) {
                    for (const p of pruned) if (await cluster.applied(p).catch(() => false)) waitingOn.push(p);
                }
                throw Object.assign(e as Error, { notStarted: phases.slice(n + 1).flat(), waitingOn });
            }
        }
    } catch (e) {
        const stuck = (e as { stuck?: Thing[] }).stuck;
        if (!stuck) throw e;
        const thawed: string[] = [];
        for (const t of thaw) {
            if (await cluster.patch(t.ref, t.patch).catch(() => false)) thawed.push(t.what);
        }
        const { notStarted = [], waitingOn = [] } = e as { notStarted?: FluxRef[]; waitingOn?: Thing[] };
        throw teardownStuck(stuck, options.timeoutMs, { notStarted, thawed, waitingOn });
    }

    if (await api.patch(FLUX_INSTANCE, ENABLE_OPERATOR)) {
        log(`uninstalling Flux: deleting ${describeRef(FLUX_INSTANCE)}`);
        await api.remove(FLUX_INSTANCE);
        try {
            await waitUntilGone([FLUX_INSTANCE], (t) => api.exists(t as FluxRef));
        } catch (e) {
            const stuck = (e as { stuck?: Thing[] }).stuck;
            if (!stuck) throw e;
            throw teardownStuck(stuck, options.timeoutMs);
        }
    }
    return phases;
}

/** The same API calls, each retried while the fault is transient and the teardown's budget lasts. */
function retrying(api: TeardownApi, deadline: number, options: TeardownOptions, clock: Clock): TeardownApi {
    const retry = { deadline, pollMs: options.pollMs, requestTimeoutMs: options.requestTimeoutMs, log: options.log, clock };
    const attempt = <T>(what: string, call: () => Promise<T>) => withRetries("Flux teardown could not", what, call, retry);
    return {
        list: (kind) => attempt(`list ${kind}s`, () => api.list(kind)),
        patch: (ref, body) => attempt(`patch ${describeRef(ref)}`, () => api.patch(ref, body)),
        remove: (ref) => attempt(`delete ${describeRef(ref)}`, () => api.remove(ref)),
        exists: (ref) => attempt(`read ${describeRef(ref)}`, () => api.exists(ref)),
        applied: (o) => attempt(`read ${describeRef(o)}`, () => api.applied(o)),
    };
}

/** The TeardownApi over @kubernetes/client-node, for a kubeconfig. */
export async function clientNodeApi(kubeconfig: string): Promise<TeardownApi> {
    const k8s = await importClientNode();
    const config = new k8s.KubeConfig();
    config.loadFromString(kubeconfig);
    const api = config.makeApiClient(k8s.CustomObjectsApi);
    const objects = k8s.KubernetesObjectApi.makeApiClient(config);
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
        async applied(o) {
            // Any kind: the generic client finds the resource's path by discovery.
            try {
                await objects.read({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.name, ...(o.namespace ? { namespace: o.namespace } : {}) } });
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
        const api = await clientNodeApi(props.kubeconfig);
        if (process.env[SKIP_TEARDOWN_ENV] === "1") {
            await skipTeardown(api, log);
            return;
        }
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
 * The teardown skipped on request. If the cluster still answers, an earlier teardown that gave up may
 * have left the FluxInstance disabled, and the operator lets a disabled instance go without uninstalling
 * Flux (fluxinstance_uninstaller.go), leaving flux-system stuck Terminating when Pulumi deletes it: so
 * the instance is re-enabled first. Unreachable is the expected case here (a cluster deleted by hand).
 */
export async function skipTeardown(api: Pick<TeardownApi, "patch">, log: (line: string) => void): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const enabled = await Promise.race([
        api.patch(FLUX_INSTANCE, ENABLE_OPERATOR).catch(() => false),
        new Promise<false>((resolve) => {
            timer = setTimeout(() => resolve(false), 10_000);
        }),
    ]);
    clearTimeout(timer);
    log(
        `skipped (${SKIP_TEARDOWN_ENV}=1): whatever Flux synced is left as it is` +
            (enabled ? "; the FluxInstance's reconciliation was re-enabled, so deleting it uninstalls Flux" : ""),
    );
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
