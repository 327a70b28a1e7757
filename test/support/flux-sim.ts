import type { Clock } from "../../components/kube-api";
import type { AppliedObject, FluxObject, FluxRef, TeardownApi } from "../../components/flux-teardown-provider";

// A cluster with Flux's controllers in it, simulated in virtual time, for the teardown's scenarios. The
// teardown runs against its API in-process with its clock: each time the teardown sleeps, the controllers
// act for that long. What they do is what the teardown depends on, each read in the controllers' source
// (kustomize-controller v1.9 internal/controller/kustomization_controller.go, flux-operator v0.58
// internal/controller/fluxinstance_uninstaller.go):
//
// - A Kustomization's worker handles one reconcile at a time. A spec change bumps `metadata.generation`,
//   and the worker runs that whole reconcile (apply its inventory again, then health-check it if `wait` or
//   `healthChecks`) before it looks at a deletion; deletion is handled at the top of the next reconcile.
// - Health checks: an object that is Terminating or gone is never Current to kstatus, so a health check
//   that includes one runs until the Kustomization's `timeout`, then fails.
// - Deletion (`finalize`): suspended, or with deletionPolicy Orphan, it removes its finaliser and orphans
//   what it applied; otherwise it deletes its inventory with Background propagation and, only with
//   `deletionPolicy: WaitForTermination`, waits (up to `timeout`) for all of it to be gone.
// - A HelmRelease being deleted is uninstalled by helm-controller; a Namespace goes once nothing is left
//   in it; other objects go at once.
// - Deleting the FluxInstance uninstalls Flux (controllers, CRDs, every Flux object's finaliser), unless
//   its reconciliation is disabled: then the operator lets it go and Flux stays, flux-system stuck.

const SECOND = 1000;

export interface SimObject {
    apiVersion: string;
    kind: string;
    namespace: string;
    name: string;
    labels: Record<string, string>;
    generation: number;
    observedGeneration: number;
    deletingSince?: number;
    spec: Record<string, unknown>;
    /** For a Kustomization: the keys of what it applied. */
    inventory: string[];
    /** For a HelmRelease: how long helm-controller takes to uninstall it ("never": a finaliser that hangs). */
    uninstallMs?: number | "never";
    /** A Namespace: how long it takes to go once empty. */
    terminateMs?: number;
}

/** What the controllers were seen doing, for the scenarios to assert on. */
export interface SimEvent {
    at: number;
    what: string;
}

export interface SimKustomization {
    namespace?: string;
    name: string;
    /** @default {} */
    spec?: Record<string, unknown>;
    labels?: Record<string, string>;
    /** Keys (`Kind/namespace/name`) of what it applied. */
    applies?: string[];
}

export function simKey(kind: string, namespace: string, name: string): string {
    return `${kind}/${namespace}/${name}`;
}

const GROUP: Record<string, string> = {
    Kustomization: "kustomize.toolkit.fluxcd.io/v1",
    HelmRelease: "helm.toolkit.fluxcd.io/v2",
    Namespace: "v1",
    Deployment: "apps/v1",
    Service: "v1",
};

function parseSeconds(duration: unknown, fallback: number): number {
    const m = typeof duration === "string" ? /^(\d+)(s|m)$/.exec(duration) : null;
    if (!m) return fallback;
    return Number(m[1]) * (m[2] === "m" ? 60 : 1) * SECOND;
}

export class FluxSim {
    now = 0;
    readonly objects = new Map<string, SimObject>();
    readonly events: SimEvent[] = [];
    readonly writes: string[] = [];
    readonly operator = { reconcile: "enabled" as "enabled" | "disabled", instance: true, installed: true, fluxSystemStuck: false };
    /** Per Kustomization: when its current reconcile ends and what it was (a generation's apply, or finalize). */
    private readonly busy = new Map<string, { until: number; finish: () => void }>();

    /** Adds an object; a Kustomization's applies go into its inventory and get its owner labels. */
    add(kind: string, namespace: string, name: string, extra: Partial<SimObject> = {}): this {
        const object: SimObject = {
            apiVersion: GROUP[kind] ?? "v1",
            kind,
            namespace,
            name,
            labels: {},
            generation: 1,
            observedGeneration: 1,
            spec: {},
            inventory: [],
            ...extra,
        };
        this.objects.set(simKey(kind, namespace, name), object);
        return this;
    }

