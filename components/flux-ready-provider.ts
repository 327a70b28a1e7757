import type * as pulumi from "@pulumi/pulumi";
import type { FluxObjectRef } from "../lib/gitops-tree";
import { type Clock, importClientNode, realClock, statusOf, withRetries } from "./kube-api";

// What makes `pulumi up` end only when Flux has synced, or fail saying what did not. pulumi-kubernetes
// can wait for a custom resource's condition (`pulumi.com/waitFor`), but it only logs a Ready=False and
// waits out the whole timeout, then reports that it timed out (provider/pkg/await/condition/custom.go and
// kubectl.go checkCondition): it cannot name the object that failed, nor stop when one has. Self-contained
// like the other providers: Pulumi serialises it with what it references.

interface Condition {
    type?: string;
    status?: string;
    reason?: string;
    message?: string;
    observedGeneration?: number;
}

/** The fields of a live object the judgement reads. */
export interface ObservedObject {
    metadata?: { generation?: number; annotations?: Record<string, string> };
    spec?: { type?: string };
    status?: {
        observedGeneration?: number;
        conditions?: Condition[];
        /** The last `reconcile.fluxcd.io/requestedAt` value the controller handled (fluxcd/pkg apis/meta). */
        lastHandledReconcileAt?: string;
        /** A source's artifact, and the revision a Kustomization last applied. */
        artifact?: { revision?: string };
        lastAppliedRevision?: string;
        inventory?: { entries?: { id: string; v: string }[] };
    };
}

/** The API calls the wait makes. */
export interface ReadinessApi {
    /** The object, or undefined when it (or its kind, before Flux installed its CRDs) does not exist. */
    get(ref: FluxObjectRef): Promise<ObservedObject | undefined>;
    /** Sets `reconcile.fluxcd.io/requestedAt` on the object (a merge patch); false when it does not exist. */
    requestReconcile(ref: FluxObjectRef, token: string): Promise<boolean>;
}

export type Verdict = { state: "ready" } | { state: "missing" } | { state: "waiting"; why: string } | { state: "failed"; why: string; stalled: boolean };

/**
 * Ready=False reasons that mean "waiting for something else", not "this failed": the object is
 * progressing, a dependency is not Ready yet, or a newer revision cancelled its health check
 * (fluxcd/pkg apis/meta; kustomize-controller internal/controller/kustomization_controller.go).
 */
// Arrays, not Sets: Pulumi's closure serialiser turns a captured Set into a plain object.
const WAITING_REASONS = ["Progressing", "ProgressingWithRetry", "DependencyNotReady", "HealthCheckCanceled"];

/**
 * ArtifactFailed messages of a Kustomization that mean its source has no artifact yet, which is the
 * source's to report (kustomization_controller.go: "Source artifact not found, retrying in …", "Source is
 * not ready, artifact not found, retrying in …"). Every other ArtifactFailed is its own failure, such as
 * "kustomization path not found" (a branch pushed without its cluster folder).
 */
const WAITING_ARTIFACT = /^Source (artifact not found|is not ready, artifact not found)/;

/**
 * Whether one object is Ready, by the conditions its controller wrote for its current generation and, when
 * the wait asked it to reconcile (`requested`), for that request. Judged in this order: the generation
 * (a condition of an older one says nothing about now), the request, then Ready, then Stalled, which
 * flux-operator sets on a failed build and never removes: it counts only while Ready is not True.
 */
export function judge(ref: FluxObjectRef, object: ObservedObject | undefined, requested?: string): Verdict {
    if (!object) return { state: "missing" };
    const conditions = object.status?.conditions ?? [];
    const ready = conditions.find((c) => c.type === "Ready");
    const text = (c: Condition) => `Ready=${c.status ?? "Unknown"}${c.reason ? ` (${c.reason})` : ""}${c.message ? `: ${c.message}` : ""}`;
    // An OCI HelmRepository is never reconciled, so it has no conditions: it is ready once it exists
    // (source-controller internal/controller/helmrepository_controller.go skips type oci).
    if (ref.kind === "HelmRepository" && object.spec?.type === "oci") return { state: "ready" };
    const generation = object.metadata?.generation;
    const observed = ready?.observedGeneration ?? object.status?.observedGeneration;
    if (generation !== undefined && observed !== undefined && observed < generation) {
        return { state: "waiting", why: `not reconciled since its last change (generation ${generation}, observed ${observed})` };
    }
    if (requested !== undefined && object.status?.lastHandledReconcileAt !== requested) {
        return { state: "waiting", why: "has not handled the reconcile request yet" };
    }
    if (ready?.status === "True") return { state: "ready" };
    const stalled = conditions.find((c) => c.type === "Stalled" && c.status === "True");
    if (stalled)
        return {
            state: "failed",
            why: `Stalled${stalled.reason ? ` (${stalled.reason})` : ""}: ${stalled.message ?? ready?.message ?? ""}`.trim(),
            stalled: true,
        };
    if (!ready) return { state: "waiting", why: "not reconciled yet (no Ready condition)" };
    const waiting =
        ready.status !== "False" ||
        WAITING_REASONS.includes(ready.reason ?? "") ||
        (ref.kind === "Kustomization" && ready.reason === "ArtifactFailed" && WAITING_ARTIFACT.test(ready.message ?? ""));
    return waiting ? { state: "waiting", why: text(ready) } : { state: "failed", why: text(ready), stalled: false };
}

