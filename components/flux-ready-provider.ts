import type * as pulumi from "@pulumi/pulumi";
import type { FluxObjectRef } from "../lib/gitops-tree";
import { importClientNode, statusOf, withRetries } from "./kube-api";

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
    metadata?: { generation?: number };
    status?: { observedGeneration?: number; conditions?: Condition[] };
}

/** The one API call the wait makes. */
export interface ReadinessApi {
    /** The object, or undefined when it (or its kind, before Flux installed its CRDs) does not exist. */
    get(ref: FluxObjectRef): Promise<ObservedObject | undefined>;
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
 * Whether one object is Ready, by the conditions its controller wrote for its current generation. A
 * Kustomization whose source has no artifact yet says ArtifactFailed while it waits for it (the same
 * controller file): that is the source's failure, judged on the source.
 */
export function judge(ref: FluxObjectRef, object: ObservedObject | undefined): Verdict {
    if (!object) return { state: "missing" };
    const conditions = object.status?.conditions ?? [];
    const ready = conditions.find((c) => c.type === "Ready");
    const stalled = conditions.find((c) => c.type === "Stalled" && c.status === "True");
    const text = (c: Condition) => `Ready=${c.status ?? "Unknown"}${c.reason ? ` (${c.reason})` : ""}${c.message ? `: ${c.message}` : ""}`;
    if (stalled)
        return {
            state: "failed",
            why: `Stalled${stalled.reason ? ` (${stalled.reason})` : ""}: ${stalled.message ?? ready?.message ?? ""}`.trim(),
            stalled: true,
        };
    if (!ready) return { state: "waiting", why: "not reconciled yet (no Ready condition)" };
    const generation = object.metadata?.generation;
    const observed = ready.observedGeneration ?? object.status?.observedGeneration;
    if (generation !== undefined && observed !== undefined && observed < generation) {
        return { state: "waiting", why: `not reconciled since its last change (generation ${generation}, observed ${observed})` };
    }
    if (ready.status === "True") return { state: "ready" };
    const waiting =
        ready.status !== "False" || WAITING_REASONS.includes(ready.reason ?? "") || (ref.kind === "Kustomization" && ready.reason === "ArtifactFailed");
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
     * How long an object must stay failed before the wait stops (Stalled stops at once): Flux retries a
     * failed fetch or apply within seconds, so a blip in a cluster's first minute is not the verdict.
     */
    settleMs: number;
    /** How long one API request may take. @default 30000 */
    requestTimeoutMs?: number;
    log?: (line: string) => void;
}

const AGAIN = "The cluster and Flux are left as they are: fix the cause and run `pulumi up` again.";

/**
 * Waits until every object is Ready. `objects` come causes first (sources before the Kustomizations that
 * pull them, each layer before those that depend on it, the root sync and the FluxInstance last), so the
 * object an error names is the one to fix, not one waiting on it.
 */
export async function waitForFlux(api: ReadinessApi, objects: FluxObjectRef[], options: ReadinessOptions): Promise<void> {
    const log = options.log ?? (() => undefined);
    const deadline = Date.now() + options.timeoutMs;
    const retry = { deadline, pollMs: options.pollMs, requestTimeoutMs: options.requestTimeoutMs, log };
    const failingSince = new Map<string, { why: string; at: number }>();
    const lastSaid = new Map<string, string>();
    let last: Verdict[] | undefined;
    for (;;) {
        let verdicts: Verdict[];
        try {
            verdicts = await Promise.all(
                objects.map(async (r) => judge(r, await withRetries("Waiting for Flux, could not read", describeObject(r), () => api.get(r), retry))),
            );
        } catch (e) {
            // Out of time while looking: what was not Ready at the last look is the news, not the last request.
            if (last && Date.now() + options.pollMs > deadline) throw notReadyInTime(objects, last, options.timeoutMs);
            throw e;
        }
        verdicts = notApplied(objects, verdicts);
        last = verdicts;
        const now = Date.now();
        verdicts.forEach((v, i) => {
            const key = describeObject(objects[i]!);
            const said = v.state === "waiting" || v.state === "failed" ? v.why : v.state;
            if (lastSaid.get(key) !== said) log(`${key}: ${said}`);
            lastSaid.set(key, said);
            const since = failingSince.get(key);
            if (v.state !== "failed") failingSince.delete(key);
            else if (!since || since.why !== v.why) failingSince.set(key, { why: v.why, at: now });
        });
        if (verdicts.every((v) => v.state === "ready")) return;

        const failed = objects.findIndex((r, i) => {
            const v = verdicts[i]!;
            return v.state === "failed" && (v.stalled || now - (failingSince.get(describeObject(r))?.at ?? now) >= options.settleMs);
        });
        if (failed >= 0) {
            const r = objects[failed]!;
            const v = verdicts[failed] as { why: string };
            throw new Error(`Flux is not Ready: ${describeObject(r)}: ${v.why}. ${hintFor(r)} ${AGAIN}`);
        }
        if (Date.now() + options.pollMs > deadline) throw notReadyInTime(objects, verdicts, options.timeoutMs);
        await new Promise((resolve) => setTimeout(resolve, options.pollMs));
    }
}

/**
 * An object of the cluster folder that is missing while the root sync is Ready was not in the revision
 * Flux applied: the folder of this checkout has it, the branch Flux follows does not (not pushed yet).
 * Waiting longer would not bring it.
 */
function notApplied(objects: FluxObjectRef[], verdicts: Verdict[]): Verdict[] {
    const root = objects.findIndex((o) => o.kind === "Kustomization" && o.namespace === "flux-system" && o.name === "flux-system");
    if (root < 0 || verdicts[root]?.state !== "ready") return verdicts;
    return verdicts.map((v, i) =>
        v.state === "missing" && i < root
            ? {
                  state: "failed",
                  why: "does not exist, although the root sync is Ready: this checkout's cluster folder declares it, the revision Flux applied does not (push the branch Flux follows?)",
                  stalled: false,
              }
            : v,
    );
}

/** The timeout, naming the cause first: a failure, else something that exists but is not Ready, else the first missing. */
function notReadyInTime(objects: FluxObjectRef[], verdicts: Verdict[], timeoutMs: number): Error {
    const pick = (state: Verdict["state"]) => verdicts.findIndex((v) => v.state === state);
    const i = [pick("failed"), pick("waiting"), pick("missing")].find((n) => n >= 0) ?? 0;
    const r = objects[i]!;
    const v = verdicts[i]!;
    const why = v.state === "failed" || v.state === "waiting" ? v.why : "does not exist yet";
    const others = objects.filter((_, n) => n !== i && verdicts[n]!.state !== "ready").map(describeObject);
    return new Error(
        `Flux was not Ready within ${Math.round(timeoutMs / 1000)}s (flux.readyTimeout): ${describeObject(r)}: ${why}. ` +
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
    };
}

export interface FluxReadyInputs {
    kubeconfig: string;
    timeoutSeconds: number;
    objects: FluxObjectRef[];
    /** What Flux was asked to be (a digest of the FluxInstance): a change means waiting again. */
    revision: string;
}

/** How often the wait looks, and how long a failure must last to end it. */
const POLL_MS = 5_000;
const SETTLE_MS = 30_000;

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
            settleMs: SETTLE_MS,
            log: (line) => console.log(`waiting for Flux: ${line}`),
        });
    }
}