    kustomization(k: SimKustomization): this {
        const namespace = k.namespace ?? "flux-system";
        this.add("Kustomization", namespace, k.name, {
            labels: k.labels ?? {},
            spec: { wait: true, timeout: "10m", prune: true, ...k.spec },
            inventory: k.applies ?? [],
        });
        for (const child of k.applies ?? []) {
            const o = this.objects.get(child);
            if (o) o.labels = { ...o.labels, "kustomize.toolkit.fluxcd.io/name": k.name, "kustomize.toolkit.fluxcd.io/namespace": namespace };
        }
        return this;
    }

    get(kind: string, namespace: string, name: string): SimObject | undefined {
        return this.objects.get(simKey(kind, namespace, name));
    }

    private log(what: string): void {
        this.events.push({ at: this.now, what });
    }

    /** Everything still Terminating. */
    terminating(): string[] {
        return [...this.objects.entries()].filter(([, o]) => o.deletingSince !== undefined).map(([k]) => k);
    }

    readonly clock: Clock = {
        now: () => this.now,
        sleep: async (ms: number) => this.advance(ms),
    };

    /** Lets the controllers act for `ms`, a second at a time. */
    advance(ms: number): void {
        const end = this.now + ms;
        while (this.now < end) {
            this.now = Math.min(end, this.now + SECOND);
            this.step();
        }
    }

    private step(): void {
        if (!this.operator.installed) return;
        for (const [key, o] of Array.from(this.objects)) {
            if (!this.objects.has(key)) continue;
            if (o.kind === "Kustomization") this.stepKustomization(key, o);
            else if (o.deletingSince !== undefined) this.stepDeleting(key, o);
        }
    }

    private stepDeleting(key: string, o: SimObject): void {
        const since = o.deletingSince ?? this.now;
        if (o.kind === "HelmRelease") {
            if (o.uninstallMs !== "never" && this.now - since >= (o.uninstallMs ?? 3 * SECOND)) this.gone(key, "uninstalled");
        } else if (o.kind === "Namespace") {
            const left = [...this.objects.values()].some((x) => x.namespace === o.name && x.kind !== "Namespace");
            if (!left && this.now - since >= (o.terminateMs ?? SECOND)) this.gone(key, "terminated");
        } else {
            this.gone(key, "deleted");
        }
    }

    private gone(key: string, how: string): void {
        this.objects.delete(key);
        this.log(`${key} ${how}`);
    }

    private stepKustomization(key: string, k: SimObject): void {
        const work = this.busy.get(key);
        if (work) {
            if (this.now < work.until) return;
            this.busy.delete(key);
            work.finish();
            return;
        }
        if (k.deletingSince !== undefined) return this.finalize(key, k);
        this.reconcileGeneration(key, k);
    }

    /** An idle worker takes a new generation at once; the whole reconcile runs before it sees anything else. */
    private reconcileGeneration(key: string, k: SimObject): void {
        if (this.busy.has(key) || k.deletingSince !== undefined || k.spec["suspend"] === true || k.generation === k.observedGeneration) return;
        const generation = k.generation;
        for (const child of k.inventory) {
            if (!this.objects.has(child)) {
                const [kind = "", namespace = "", name = ""] = child.split("/");
                this.add(kind, namespace, name, {
                    labels: { "kustomize.toolkit.fluxcd.io/name": k.name, "kustomize.toolkit.fluxcd.io/namespace": k.namespace },
                });
                this.log(`${child} re-applied by ${key}`);
            }
        }
        const checks = k.spec["wait"] === true || (Array.isArray(k.spec["healthChecks"]) && k.spec["healthChecks"].length > 0);
        const unhealthy = checks && k.inventory.some((c) => !this.objects.has(c) || this.objects.get(c)?.deletingSince !== undefined);
        const took = unhealthy ? parseSeconds(k.spec["timeout"], 10 * 60 * SECOND) : SECOND;
        if (unhealthy) this.log(`${key} health-checks a Terminating object until its timeout`);
        this.busy.set(key, {
            until: this.now + took,
            finish: () => {
                k.observedGeneration = generation;
                if (unhealthy) this.log(`${key} health check failed`);
            },
        });
    }