export function describeObject(r: FluxObjectRef): string {
    return `${r.kind} ${r.namespace}/${r.name}`;
}

const SOURCE_KINDS = ["GitRepository", "OCIRepository", "HelmRepository", "Bucket", "HelmChart", "ExternalArtifact"];

/** Where to look next for an object that is not Ready. */
export function hintFor(r: FluxObjectRef): string {
    const describe = `\`kubectl -n ${r.namespace} describe ${r.kind.toLowerCase()} ${r.name}\``;
    if (SOURCE_KINDS.includes(r.kind)) {
        return `Check the URL and ref it pulls and the token it pulls with (the stack's sync, platformRepository and token settings); ${describe} shows the last attempt.`;
    }
    if (r.kind === "Kustomization") return `${describe} shows what failed; fix it in Git and Flux retries on its own.`;
    if (r.kind === "FluxInstance")
        return `${describe} and \`kubectl -n ${r.namespace} logs deploy/flux-operator\` show why the operator could not install Flux.`;
    return `${describe} shows why.`;
}

export interface ReadinessOptions {
    /** Give up after this long, naming what is not Ready. */
    timeoutMs: number;
    /** How often to look. */
    pollMs: number;
    /**
     * How many of Flux's own attempts, each made after a reconcile request of this wait, must fail before
     * a failure is the verdict (Stalled stops at once). Flux retries a failed fetch or apply by itself, so a
     * blip in a cluster's first minute is not the verdict; counting attempts instead of seconds makes the
     * verdict the same on a slow machine and a fast one. @default 2
     */
    attempts?: number;
    /** How long one API request may take. @default 30000 */
    requestTimeoutMs?: number;
    log?: (line: string) => void;
    /** @default realClock */
    clock?: Clock;
    /** What makes this wait's reconcile requests its own. @default the clock's time */
    requestId?: string;
}

const AGAIN = "The cluster and Flux are left as they are: fix the cause and run `pulumi up` again.";
const ROOT = { namespace: "flux-system", name: "flux-system" };
const isRootSync = (r: FluxObjectRef) => r.kind === "Kustomization" && r.namespace === ROOT.namespace && r.name === ROOT.name;
const isRootSource = (r: FluxObjectRef) => r.kind === "GitRepository" && r.namespace === ROOT.namespace && r.name === ROOT.name;

/**
 * Waits until every object is Ready. `objects` come causes first (sources before the Kustomizations that
 * pull them, each layer before those that depend on it, the root sync and the FluxInstance last), so the
 * object an error names is the one to fix, not one waiting on it.
 *
 * It first asks Flux to act now (`reconcile.fluxcd.io/requestedAt` on the sources, the root sync and the
 * FluxInstance: a source otherwise fetches only on its interval, so a merge's new objects would look
 * missing and a new token untried), and judges those objects only once they have handled that request.
 * An object is "missing" for good only once the root sync has applied the revision its source fetched
 * after the request. A failure is the verdict once Flux's own attempts after a request of this wait have
 * failed `attempts` times (each failure is answered with a new request), or at once when Stalled. On a
 * failure or a timeout, the Flux objects inside the layer named (its `status.inventory`) that are not
 * Ready are named too, with their messages.
 */
