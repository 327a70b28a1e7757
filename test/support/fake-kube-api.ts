import * as http from "http";
import type { FluxObject } from "../../components/flux-teardown-provider";

// A stand-in for the Kubernetes API server, speaking the few calls the Flux teardown makes.

export interface Request {
    method: string;
    path: string;
    query?: string;
    contentType?: string;
    body?: unknown;
}

/** The key of an object in the fake: `<plural>/<namespace>/<name>`. */
export type ObjectKey = string;

export interface FakeClusterOptions {
    /** A deleted object disappears after this many reads of it (its finaliser's work), or never. @default 2 */
    finaliseAfter?: number | "never";
    /** What each Kustomization applied (its inventory), by key: pruned when it is deleted unsuspended. */
    applied?: Record<ObjectKey, ObjectKey[]>;
    /**
     * A fault for a request, decided before the fake answers it: an HTTP error with the API's Status
     * message, or "hang" (the connection stays open and nothing is ever sent). @default none
     */
    fault?: (request: { method: string; path: string; n: number }) => { status: number; message: string } | "hang" | undefined;
}

/**
 * A fake API server that behaves the way Flux and the Flux Operator do where the teardown relies on it:
 * - a Kustomization that is not suspended re-applies what it applied (its inventory) whenever the
 *   cluster is looked at, so a consumer deleted under a live parent comes back;
 * - a deleted Kustomization prunes its inventory only when it is not suspended (kustomize-controller
 *   `finalize` skips garbage collection for a suspended one), else what it applied is orphaned;
 * - deleting the FluxInstance uninstalls Flux (controllers, CRDs, the finalisers on Flux objects)
 *   unless its reconciliation is disabled, in which case the operator just lets it go
 *   (flux-operator internal/controller/fluxinstance_uninstaller.go, `IsDisabled()`).
 */
export function fakeKubeApi(objects: FluxObject[], options: FakeClusterOptions = {}) {
    const finaliseAfter = options.finaliseAfter ?? 2;
    const applied = options.applied ?? {};
    const requests: Request[] = [];
    const plural = { Kustomization: "kustomizations", HelmRelease: "helmreleases" } as const;
    type Entry = { object: FluxObject; reads: number; deleting: boolean };
    const live = new Map<ObjectKey, Entry>();
    const keyOf = (o: FluxObject) => `${plural[o.kind]}/${o.metadata.namespace}/${o.metadata.name}`;
    const original = new Map<ObjectKey, FluxObject>();
    const kindOf = {
        kustomizations: ["kustomize.toolkit.fluxcd.io", "v1", "Kustomization"],
        helmreleases: ["helm.toolkit.fluxcd.io", "v2", "HelmRelease"],
    } as const;
    for (const o of objects) {
        // What kustomize-controller writes: owner labels on what a Kustomization applied, its inventory in its status.
        const object = structuredClone(o);
        for (const [parent, children] of Object.entries(applied)) {
            const [, ns = "", name = ""] = parent.split("/");
            if (children.includes(keyOf(o)))
                object.metadata.labels = { ...object.metadata.labels, "kustomize.toolkit.fluxcd.io/name": name, "kustomize.toolkit.fluxcd.io/namespace": ns };
            if (parent === keyOf(o)) {
                object.status = {
                    inventory: {
                        entries: children.map((c) => {
                            const [plural = "", cns = "", cn = ""] = c.split("/");
                            const [group, version, kind] = kindOf[plural as keyof typeof kindOf];
                            return { id: `${cns}_${cn}_${group}_${kind}`, v: version };
                        }),
                    },
                };
            }
        }
        live.set(keyOf(o), { object, reads: 0, deleting: false });
        original.set(keyOf(o), object);
    }
    const flux = { installed: true, instance: true, reconcile: "enabled" as "enabled" | "disabled", orphaned: [] as ObjectKey[], reapplied: [] as ObjectKey[] };
    const suspended = (k: ObjectKey) => (live.get(k)?.object.spec as { suspend?: boolean } | undefined)?.suspend === true;

    /** What live, unsuspended Kustomizations do on their interval: apply what is missing again. */
    function reconcile(): void {
        if (!flux.installed) return;
        for (const [k, inventory] of Object.entries(applied)) {
            const entry = live.get(k);
            if (!entry || entry.deleting || suspended(k)) continue;
            for (const child of inventory) {
                const source = original.get(child);
                if (!live.has(child) && source) {
                    live.set(child, { object: structuredClone(source), reads: 0, deleting: false });
                    flux.reapplied.push(child);
                }
            }
        }
    }

    function finalise(k: ObjectKey): void {
        const inventory = k.startsWith("kustomizations/") ? (applied[k] ?? []) : [];
        if (suspended(k)) flux.orphaned.push(...inventory.filter((c) => live.has(c)));
        else for (const child of inventory) live.delete(child);
        live.delete(k);
    }

    const server = http.createServer((req, res) => {
        let raw = "";
        req.on("data", (c) => (raw += c));
        req.on("end", () => {
            const url = new URL(req.url ?? "/", "http://localhost");
            const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
            requests.push({ method: req.method ?? "", path: url.pathname, query: url.search || undefined, contentType: req.headers["content-type"], body });
            const fault = options.fault?.({ method: req.method ?? "", path: url.pathname, n: requests.length });
            if (fault === "hang") return;
            if (fault) {
                res.writeHead(fault.status, { "content-type": "application/json" });
                return res.end(JSON.stringify({ kind: "Status", code: fault.status, message: fault.message }));
            }
            const send = (code: number, payload: object) => {
                res.writeHead(code, { "content-type": "application/json" });
                res.end(JSON.stringify(payload));
            };
            const notFound = () => send(404, { kind: "Status", code: 404, reason: "NotFound" });
            if (req.method === "GET") reconcile();
            // Discovery, which the generic client asks before it reads an object of any kind.
            const group = /^\/apis\/([^/]+)\/([^/]+)$/.exec(url.pathname);
            if (group && req.method === "GET") {
                const resources = Object.entries(kindOf)
                    .filter(([, [g, v]]) => g === group[1] && v === group[2])
                    .map(([name, [, , kind]]) => ({ name, kind, namespaced: true, verbs: ["get", "list", "delete", "patch"] }));
                return send(200, { kind: "APIResourceList", groupVersion: `${group[1]}/${group[2]}`, resources });
            }
            const list = /^\/apis\/[^/]+\/[^/]+\/(kustomizations|helmreleases)$/.exec(url.pathname);
            if (list && req.method === "GET") {
                if (!flux.installed) return notFound();
                return send(200, { items: [...live.entries()].filter(([k]) => k.startsWith(list[1] ?? "")).map(([, v]) => v.object) });
            }
            const one = /^\/apis\/[^/]+\/[^/]+\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
            if (!one) return notFound();
            if (one[2] === "fluxinstances") {
                if (!flux.instance) return notFound();
                if (req.method === "PATCH") {
                    const value = (body as { metadata?: { annotations?: Record<string, string | null> } } | undefined)?.metadata?.annotations?.[
                        "fluxcd.controlplane.io/reconcile"
                    ];
                    flux.reconcile = value === "disabled" ? "disabled" : "enabled";
                }
                if (req.method === "DELETE") {
                    flux.instance = false;
                    if (flux.reconcile === "enabled") {
                        // The operator's uninstall: controllers and CRDs go, and every Flux object with them.
                        flux.installed = false;
                        live.clear();
                    }
                }
                return send(200, { kind: "FluxInstance", metadata: { annotations: { "fluxcd.controlplane.io/reconcile": flux.reconcile } } });
            }
            if (!flux.installed) return notFound();
            const k = `${one[2]}/${one[1]}/${one[3]}`;
            const entry = live.get(k);
            if (!entry) return notFound();
            if (req.method === "PATCH" && body) entry.object = { ...entry.object, spec: { ...entry.object.spec, ...(body.spec as object | undefined) } };
            if (req.method === "DELETE") entry.deleting = true;
            if (req.method === "GET" && entry.deleting && finaliseAfter !== "never" && ++entry.reads >= finaliseAfter) {
                finalise(k);
                return notFound();
            }
            return send(200, entry.object);
        });
    });
    return { server, requests, live, flux };
}