    private finalize(key: string, k: SimObject): void {
        const policy = k.spec["deletionPolicy"] ?? "MirrorPrune";
        const prunes =
            k.spec["suspend"] !== true &&
            k.inventory.length > 0 &&
            (policy === "Delete" || policy === "WaitForTermination" || (policy === "MirrorPrune" && k.spec["prune"] === true));
        if (!prunes) {
            const orphaned = k.inventory.filter((c) => this.objects.has(c));
            if (orphaned.length > 0) this.log(`${key} orphaned ${orphaned.join(", ")}`);
            return this.gone(key, "finalised");
        }
        for (const c of k.inventory) {
            const child = this.objects.get(c);
            if (child && child.deletingSince === undefined) child.deletingSince = this.now;
        }
        if (policy !== "WaitForTermination") return this.gone(key, "finalised (pruned in the background)");
        const timeout = parseSeconds(k.spec["timeout"], 10 * 60 * SECOND);
        const started = this.now;
        const waitForTermination = () => {
            const left = k.inventory.filter((c) => this.objects.has(c));
            if (left.length === 0) return this.gone(key, "finalised (pruned, waited for termination)");
            if (this.now - started >= timeout) return this.gone(key, `finalised after its timeout, still terminating: ${left.join(", ")}`);
            this.busy.set(key, { until: this.now + 2 * SECOND, finish: waitForTermination });
        };
        this.busy.set(key, { until: this.now + 2 * SECOND, finish: waitForTermination });
    }

    /** The teardown's API, in-process. */
    readonly api: TeardownApi = {
        list: async (kind) => {
            if (!this.operator.installed) return [];
            return [...this.objects.values()]
                .filter((o) => o.kind === kind)
                .map((o): FluxObject => ({
                    kind,
                    metadata: {
                        name: o.name,
                        namespace: o.namespace,
                        labels: o.labels,
                        ...(o.deletingSince !== undefined ? { deletionTimestamp: new Date(o.deletingSince).toISOString() } : {}),
                    },
                    spec: o.spec as FluxObject["spec"],
                    status: {
                        inventory: {
                            entries: o.inventory.map((c) => {
                                const [ck = "", cns = "", cn = ""] = c.split("/");
                                const [group, version] = (GROUP[ck] ?? "v1").includes("/") ? (GROUP[ck] ?? "").split("/") : ["", GROUP[ck] ?? "v1"];
                                return { id: `${cns}_${cn}_${group}_${ck}`, v: version ?? "v1" };
                            }),
                        },
                    },
                }));
        },
        patch: async (ref: FluxRef, body: object) => {
            this.writes.push(`PATCH ${ref.kind} ${ref.namespace}/${ref.name} ${JSON.stringify(body)}`);
            if (ref.kind === "FluxInstance") {
                if (!this.operator.instance) return false;
                const value = (body as { metadata?: { annotations?: Record<string, string | null> } }).metadata?.annotations?.[
                    "fluxcd.controlplane.io/reconcile"
                ];
                this.operator.reconcile = value === "disabled" ? "disabled" : "enabled";
                return true;
            }
            const o = this.get(ref.kind, ref.namespace, ref.name);
            if (!o || !this.operator.installed) return false;
            const spec = (body as { spec?: Record<string, unknown> }).spec;
            if (spec) {
                const next = { ...o.spec };
                for (const [k, v] of Object.entries(spec)) {
                    if (v === null) delete next[k];
                    else next[k] = v;
                }
                if (JSON.stringify(next) !== JSON.stringify(o.spec)) o.generation++;
                o.spec = next;
                // The change reaches the controller's queue (GenerationChangedPredicate) before any later request.
                if (o.kind === "Kustomization") this.reconcileGeneration(simKey(o.kind, o.namespace, o.name), o);
            }
            return true;
        },
        remove: async (ref: FluxRef) => {
            this.writes.push(`DELETE ${ref.kind} ${ref.namespace}/${ref.name}`);
            if (ref.kind === "FluxInstance") {
                if (!this.operator.instance) return;
                this.operator.instance = false;
                if (this.operator.reconcile === "disabled") {
                    this.operator.fluxSystemStuck = true;
                    this.log("FluxInstance deleted while disabled: the operator let it go without uninstalling Flux");
                } else {
                    this.operator.installed = false;
                    for (const [key, o] of Array.from(this.objects)) if (o.kind === "Kustomization" || o.kind === "HelmRelease") this.objects.delete(key);
                    this.log("Flux uninstalled");
                }
                return;
            }
            const o = this.get(ref.kind, ref.namespace, ref.name);
            if (o && o.deletingSince === undefined) o.deletingSince = this.now;
        },
        exists: async (ref: FluxRef) => (ref.kind === "FluxInstance" ? this.operator.instance : this.objects.has(simKey(ref.kind, ref.namespace, ref.name))),
        applied: async (o: AppliedObject) => this.objects.has(simKey(o.kind, o.namespace, o.name)),
    };
}