export async function waitForFlux(api: ReadinessApi, objects: FluxObjectRef[], options: ReadinessOptions): Promise<void> {
    const log = options.log ?? (() => undefined);
    const clock = options.clock ?? realClock;
    const deadline = clock.now() + options.timeoutMs;
    const attempts = options.attempts ?? 2;
    const retry = { deadline, pollMs: options.pollMs, requestTimeoutMs: options.requestTimeoutMs, log, clock };
    const requestId = options.requestId ?? String(clock.now());
    const requested = new Map<string, { token: string; count: number }>();
    const request = async (r: FluxObjectRef) => {
        const key = describeObject(r);
        const count = (requested.get(key)?.count ?? 0) + 1;
        const token = `${requestId}-${count}`;
        if (await withRetries("Waiting for Flux, could not ask", `${key} to reconcile`, () => api.requestReconcile(r, token), retry)) {
            requested.set(key, { token, count });
        }
    };
    const lastSaid = new Map<string, string>();
    let last: Verdict[] | undefined;
    for (;;) {
        for (const r of objects) {
            if (!requested.has(describeObject(r)) && (SOURCE_KINDS.includes(r.kind) || isRootSync(r) || r.kind === "FluxInstance")) await request(r);
        }
        let observed: (ObservedObject | undefined)[];
        try {
            observed = await Promise.all(objects.map((r) => withRetries("Waiting for Flux, could not read", describeObject(r), () => api.get(r), retry)));
        } catch (e) {
            // Out of time while looking: what was not Ready at the last look is the news, not the last request.
            if (last && clock.now() + options.pollMs > deadline) throw await notReadyInTime(api, objects, last, options.timeoutMs);
            throw e;
        }
        let verdicts = objects.map((r, i) => judge(r, observed[i], requested.get(describeObject(r))?.token));
        verdicts = notApplied(objects, observed, verdicts);
        last = verdicts;
        verdicts.forEach((v, i) => {
            const key = describeObject(objects[i]!);
            const said = v.state === "waiting" || v.state === "failed" ? v.why : v.state;
            if (lastSaid.get(key) !== said) log(`${key}: ${said}`);
            lastSaid.set(key, said);
        });
        if (verdicts.every((v) => v.state === "ready")) return;

        for (const [i, r] of objects.entries()) {
            const v = verdicts[i]!;
            if (v.state !== "failed") continue;
            if (v.stalled || (requested.get(describeObject(r))?.count ?? 0) >= attempts) {
                throw new Error(`Flux is not Ready: ${describeObject(r)}: ${v.why}.${await inside(api, r, observed[i])} ${hintFor(r)} ${AGAIN}`);
            }
            // Failed, but not yet on an attempt this wait asked for: ask for another, and judge that one.
            await request(r);
        }
        if (clock.now() + options.pollMs > deadline) throw await notReadyInTime(api, objects, verdicts, options.timeoutMs);
        await clock.sleep(options.pollMs);
    }
}

/**
 * An object of the cluster folder that is missing once the root sync has applied the revision its source
 * fetched after this wait's request was not in that revision: the folder of this checkout has it, the
 * branch Flux follows does not (not pushed yet). Waiting longer would not bring it.
 */
function notApplied(objects: FluxObjectRef[], observed: (ObservedObject | undefined)[], verdicts: Verdict[]): Verdict[] {
    const root = objects.findIndex(isRootSync);
    const source = objects.findIndex(isRootSource);
    if (root < 0 || verdicts[root]?.state !== "ready") return verdicts;
    const fetched = source >= 0 && verdicts[source]?.state === "ready" ? observed[source]?.status?.artifact?.revision : undefined;
    if (!fetched || observed[root]?.status?.lastAppliedRevision !== fetched) {
        return verdicts.map((v, i) =>
            i === root ? { state: "waiting", why: `has not applied the revision its source fetched (${fetched ?? "none yet"}) yet` } : v,
        );
    }
    return verdicts.map((v, i) =>
        v.state === "missing" && i < root
            ? {
                  state: "failed",
                  why: `does not exist, although the root sync applied ${fetched}, the newest revision of the branch it follows: this checkout's cluster folder declares it, that revision does not (push the branch Flux follows?)`,
                  stalled: true,
              }
            : v,
    );
}

/** The Flux objects a Kustomization applied that are not Ready, with their own words: what a layer waits on. */
async function inside(api: ReadinessApi, r: FluxObjectRef, object: ObservedObject | undefined): Promise<string> {
    if (r.kind !== "Kustomization" || isRootSync(r)) return "";
    const found: string[] = [];
    for (const e of object?.status?.inventory?.entries ?? []) {
        const [namespace = "", name = "", group = "", kind = ""] = e.id.split("_");
        if (!group.endsWith(".toolkit.fluxcd.io")) continue;
        const child: FluxObjectRef = { apiVersion: `${group}/${e.v}`, kind, namespace, name };
        const v = judge(child, await api.get(child).catch(() => undefined));
        if (v.state === "failed" || v.state === "waiting") found.push(`${describeObject(child)}: ${v.why}`);
        else if (v.state === "missing") found.push(`${describeObject(child)}: does not exist`);
    }
    return found.length > 0 ? ` Inside it: ${found.join("; ")}.` : "";
}