/** A kubeconfig for a fake API server listening on 127.0.0.1:`port`. */
export function kubeconfigFor(port: number): string {
    return [
        "apiVersion: v1",
        "kind: Config",
        // client-node accepts a plain-HTTP server only with TLS verification off, which is all a local fake needs.
        `clusters: [{name: fake, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]`,
        "users: [{name: fake, user: {token: not-a-real-token}}]",
        "contexts: [{name: fake, context: {cluster: fake, user: fake}}]",
        "current-context: fake",
    ].join("\n");
}

/** What the fake answers for one object on its `n`th read (from 1): the object, absent, or an API error. */
export type Answer = object | "absent" | { status: number; message: string };

/**
 * A fake API server for the readiness wait's wiring: each object, by `<plural>/<namespace>/<name>`,
 * answers according to how often it has been asked for (read or patched). A reconcile request (a merge patch of
 * `reconcile.fluxcd.io/requestedAt`) is handled at once: the object's next answers carry it as
 * `status.lastHandledReconcileAt`. Objects not in the script do not exist. (The controllers' behaviour
 * over time is simulated in test/support/flux-sim.ts.)
 */
export function fakeStatusApi(script: Record<ObjectKey, (n: number) => Answer>) {
    const reads = new Map<ObjectKey, number>();
    const handled = new Map<ObjectKey, string>();
    const requests: Request[] = [];
    const server = http.createServer((req, res) => {
        let raw = "";
        req.on("data", (c) => (raw += c));
        req.on("end", () => {
            const url = new URL(req.url ?? "/", "http://localhost");
            const body = raw ? (JSON.parse(raw) as { metadata?: { annotations?: Record<string, string> } }) : undefined;
            requests.push({ method: req.method ?? "", path: url.pathname, contentType: req.headers["content-type"], body });
            const one = /^\/apis\/[^/]+\/[^/]+\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
            const key = one ? `${one[2]}/${one[1]}/${one[3]}` : "";
            const send = (code: number, payload: object) => {
                res.writeHead(code, { "content-type": "application/json" });
                res.end(JSON.stringify(payload));
            };
            const n = (reads.get(key) ?? 0) + 1;
            reads.set(key, n);
            const answer = script[key]?.(n) ?? "absent";
            if (answer === "absent") return send(404, { kind: "Status", code: 404, reason: "NotFound" });
            if ("status" in answer && typeof answer.status === "number" && "message" in answer) {
                return send(answer.status, { kind: "Status", code: answer.status, message: answer.message });
            }
            if (req.method === "PATCH") {
                const token = body?.metadata?.annotations?.["reconcile.fluxcd.io/requestedAt"];
                if (token) handled.set(key, token);
                return send(200, answer);
            }
            const object = structuredClone(answer) as { status?: Record<string, unknown> };
            if (handled.has(key) && object.status) object.status["lastHandledReconcileAt"] = handled.get(key);
            return send(200, object);
        });
    });
    return { server, requests, reads };
}