/**
 * The cluster clusters/development makes: the root sync applies the three layers; platform-services
 * (a provider) applies cert-manager and podinfo and their namespaces; service-configs and configs apply
 * a few objects; an application team's Kustomization applies its own release.
 */
export function developmentSim(): FluxSim {
    const sim = new FluxSim()
        .add("Namespace", "", "cert-manager", { terminateMs: 5 * SECOND })
        .add("Namespace", "", "podinfo", { terminateMs: 20 * SECOND })
        .add("HelmRelease", "cert-manager", "cert-manager", { uninstallMs: 8 * SECOND })
        .add("HelmRelease", "podinfo", "podinfo", { uninstallMs: 5 * SECOND })
        .add("Deployment", "cert-manager", "cert-manager-webhook")
        .add("Service", "flux-system", "cluster-issuers-marker")
        .add("Service", "flux-system", "platform-info")
        .add("HelmRelease", "apps", "shop", { uninstallMs: 4 * SECOND })
        .kustomization({
            name: "platform-services",
            labels: { "gitops-platform.io/teardown": "provider" },
            applies: [
                "Namespace//cert-manager",
                "Namespace//podinfo",
                "HelmRelease/cert-manager/cert-manager",
                "HelmRelease/podinfo/podinfo",
                "Deployment/cert-manager/cert-manager-webhook",
            ],
        })
        .kustomization({
            name: "platform-service-configs",
            spec: { dependsOn: [{ name: "platform-services" }], timeout: "5m" },
            applies: ["Service/flux-system/cluster-issuers-marker"],
        })
        .kustomization({
            name: "platform-configs",
            spec: { dependsOn: [{ name: "platform-service-configs" }], timeout: "5m" },
            applies: ["Service/flux-system/platform-info"],
        })
        .kustomization({
            namespace: "apps",
            name: "shop",
            spec: { dependsOn: [{ name: "platform-configs", namespace: "flux-system" }] },
            applies: ["HelmRelease/apps/shop"],
        });
    sim.kustomization({
        name: "flux-system",
        spec: { wait: false },
        applies: [
            "Kustomization/flux-system/platform-services",
            "Kustomization/flux-system/platform-service-configs",
            "Kustomization/flux-system/platform-configs",
            "Kustomization/apps/shop",
        ],
    });
    return sim;
}

// ---------------------------------------------------------------------------------------------------
// A cluster syncing a Git branch, for `pulumi up`'s readiness gate, in virtual time. What the gate relies on:
// - A source fetches on its interval, or at once when `reconcile.fluxcd.io/requestedAt` differs from its
//   `status.lastHandledReconcileAt`, which each reconcile then sets (fluxcd/pkg runtime `ReconcileRequested`
//   predicate; source-controller, kustomize-controller and flux-operator all record it the same way).
// - The root sync applies the revision its source fetched, creating the objects of the cluster folder at
//   that revision, and records it as `status.lastAppliedRevision` (kustomization_controller.go).
// - A layer's attempts are scripted; each attempt sets its Ready condition and, after a failure, the next
//   attempt comes on `retryInterval` or at once on a request.
// - A FluxInstance keeps a Stalled condition from an old failed build (flux-operator never removes it).

import type { FluxObjectRef } from "../../lib/gitops-tree";
import type { ObservedObject, ReadinessApi } from "../../components/flux-ready-provider";

type Ready = { status: "True" | "False" | "Unknown"; reason: string; message: string };

interface SyncObject {
    ref: FluxObjectRef;
    role: "source" | "root" | "layer" | "static" | "instance";
    generation: number;
    observedGeneration: number;
    requestedAt?: string;
    lastHandledReconcileAt?: string;
    ready?: Ready;
    extraConditions: { type: string; status: string; reason: string; message: string }[];
    artifact?: string;
    lastAppliedRevision?: string;
    /** For a source: the result of the nth fetch. For a layer: of its nth attempt. */
    attempt?: (n: number) => Ready;
    attempts: number;
    nextAt: number;
    intervalMs: number;
    inventory: FluxObjectRef[];
    spec: { type?: string };
}

export const READY: Ready = { status: "True", reason: "ReconciliationSucceeded", message: "Applied revision" };

export class SyncSim {
    now = 0;
    /** What the branch holds now: its revision and the objects its cluster folder declares. */
    remote = { revision: "main@sha1:aaaaaaa", folder: [] as string[] };
    readonly objects = new Map<string, SyncObject>();
    /** Objects the root sync creates when a revision declares them: key → how to create. */
    readonly templates = new Map<string, () => SyncObject>();
    readonly requests: string[] = [];