/** The timeout, naming the cause first: a failure, else something that exists but is not Ready, else the first missing. */
async function notReadyInTime(api: ReadinessApi, objects: FluxObjectRef[], verdicts: Verdict[], timeoutMs: number): Promise<Error> {
    const pick = (state: Verdict["state"]) => verdicts.findIndex((v) => v.state === state);
    const i = [pick("failed"), pick("waiting"), pick("missing")].find((n) => n >= 0) ?? 0;
    const r = objects[i]!;
    const v = verdicts[i]!;
    const why = v.state === "failed" || v.state === "waiting" ? v.why : "does not exist yet";
    const others = objects.filter((_, n) => n !== i && verdicts[n]!.state !== "ready").map(describeObject);
    const within = await inside(api, r, await api.get(r).catch(() => undefined));
    return new Error(
        `Flux was not Ready within ${Math.round(timeoutMs / 1000)}s (flux.readyTimeout): ${describeObject(r)}: ${why}.${within} ` +
            (others.length > 0 ? `Not Ready either: ${others.join(", ")}. ` : "") +
            `${hintFor(r)} ${AGAIN} If it only needs longer, raise flux.readyTimeout.`,
    );
}

/** The plural a Flux kind is served under (every Flux CRD uses the lower-cased kind plus s or ies). */
export function pluralOf(kind: string): string {
    const lower = kind.toLowerCase();
    return lower.endsWith("y") ? `${lower.slice(0, -1)}ies` : `${lower}s`;
}

/** The ReadinessApi over @kubernetes/client-node, for a kubeconfig. */
export async function readinessApi(kubeconfig: string): Promise<ReadinessApi> {
    const k8s = await importClientNode();
    const config = new k8s.KubeConfig();
    config.loadFromString(kubeconfig);
    const api = config.makeApiClient(k8s.CustomObjectsApi);
    return {
        async get(r) {
            const [group = "", version = ""] = r.apiVersion.split("/");
            try {
                return (await api.getNamespacedCustomObject({
                    group,
                    version,
                    plural: pluralOf(r.kind),
                    namespace: r.namespace,
                    name: r.name,
                })) as ObservedObject;
            } catch (e) {
                if (statusOf(e) === 404) return undefined; // not created yet, or Flux has not installed its CRDs yet
                throw e;
            }
        },
        async requestReconcile(r, token) {
            const [group = "", version = ""] = r.apiVersion.split("/");
            try {
                await api.patchNamespacedCustomObject(
                    {
                        group,
                        version,
                        plural: pluralOf(r.kind),
                        namespace: r.namespace,
                        name: r.name,
                        body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": token } } },
                    },
                    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
                );
                return true;
            } catch (e) {
                if (statusOf(e) === 404) return false;
                throw e;
            }
        },
    };
}

export interface FluxReadyInputs {
    kubeconfig: string;
    timeoutSeconds: number;
    objects: FluxObjectRef[];
    /** What Flux was asked to be (a digest of the FluxInstance): a change means waiting again. */
    revision: string;
}

/** How often the wait looks. */
const POLL_MS = 5_000;

/**
 * Waits on create and on update. Nothing on delete, and no `read`, so `pulumi destroy` and
 * `pulumi refresh` never wait: the dynamic-provider host answers a read with the stored state when the
 * provider has none (@pulumi/pulumi cmd/dynamic-provider/index.js, `read`).
 */
export class FluxReadyProvider implements pulumi.dynamic.ResourceProvider<FluxReadyInputs, FluxReadyInputs> {
    async create(inputs: FluxReadyInputs): Promise<pulumi.dynamic.CreateResult<FluxReadyInputs>> {
        await this.wait(inputs);
        return { id: "flux-ready", outs: inputs };
    }

    async diff(_id: string, olds: FluxReadyInputs, news: FluxReadyInputs): Promise<pulumi.dynamic.DiffResult> {
        return {
            changes:
                olds.kubeconfig !== news.kubeconfig ||
                olds.timeoutSeconds !== news.timeoutSeconds ||
                olds.revision !== news.revision ||
                JSON.stringify(olds.objects) !== JSON.stringify(news.objects),
        };
    }

    async update(_id: string, _olds: FluxReadyInputs, news: FluxReadyInputs): Promise<pulumi.dynamic.UpdateResult<FluxReadyInputs>> {
        await this.wait(news);
        return { outs: news };
    }

    private async wait(inputs: FluxReadyInputs): Promise<void> {
        const api = await readinessApi(inputs.kubeconfig);
        await waitForFlux(api, inputs.objects, {
            timeoutMs: inputs.timeoutSeconds * 1000,
            pollMs: POLL_MS,
            log: (line) => console.log(`waiting for Flux: ${line}`),
        });
    }
}