    static key(r: FluxObjectRef): string {
        return `${r.kind} ${r.namespace}/${r.name}`;
    }

    private make(ref: FluxObjectRef, role: SyncObject["role"], extra: Partial<SyncObject> = {}): SyncObject {
        return {
            ref,
            role,
            generation: 1,
            observedGeneration: 0,
            extraConditions: [],
            attempts: 0,
            nextAt: 0,
            intervalMs: 60_000,
            inventory: [],
            spec: {},
            ...extra,
        };
    }

    /** An object that exists now. */
    put(ref: FluxObjectRef, role: SyncObject["role"], extra: Partial<SyncObject> = {}): this {
        this.objects.set(SyncSim.key(ref), this.make(ref, role, extra));
        return this;
    }

    /** An object the root sync creates once a revision it applies declares it. */
    template(ref: FluxObjectRef, role: SyncObject["role"], extra: Partial<SyncObject> = {}): this {
        this.templates.set(SyncSim.key(ref), () => this.make(ref, role, extra));
        return this;
    }

    object(ref: FluxObjectRef): SyncObject | undefined {
        return this.objects.get(SyncSim.key(ref));
    }

    readonly clock: Clock = { now: () => this.now, sleep: async (ms: number) => this.advance(ms) };

    advance(ms: number): void {
        const end = this.now + ms;
        while (this.now < end) {
            this.now = Math.min(end, this.now + 1000);
            for (const o of this.objects.values()) this.reconcile(o);
        }
    }

    private due(o: SyncObject): boolean {
        return o.requestedAt !== o.lastHandledReconcileAt || o.observedGeneration < o.generation || this.now >= o.nextAt;
    }

    private reconcile(o: SyncObject): void {
        if (o.role === "static" || !this.due(o)) return;
        const handled = o.requestedAt;
        o.attempts++;
        if (o.role === "source") {
            o.ready = o.attempt ? o.attempt(o.attempts) : READY;
            if (o.ready.status === "True") o.artifact = this.remote.revision;
        } else if (o.role === "root") {
            const source = [...this.objects.values()].find((s) => s.role === "source" && s.ref.name === "flux-system");
            const revision = source?.artifact;
            if (revision) {
                for (const key of this.remote.folder) {
                    const create = this.templates.get(key);
                    if (create && !this.objects.has(key)) this.objects.set(key, create());
                }
                o.lastAppliedRevision = revision;
                o.ready = { ...READY, message: `Applied revision: ${revision}` };
            }
        } else if (o.role === "layer") {
            o.ready = o.attempt ? o.attempt(o.attempts) : READY;
        } else {
            const root = [...this.objects.values()].find((r) => r.role === "root");
            o.ready = root?.ready?.status === "True" ? READY : { status: "Unknown", reason: "Progressing", message: "Reconciliation in progress" };
        }
        o.observedGeneration = o.generation;
        o.lastHandledReconcileAt = handled;
        o.nextAt = this.now + (o.ready?.status === "False" ? 30_000 : o.intervalMs);
    }

    readonly api: ReadinessApi = {
        get: async (r) => {
            const o = this.object(r);
            if (!o) return undefined;
            const observed: ObservedObject = {
                metadata: { generation: o.generation },
                spec: o.spec,
                status: {
                    observedGeneration: o.observedGeneration,
                    ...(o.lastHandledReconcileAt !== undefined ? { lastHandledReconcileAt: o.lastHandledReconcileAt } : {}),
                    conditions: [...(o.ready ? [{ type: "Ready", ...o.ready }] : []), ...o.extraConditions],
                    ...(o.artifact ? { artifact: { revision: o.artifact } } : {}),
                    ...(o.lastAppliedRevision ? { lastAppliedRevision: o.lastAppliedRevision } : {}),
                    inventory: {
                        entries: o.inventory.map((c) => {
                            const [group = "", version = ""] = c.apiVersion.split("/");
                            return { id: `${c.namespace}_${c.name}_${group}_${c.kind}`, v: version };
                        }),
                    },
                },
            };
            return o.role === "static" && o.spec.type === "oci" ? { metadata: observed.metadata, spec: o.spec } : observed;
        },
        requestReconcile: async (r, token) => {
            const o = this.object(r);
            this.requests.push(`${SyncSim.key(r)} ${token}`);
            if (!o) return false;
            o.requestedAt = token;
            return true;
        },
    };
}
