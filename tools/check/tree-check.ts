import * as fs from "fs";
import * as path from "path";
import { parseAllDocuments } from "yaml";
import { buildEnvironment, BuiltObject, EnvironmentBuild, type Finding, inputFiles, sharedKustomize } from "../../lib/flux-build";
import { LocatedManifest, Manifest, normaliseRepoPath, PLATFORM_SECRET_NAME, readManifests, yamlFilesUnder } from "../../lib/gitops-tree";
import { isRemote, Kustomize } from "../../lib/kustomize";
import {
    DEFAULT_FLUX_VERSION,
    DEFAULT_OPERATOR_VERSION,
    defaultSyncPath,
    FLUX_DEFAULT_COMPONENTS,
    KIND_CLUSTER_DEFAULTS,
    PROJECT,
    type Tier,
    tierOf,
} from "../../lib/project";
import { type FluxServedApis, fluxReleaseFor, fluxReleaseProblem, fluxVersionProblem, productionPinProblem } from "../../lib/flux-apis";
import { configString, configValue, listStacks, readStackDocument, stackFile } from "../../lib/stack-files";
import { apiVerdict } from "./deprecated-apis";
import { loadCrdSchemas } from "./crd-schemas";
import { knownFields, unknownFields } from "./known-fields";
import { readFluxServedApis } from "../schemas/vendored";
import { ENVIRONMENTS, REPO_ROOT } from "../../lib/project";
import { folderAt, releaseTags, selectedRelease } from "../../lib/releases";

// The offline check of the tree Flux syncs (clusters/ and platform/) and of the stacks that point at it.
// Every finding names the file, the object and the field, so a merge request shows where to look.

export type { Finding };

export function formatFinding(f: Finding): string {
    return `${f.severity.padEnd(7)} ${[f.file, f.object, f.field].filter(Boolean).join(": ")}: ${f.message}`;
}

/** One parsed manifest and where it came from. */
type Located = LocatedManifest;

/** Validates a manifest against its schema: problems, or undefined when no schema is known for it. */
/**
 * The schema problems of a manifest: none, a list, or undefined when no schema of its API group is
 * known (the object is then reported as not validated, never passed silently).
 */
export type SchemaValidator = (m: Manifest) => { field: string; message: string }[] | undefined;

const FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io/";
const isFluxKustomization = (m: Manifest) => m.kind === "Kustomization" && (m.apiVersion ?? "").startsWith(FLUX_KUSTOMIZATION);
const isKustomizeConfig = (m: Manifest) => (m.apiVersion ?? "").startsWith("kustomize.config.k8s.io/");

/** Orders Kubernetes API versions as they mature: v1alpha1 < v1beta2 < v1 < v2beta1 < v2. */
function versionRank(version: string): number {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(version);
    if (!m) return -1;
    const stage = m[2] === "alpha" ? 0 : m[2] === "beta" ? 1 : 2;
    return Number(m[1]) * 10_000 + stage * 1_000 + Number(m[3] ?? 0);
}

export { fluxReleaseFor };

/** Why a Flux release does not serve an object's API, or undefined when it does (or the API is not Flux's). */
export function fluxApiProblem(apiVersion: string, kind: string, release: string, apis: FluxServedApis): string | undefined {
    const [group, version] = apiVersion.split("/");
    const served = apis.releases[release]?.[group ?? ""]?.[kind];
    if (!group || !version || !served || served.includes(version)) return undefined;
    // Only versions some Flux release served: anything else is the schema check's to report.
    const everServed = Object.values(apis.releases).some((r) => r[group]?.[kind]?.includes(version));
    if (!everServed) return undefined;
    const preferred = [...served].sort((a, b) => versionRank(b) - versionRank(a))[0];
    return `Flux ${release} no longer serves ${apiVersion} ${kind} (it serves ${served.join(", ")}). Fix: use ${group}/${preferred}`;
}

function describe(m: Manifest): string {
    const ns = m.metadata?.namespace;
    return `${m.kind} ${ns ? `${ns}/` : ""}${m.metadata?.name ?? "(no name)"}`;
}

/** `/spec/dependsOn/0/name` → `spec.dependsOn[0].name`. */
export function fieldPath(pointer: string): string {
    return pointer
        .split("/")
        .filter(Boolean)
        .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), "");
}

// Masterminds/semver v3 (constraints.go), which Flux uses for OCIRepository and HelmRelease ranges, as it
// is written: `NewConstraint` rewrites hyphen ranges to `>= a, <= b`, splits on `||`, and refuses any part
// `validConstraintRegex` does not match whole. The character class `[0-9|x|X|\*]` is Masterminds' own.
const CV = String.raw`v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?`;
const OPS = String.raw`=||!=|>|<|>=|=>|<=|=<|~|~>|\^`;
const VALID_CONSTRAINT = new RegExp(String.raw`^(\s*(${OPS})\s*(${CV})\s*)((?:\s+|,\s*)(${OPS})\s*(${CV})\s*)*$`);
const HYPHEN_RANGE = new RegExp(String.raw`\s*(${CV})\s+-\s+(${CV})\s*`, "g");

/** Why Masterminds would refuse a version constraint, or undefined when it parses it. */
export function rangeProblem(range: string): string | undefined {
    const rewritten = range.replace(HYPHEN_RANGE, (_m, from: string, ...rest: string[]) => `>= ${from}, <= ${rest[9] ?? ""}`);
    const bad = rewritten.split("||").find((part) => !VALID_CONSTRAINT.test(part));
    if (bad === undefined) return undefined;
    const why = bad.trim() === "" ? (range.trim() === "" ? "is empty" : "has an empty alternative around '||'") : `has the improper constraint '${bad.trim()}'`;
    return `'${range}' is not a valid semver range (Masterminds syntax): it ${why}. Fix: e.g. '1.2.x', '~1.2.0' or '>=1.2.0 <2.0.0'`;
}

export { KUSTOMIZE_LIMITS } from "../../lib/kustomize";

/**
 * What the bench times without kubectl: each folder's files as they are (no kustomization applied), the
 * way Flux's generator reads a folder without a kustomization.yaml.
 */
const filesOnly: Kustomize = (dir) => ({
    manifests: yamlFilesUnder(dir, "").flatMap((f) => {
        try {
            return readManifests(path.join(dir, f)).filter((m) => !(m.apiVersion ?? "").startsWith("kustomize.config.k8s.io/"));
        } catch {
            return [];
        }
    }),
});

interface StackView {
    name: string;
    file: string;
    syncPath: string;
    kubernetesVersion: string;
    /** The stack's `flux.version`: an exact version or a range. */
    fluxVersion: string;
    /** The controllers its FluxInstance installs. */
    components: string[];
    /** The flux-operator chart it installs. */
    operatorVersion: string;
    tier: Tier;
}

function readStacks(root: string, findings: Finding[]): StackView[] {
    return listStacks(root).flatMap((name) => {
        const file = stackFile(name);
        const doc = readStackDocument(root, name);
        if (doc.errors.length > 0) {
            findings.push({ severity: "error", file, message: `is not valid YAML: ${(doc.errors[0]?.message ?? "").split("\n")[0]}` });
            return [];
        }
        const environment = configString(doc, "environment") ?? "";
        const cluster = (configValue(doc, "cluster") ?? {}) as { backend?: string; nodeImage?: string; kubernetesVersion?: string };
        const syncPath = normaliseRepoPath(configString(doc, "sync.path") ?? defaultSyncPath(environment));
        if (!fs.existsSync(path.join(root, syncPath))) {
            findings.push({
                severity: "error",
                file,
                field: `${PROJECT}:sync.path`,
                message: `the root sync path '${syncPath}' does not exist. Fix: create it or correct sync.path`,
            });
            return [];
        }
        const kubernetesVersion = cluster.backend === "eks" ? String(cluster.kubernetesVersion ?? "") : (cluster.nodeImage ?? KIND_CLUSTER_DEFAULTS.nodeImage);
        const flux = (configValue(doc, "flux") ?? {}) as { version?: unknown; components?: unknown; operatorVersion?: unknown };
        // The program refuses a non-string version with its own message; here it is simply the default.
        const fluxVersion = typeof flux.version === "string" ? flux.version : DEFAULT_FLUX_VERSION;
        const components = Array.isArray(flux.components) ? flux.components.map(String) : [...FLUX_DEFAULT_COMPONENTS];
        const operatorVersion = typeof flux.operatorVersion === "string" ? flux.operatorVersion : DEFAULT_OPERATOR_VERSION;
        return [{ name, file, syncPath, kubernetesVersion, fluxVersion, components, operatorVersion, tier: tierOf(environment) }];
    });
}

type Ref = { kind?: string; name?: string; namespace?: string };

function checkReferences(cluster: string, set: Located[], findings: Finding[]): void {
    // (set: what the environment applies, each object traced to its file)
    const key = (kind: string, ns: string | undefined, name: string) => `${kind}/${ns ?? ""}/${name}`;
    // The FluxInstance creates the root source and Kustomization; they are in no file.
    const present = new Set([key("GitRepository", "flux-system", "flux-system"), key("Kustomization", "flux-system", "flux-system")]);
    for (const { manifest: m } of set) present.add(key(m.kind ?? "", m.metadata?.namespace, m.metadata?.name ?? ""));

    const expect = (l: Located, field: string, ref: Ref | undefined, kind: string | undefined) => {
        if (!ref?.name || !kind) return;
        const ns = ref.namespace ?? l.manifest.metadata?.namespace;
        if (!present.has(key(kind, ns, ref.name))) {
            findings.push({
                severity: "error",
                file: l.file,
                object: describe(l.manifest),
                field,
                message: `no ${kind} ${ns ? `${ns}/` : ""}${ref.name} in what ${cluster} syncs. Fix: correct the name or add the object`,
            });
        }
    };
    for (const l of set) {
        const spec = (l.manifest.spec ?? {}) as Record<string, unknown>;
        const dependsOn = (spec.dependsOn as Ref[] | undefined) ?? [];
        if (isFluxKustomization(l.manifest)) {
            const source = spec.sourceRef as Ref | undefined;
            expect(l, "spec.sourceRef.name", source, source?.kind);
            dependsOn.forEach((d, i) => expect(l, `spec.dependsOn[${i}].name`, d, "Kustomization"));
        } else if (l.manifest.kind === "HelmRelease") {
            const chartSource = (spec.chart as { spec?: { sourceRef?: Ref } } | undefined)?.spec?.sourceRef as Ref | undefined;
            expect(l, "spec.chart.spec.sourceRef.name", chartSource, chartSource?.kind);
            const chartRef = spec.chartRef as Ref | undefined;
            expect(l, "spec.chartRef.name", chartRef, chartRef?.kind);
            // ConfigMaps only: a Secret may rightly come from outside Git (sealed, external, SOPS-decrypted).
            ((spec.valuesFrom as (Ref & { optional?: boolean })[] | undefined) ?? []).forEach((v, i) => {
                if (v.kind === "ConfigMap" && !v.optional) expect(l, `spec.valuesFrom[${i}].name`, { name: v.name }, "ConfigMap");
            });
            dependsOn.forEach((d, i) => expect(l, `spec.dependsOn[${i}].name`, d, "HelmRelease"));
        }
        // A Secret may rightly come from outside Git (sealed, external, SOPS-decrypted, or the ones the stack
        // creates), so one the tree lacks is a warning: the object stays not Ready until it exists.
        const secretRef = spec.secretRef as Ref | undefined;
        const ns = l.manifest.metadata?.namespace;
        if (
            secretRef?.name &&
            (l.manifest.apiVersion ?? "").includes(".toolkit.fluxcd.io/") &&
            !present.has(key("Secret", ns, secretRef.name)) &&
            !STACK_SECRETS.has(`${ns ?? "default"}/${secretRef.name}`)
        ) {
            findings.push({
                severity: "warning",
                file: l.file,
                object: describe(l.manifest),
                field: "spec.secretRef.name",
                message: `no Secret ${ns ? `${ns}/` : ""}${secretRef.name} in what ${cluster} syncs, nor one the stack creates: it stays not Ready until that Secret exists. Fix: correct the name, add the Secret (sealed or SOPS-encrypted), or make sure something else creates it`,
            });
        }
    }
}

/** The Secrets Pulumi creates in the cluster (components/platform-repository-secret.ts, the root sync's pull secret). */
const STACK_SECRETS = new Set([`flux-system/${PLATFORM_SECRET_NAME}`, "flux-system/flux-system"]);

/**
 * A `dependsOn` cycle among Kustomizations or among HelmReleases: neither controller ever reconciles one
 * (each waits for the other to be Ready), and `pulumi up` would sit out its whole readiness wait.
 */
function checkCycles(set: Located[], findings: Finding[]): void {
    for (const kind of ["Kustomization", "HelmRelease"]) {
        const nodes = set.filter((l) => l.manifest.kind === kind && (l.manifest.apiVersion ?? "").includes(".toolkit.fluxcd.io/"));
        const id = (ns: string | undefined, name: string | undefined) => `${ns ?? "default"}/${name}`;
        const byId = new Map(nodes.map((l) => [id(l.manifest.metadata?.namespace, l.manifest.metadata?.name), l]));
        const edges = (l: Located) =>
            (((l.manifest.spec ?? {}) as { dependsOn?: Ref[] }).dependsOn ?? [])
                .map((d) => id(d.namespace ?? l.manifest.metadata?.namespace, d.name))
                .filter((d) => byId.has(d));
        const state = new Map<string, "open" | "done">();
        const reported = new Set<string>();
        const visit = (n: string, trail: string[]) => {
            if (state.get(n) === "done") return;
            if (state.get(n) === "open") {
                const cycle = trail.slice(trail.indexOf(n));
                const key = [...cycle].sort().join(",");
                if (reported.has(key)) return;
                reported.add(key);
                const first = byId.get(n)!;
                findings.push({
                    severity: "error",
                    file: first.file,
                    object: describe(first.manifest),
                    field: "spec.dependsOn",
                    message: `is part of a dependsOn cycle (${[...cycle, n].join(" -> ")}): Flux never reconciles any of them. Fix: remove one of the dependencies`,
                });
                return;
            }
            state.set(n, "open");
            for (const next of edges(byId.get(n)!)) visit(next, [...trail, n]);
            state.set(n, "done");
        };
        for (const n of byId.keys()) visit(n, []);
    }
}

/**
 * What the FluxInstance owns: its root sync's GitRepository and Kustomization, both `flux-system` in
 * `flux-system` (flux-operator internal/builder/templates.go). An object of the tree named the same is
 * applied over them, and the root sync is no longer what the stack says.
 */
function checkReservedNames(cluster: string, set: Located[], findings: Finding[]): void {
    for (const l of set) {
        const m = l.manifest;
        const owned =
            ["GitRepository", "OCIRepository", "Bucket", "Kustomization"].includes(m.kind ?? "") && (m.apiVersion ?? "").includes(".toolkit.fluxcd.io/");
        if (owned && m.metadata?.name === "flux-system" && (m.metadata.namespace ?? "default") === "flux-system") {
            findings.push({
                severity: "error",
                file: l.file,
                object: describe(m),
                field: "metadata.name",
                message: `is the name of the root sync the FluxInstance owns: what ${cluster} syncs would overwrite it. Fix: rename it`,
            });
        }
    }
}

/**
 * A layer is Ready once applied unless it waits: kustomize-controller only health-checks what it applied
 * with `wait: true` (default false) or `healthChecks` (fluxcd/kustomize-controller api/v1/kustomization_types.go). Without
 * either, `pulumi up`'s readiness gate and every layer that dependsOn it go ahead before anything runs.
 */
function checkLayersWait(set: Located[], findings: Finding[]): void {
    for (const l of set) {
        const spec = l.manifest.spec ?? {};
        if (!isFluxKustomization(l.manifest)) continue;
        const waits = spec["wait"] === true || (Array.isArray(spec["healthChecks"]) && spec["healthChecks"].length > 0);
        if (waits && spec["timeout"] === undefined) {
            // The timeout defaults to the interval (same file): an hourly layer holds a failing health
            // check for an hour, past the readiness gate of pulumi up, before Flux itself says so.
            findings.push({
                severity: "warning",
                file: l.file,
                object: describe(l.manifest),
                field: "spec.timeout",
                message: `is not set, so its health checks wait as long as its interval (${String(spec["interval"])}) before Flux reports the failure. Fix: set spec.timeout, shorter than flux.readyTimeout`,
            });
        }
        if (waits) continue;
        findings.push({
            severity: "warning",
            file: l.file,
            object: describe(l.manifest),
            field: "spec.wait",
            message:
                "is not set, and no healthChecks either: Ready will mean applied, not running, so the readiness gate of pulumi up and the layers that dependsOn it do not wait for it. Fix: set spec.wait: true and a spec.timeout",
        });
    }
}

/**
 * Development, staging and production run one platform at three points of its promotion, differing by
 * small patches (replicas, a host name, the source's ref). A layer one of them has and another lacks is
 * either on its way (fine for a while) or forgotten: production never gets what staging tested. Said as
 * a warning, on the layer, naming where it is missing.
 */
function checkSameLayers(envs: Map<string, EnvironmentBuild>, findings: Finding[]): void {
    // The Kustomizations each declares, built or not (one that does not build is reported on its own).
    const layersOf = (env: EnvironmentBuild) =>
        new Map(
            env.objects
                .filter((o) => isFluxKustomization(o.manifest))
                .map((o) => [`${o.manifest.metadata?.namespace ?? "default"}/${o.manifest.metadata?.name}`, o]),
        );
    const all = ENVIRONMENTS.flatMap((name) => {
        const env = envs.get(`clusters/${name}`);
        return env ? [{ name: name as string, layers: layersOf(env) }] : [];
    });
    if (all.length < 2) return;
    const reported = new Set<string>();
    for (const { layers } of all) {
        for (const [id, layer] of layers) {
            if (reported.has(id)) continue;
            const missing = all.filter((e) => !e.layers.has(id)).map((e) => e.name);
            if (missing.length === 0) continue;
            reported.add(id);
            const having = all.filter((e) => e.layers.has(id)).map((e) => e.name);
            findings.push({
                severity: "warning",
                file: layer.file,
                object: `Kustomization ${id}`,
                message:
                    `is a layer of ${having.join(" and ")} but not of ${missing.join(" and ")}: environments should differ by patches, not by layers. ` +
                    `Fix: add it to clusters/${missing[0]} once it is ready to go there, or remove it`,
            });
        }
    }
}

/**
 * The teardown deletes layers that depend on others first, and those labelled providers last
 * (components/flux-teardown-provider.ts). A layer using custom resources whose CRD another layer
 * applies, with neither a dependsOn path to it nor the label on it, may outlive its CRD and controller:
 * its objects' finalizers would then wait for a controller that is gone. Only CRDs the tree applies as
 * objects are seen; a chart's are not rendered here.
 */
function checkProviders(set: BuiltObject[], findings: Finding[]): void {
    const layers = new Map(
        set.filter((b) => isFluxKustomization(b.manifest)).map((b) => [`${b.manifest.metadata?.namespace ?? "default"}/${b.manifest.metadata?.name}`, b]),
    );
    const needs = (from: string, to: string, seen = new Set<string>()): boolean => {
        if (from === to) return true;
        if (seen.has(from)) return false;
        seen.add(from);
        const m = layers.get(from)?.manifest;
        const ns = m?.metadata?.namespace ?? "default";
        return ((m?.spec?.["dependsOn"] as { name?: string; namespace?: string }[] | undefined) ?? []).some((d) =>
            needs(`${d.namespace ?? ns}/${d.name}`, to, seen),
        );
    };
    const crdLayer = new Map<string, string>();
    for (const b of set) {
        const group = b.manifest.kind === "CustomResourceDefinition" ? b.manifest.spec?.["group"] : undefined;
        if (typeof group === "string" && layers.has(b.appliedBy)) crdLayer.set(group, b.appliedBy);
    }
    const reported = new Set<string>();
    for (const b of set) {
        const group = (b.manifest.apiVersion ?? "").split("/")[0] ?? "";
        const provider = crdLayer.get(group);
        if (!provider || !layers.has(b.appliedBy) || needs(b.appliedBy, provider)) continue;
        const p = layers.get(provider)!;
        if (p.manifest.metadata?.labels?.["gitops-platform.io/teardown"] === "provider" || reported.has(`${b.appliedBy}>${provider}`)) continue;
        reported.add(`${b.appliedBy}>${provider}`);
        findings.push({
            severity: "warning",
            file: p.file,
            object: describe(p.manifest),
            field: "metadata.labels",
            message:
                `applies the CRDs of ${group}, which ${b.appliedBy} uses (${describe(b.manifest)}) without a dependsOn on it: the teardown may delete it first, and leave those objects' finalizers waiting. ` +
                `Fix: add dependsOn: [{name: ${provider.split("/")[1]}}] to ${b.appliedBy}, or label this layer gitops-platform.io/teardown: provider`,
        });
    }
}

/**
 * An environment fed by the platform's OCI artifact runs `platform/` of a release tag (publish-platform
 * pushes the tagged commit's platform/), not of the working tree: a layer path moved in the same merge
 * request breaks it on merge. Judged on the tags this clone has; a clone without any says nothing.
 */
function checkReleasedPaths(root: string, cluster: string, set: Located[], tags: string[], findings: Finding[]): void {
    if (tags.length === 0) return;
    for (const source of set.filter((l) => l.manifest.kind === "OCIRepository" && (l.manifest.apiVersion ?? "").startsWith("source.toolkit.fluxcd.io/"))) {
        const ref = (source.manifest.spec?.["ref"] ?? {}) as Record<string, string>;
        const namespace = source.manifest.metadata?.namespace ?? "default";
        const layers = set.filter((l) => {
            const sourceRef = (l.manifest.spec?.["sourceRef"] ?? {}) as { kind?: string; name?: string; namespace?: string };
            return (
                isFluxKustomization(l.manifest) &&
                sourceRef.kind === "OCIRepository" &&
                sourceRef.name === source.manifest.metadata?.name &&
                (sourceRef.namespace ?? l.manifest.metadata?.namespace ?? "default") === namespace
            );
        });
        if (layers.length === 0) continue;
        const release = selectedRelease(ref, tags);
        const wanted = ref["tag"] ? `tag ${ref["tag"]}` : ref["semver"] ? `range ${ref["semver"]}` : "ref";
        if (!release) {
            findings.push({
                severity: "warning",
                file: source.file,
                object: describe(source.manifest),
                field: "spec.ref",
                message: `no release tag of this clone matches its ${wanted}, so ${cluster}'s layer paths were judged against the working tree only. Fix: git fetch --tags`,
            });
            continue;
        }
        for (const l of layers) {
            const written = l.manifest.spec?.["path"];
            if (typeof written !== "string" || folderAt(root, release, written)) continue;
            findings.push({
                severity: "error",
                file: l.file,
                object: describe(l.manifest),
                field: "spec.path",
                message:
                    `'${written}' is not in release ${release} (what its ${wanted} selects), which ${cluster} pulls: Flux fails this layer as soon as this merges. ` +
                    `Fix: release the change to platform/ first (tag it; publish-platform pushes it), then move ${cluster} to the new path in a later merge request`,
            });
        }
    }
}

/** Kinds whose controller is not among Flux's defaults: the FluxInstance must install it. */
const NEEDS_COMPONENT: Record<string, string> = { ArtifactGenerator: "source-watcher", ExternalArtifact: "source-watcher" };

export interface CheckResult {
    findings: Finding[];
    files: number;
    manifests: number;
    /** Objects of an API group no schema here knows (e.g. a vendor's CRD): parsed, not validated. */
    unvalidated: number;
    /** Which they are: `Kind namespace/name (apiVersion) in file`. */
    notValidated: string[];
}

/** Checks the tree under `root`. Pure but for reading files and running `kubectl kustomize`. */
export function checkTree(
    root: string,
    validate: SchemaValidator,
    options: { kustomize?: boolean; /** @default schemas/flux-served-apis.json */ fluxApis?: FluxServedApis } = {},
): CheckResult {
    const findings: Finding[] = [];
    const files = [...yamlFilesUnder(root, "clusters"), ...yamlFilesUnder(root, "platform")];
    const byFile = new Map<string, Located[]>();
    let unvalidated = 0;
    const notValidated: string[] = [];

    for (const file of files) {
        const located: Located[] = [];
        parseAllDocuments(fs.readFileSync(path.join(root, file), "utf8")).forEach((doc, i) => {
            if (doc.errors.length > 0) {
                findings.push({ severity: "error", file, message: `document ${i + 1} is not valid YAML: ${(doc.errors[0]?.message ?? "").split("\n")[0]}` });
                return;
            }
            let value: unknown;
            try {
                value = doc.toJS();
            } catch (e) {
                // e.g. a YAML alias bomb ("Excessive alias count"): a finding, never a crash.
                findings.push({ severity: "error", file, message: `document ${i + 1} cannot be read: ${(e as Error).message}` });
                return;
            }
            if (value !== null && typeof value === "object") located.push({ file, manifest: value as Manifest });
        });
        byFile.set(file, located);
    }

    // A kustomization that pulls from the network cannot be checked offline, nor built by a cluster that
    // cannot reach the source: each remote entry is a finding, and that kustomization is not built.
    const remote = new Set<string>();
    for (const [file, located] of byFile) {
        if (path.posix.basename(file) !== "kustomization.yaml") continue;
        for (const { manifest } of located) {
            for (const field of ["resources", "components", "bases"]) {
                const entries = (manifest as Record<string, unknown>)[field];
                if (!Array.isArray(entries)) continue;
                entries.forEach((entry, i) => {
                    if (typeof entry === "string" && isRemote(entry)) {
                        remote.add(path.posix.dirname(file));
                        findings.push({
                            severity: "error",
                            file,
                            field: `${field}[${i}]`,
                            message: `'${entry}' is fetched from the network when built. Fix: copy it into the repository and list the local path`,
                        });
                    }
                });
            }
        }
    }

    // Every kustomization builds, whether or not a Flux Kustomization reaches it yet (kustomize's whole reason).
    const kustomize = options.kustomize === false ? filesOnly : sharedKustomize();
    const failedBuilds = new Set<string>();
    if (options.kustomize !== false) {
        const dirs = new Set(files.filter((f) => path.posix.basename(f) === "kustomization.yaml").map((f) => path.posix.dirname(f)));
        for (const dir of [...dirs].filter((d) => !remote.has(d))) {
            const result = kustomize(path.join(root, dir));
            if ("manifests" in result) continue;
            if (result.problem === "missing") {
                findings.push({
                    severity: "error",
                    file: dir,
                    message:
                        "kubectl is not on PATH, so kustomizations cannot be built. Install kubectl 1.27 or later (it bundles kustomize v5): https://kubernetes.io/docs/tasks/tools/",
                });
                break;
            }
            failedBuilds.add(dir);
            findings.push({
                severity: "error",
                file: `${dir}/kustomization.yaml`,
                message: `kubectl kustomize fails: ${result.problem.split(`${root}/`).join("")}`,
            });
        }
    }

    // What Flux applies, per cluster folder (and per root sync path a stack names): lib/flux-build.ts.
    const clusterDirs = fs.existsSync(path.join(root, "clusters"))
        ? fs
              .readdirSync(path.join(root, "clusters"), { withFileTypes: true })
              .filter((e) => e.isDirectory())
              .map((e) => `clusters/${e.name}`)
        : [];
    const stacks = readStacks(root, findings);
    const envs = new Map<string, EnvironmentBuild>();
    for (const dir of [...clusterDirs, ...stacks.map((st) => st.syncPath)]) {
        if (envs.has(dir) || remote.has(dir)) continue;
        const env = buildEnvironment(root, dir, { kustomize });
        envs.set(dir, env);
        // A folder whose own build fails is reported once, above, with kustomize's words.
        const reported = [...failedBuilds, ...remote];
        findings.push(...env.findings.filter((f) => !reported.some((d) => f.message.startsWith(`kustomize build of ${d} fails`))));
        for (const d of env.unbuilt) failedBuilds.add(d);
    }

    // Objects are judged as Flux applies them: built, patched and substituted, each traced to its file. A
    // patch file or a kustomize configuration is an input, judged only through what it produces.
    const judged = new Set<string>();
    const appliedFiles = new Set<string>();
    /** A field an overlay's patch file sets names that file: it is where to fix it. */
    const whereSet = (l: Located, field: string): string => {
        const patchedBy = (l as { patchedBy?: string[] }).patchedBy ?? [];
        for (const file of patchedBy.filter((p) => !p.includes(": spec.patches["))) {
            const patch = (byFile.get(file) ?? []).map((x) => x.manifest)[0] ?? readManifests(path.join(root, file))[0];
            const parts = field
                .replace(/\[(\d+)\]/g, ".$1")
                .split(".")
                .filter(Boolean);
            let v: unknown = patch;
            for (const p of parts) v = v && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
            if (v !== undefined) return ` (set by the patch ${file})`;
        }
        return "";
    };
    const judge = (l: Located) => {
        appliedFiles.add(l.file);
        const m = l.manifest;
        const key = `${l.file}\u0000${JSON.stringify(m)}`;
        if (judged.has(key)) return;
        judged.add(key);
        const object = describe(m);
        if (!m.apiVersion || !m.kind || !m.metadata?.name) {
            findings.push({ severity: "error", file: l.file, object, message: "needs apiVersion, kind and metadata.name" });
            return;
        }
        const problems = validate(m);
        if (problems === undefined) {
            unvalidated++;
            notValidated.push(`${object} (${m.apiVersion}) in ${l.file}`);
        }
        for (const problem of problems ?? []) {
            findings.push({ severity: "error", file: l.file, object, field: problem.field, message: `${problem.message}${whereSet(l, problem.field)}` });
        }
        const spec = (m.spec ?? {}) as Record<string, unknown>;
        if (m.kind === "OCIRepository") {
            const range = (spec.ref as { semver?: unknown } | undefined)?.semver;
            const problem = typeof range === "string" ? rangeProblem(range) : undefined;
            if (problem) findings.push({ severity: "error", file: l.file, object, field: "spec.ref.semver", message: problem });
        }
        if (m.kind === "HelmRelease") {
            const version = (spec.chart as { spec?: { version?: unknown } } | undefined)?.spec?.version;
            const problem = typeof version === "string" ? rangeProblem(version) : undefined;
            if (problem)
                findings.push({
                    severity: "error",
                    file: l.file,
                    object,
                    field: "spec.chart.spec.version",
                    message: `${problem}${whereSet(l, "spec.chart.spec.version")}`,
                });
        }
    };
    checkSameLayers(envs, findings);
    const tags = releaseTags(root);
    for (const [dir, env] of envs) {
        for (const o of env.objects) judge(o);
        checkReferences(dir, env.objects, findings);
        checkCycles(env.objects, findings);
        checkReservedNames(dir, env.objects, findings);
        checkLayersWait(env.objects, findings);
        checkProviders(env.objects, findings);
        checkReleasedPaths(root, dir, env.objects, tags, findings);
    }
    // A file no environment applies is still parsed and judged as written (it may be applied one day)...
    const inputs = inputFiles(root, [...new Set(files.map((f) => path.posix.dirname(f)))]);
    const unapplied = [...byFile.entries()].filter(([file]) => !appliedFiles.has(file) && !inputs.has(file));
    for (const [, located] of unapplied) for (const l of located) if (!isKustomizeConfig(l.manifest)) judge(l);
    // (Where a folder did not build, its files are judged as written, but not called unused.)
    const notBuilt = [...failedBuilds, ...remote];

    // The API gate judges what each stack's Flux applies, against that stack's Kubernetes and Flux.
    const fluxApis = options.fluxApis ?? readFluxServedApis();
    for (const stack of stacks) {
        const set = envs.get(stack.syncPath)?.objects ?? [];
        const release = fluxReleaseFor(stack.fluxVersion, fluxApis);
        // Every rule the program applies to the version, from the one place both read (lib/flux-apis.ts).
        const rangeProblemOf = fluxVersionProblem(stack.fluxVersion);
        const pin = stack.tier === "production" ? productionPinProblem(stack.fluxVersion) : undefined;
        const versionProblem = rangeProblemOf
            ? { key: "flux.version", message: rangeProblemOf }
            : pin
              ? { key: "flux.version", message: pin }
              : fluxReleaseProblem(stack.fluxVersion, stack.operatorVersion, fluxApis);
        if (versionProblem) findings.push({ severity: "error", file: stack.file, field: `${PROJECT}:${versionProblem.key}`, message: versionProblem.message });
        for (const { file, manifest } of set) {
            const needs = NEEDS_COMPONENT[manifest.kind ?? ""];
            // ArtifactGenerator is source.extensions.fluxcd.io, ExternalArtifact source.toolkit.fluxcd.io (fluxcd/source-watcher api/).
            if (needs && /\.(toolkit|extensions)\.fluxcd\.io\//.test(manifest.apiVersion ?? "") && !stack.components.includes(needs)) {
                findings.push({
                    severity: "error",
                    file,
                    object: describe(manifest),
                    message: `stack ${stack.name}: ${manifest.kind} needs ${needs}, which this stack's flux.components does not install. Fix: add ${needs} to flux.components in ${stack.file}`,
                });
            }
            const fluxProblem = release ? fluxApiProblem(manifest.apiVersion ?? "", manifest.kind ?? "", release, fluxApis) : undefined;
            if (fluxProblem) {
                findings.push({ severity: "error", file, object: describe(manifest), field: "apiVersion", message: `stack ${stack.name}: ${fluxProblem}` });
            }
            const verdict = apiVerdict(manifest.apiVersion ?? "", manifest.kind ?? "", stack.kubernetesVersion);
            if (verdict.status === "ok") continue;
            findings.push({
                severity: verdict.status === "removed" ? "error" : "warning",
                file,
                object: describe(manifest),
                field: "apiVersion",
                message: `stack ${stack.name}: ${verdict.message}`,
            });
        }
    }

    // ...and a warning: usually a forgotten entry in a kustomization.yaml. Only judged where folders were built.
    if (options.kustomize !== false) {
        for (const [file, located] of unapplied) {
            const objects = located.filter((l) => !isKustomizeConfig(l.manifest));
            if (objects.length === 0 || notBuilt.some((d) => file.startsWith(`${d}/`))) continue;
            findings.push({
                severity: "warning",
                file,
                message: "no stack's Flux applies anything in this file. Fix: list it in its folder's kustomization.yaml, or delete it",
            });
        }
    }

    // Platform files are synced by several clusters; say each thing once.
    const unique = new Map(findings.map((f) => [formatFinding(f), f]));
    // What was judged: every object Flux applies (wherever in the repository its file is), and the rest as written.
    return {
        findings: [...unique.values()],
        files: new Set([...files, ...appliedFiles]).size,
        manifests: judged.size,
        unvalidated,
        notValidated: [...new Set(notValidated)].sort(),
    };
}

/**
 * Schema validators for every apiVersion/kind in the tree: Flux kinds from @kubernetes-models/flux-cd
 * (generated from Flux's CRDs), Kubernetes kinds from kubernetes-models. Both are ES modules, hence the
 * dynamic import; this runs in Node, not in jest.
 */
export async function loadSchemaValidator(root: string, options: { /** A folder of CRDs (`--schemas`). */ schemas?: string } = {}): Promise<SchemaValidator> {
    const crds = options.schemas ? loadCrdSchemas(options.schemas) : undefined;
    // oxlint-disable-next-line typescript/no-implied-eval -- a real import() of ES modules, which a CommonJS build would turn into require
    const importEsm = new Function("specifier", "return import(specifier)") as (s: string) => Promise<Record<string, unknown>>;
    const modules = new Map<string, Record<string, unknown> | undefined>();
    const moduleFor = (apiVersion: string) => {
        const [group = "", version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
        if (group.endsWith(".toolkit.fluxcd.io")) return `@kubernetes-models/flux-cd/${group}/${version}`;
        if (group === "") return `kubernetes-models/${version}`;
        if (!group.includes(".") || group.endsWith(".k8s.io")) return `kubernetes-models/${group}/${version}`;
        return undefined;
    };
    // Every YAML file a Flux Kustomization may reach: a team's layers live anywhere in the repository.
    const kinds = new Map<string, { specifier: string; kind: string }>();
    for (const file of yamlFilesUnder(root, "").filter((f) => !/(^|\/)(node_modules|\.[^/]+)\//.test(f) && !f.startsWith("stacks/"))) {
        let docs;
        try {
            docs = parseAllDocuments(fs.readFileSync(path.join(root, file), "utf8"));
        } catch {
            continue;
        }
        for (const doc of docs) {
            let m: Manifest | null;
            try {
                m = doc.toJS() as Manifest | null;
            } catch {
                continue; // reported by checkTree
            }
            const apiVersion = m?.apiVersion;
            const specifier = apiVersion ? moduleFor(apiVersion) : undefined;
            if (!apiVersion || !specifier) continue;
            if (!modules.has(apiVersion)) modules.set(apiVersion, await importEsm(specifier).catch(() => undefined));
            if (m?.kind && /^[A-Z][A-Za-z0-9]*$/.test(m.kind) && modules.get(apiVersion)?.[m.kind])
                kinds.set(`${specifier}/${m.kind}`, { specifier, kind: m.kind });
        }
    }
    const fieldTrees = knownFields([...kinds.values()]);
    /** The versions of a known group the installed models serve, newest last; undefined for an unknown group. */
    const servedVersions = (group: string): string[] | undefined => {
        const base = group.endsWith(".toolkit.fluxcd.io")
            ? path.join(REPO_ROOT, "node_modules", "@kubernetes-models", "flux-cd", group)
            : group === "" || !group.includes(".") || group.endsWith(".k8s.io")
              ? path.join(REPO_ROOT, "node_modules", "kubernetes-models", group)
              : undefined;
        if (!base || !fs.existsSync(base)) return undefined;
        return fs
            .readdirSync(base, { withFileTypes: true })
            .filter((e) => e.isDirectory() && /^v\d/.test(e.name))
            .map((e) => e.name)
            .sort((a, b) => versionRank(a) - versionRank(b));
    };
    return (m) => {
        const apiVersion = m.apiVersion ?? "";
        const [group = "", version = ""] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
        const module = modules.get(apiVersion);
        const model = module?.[m.kind ?? ""] as (new (data: unknown) => { validate(): void }) | undefined;
        if (!model) {
            const served = servedVersions(group);
            if (!served) return crds?.(m);
            const where = group === "" ? "the core API" : group;
            return [
                module
                    ? { field: "kind", message: `${where} ${version} has no kind ${m.kind ?? ""}. Fix: check the spelling` }
                    : {
                          field: "apiVersion",
                          message: `${where} serves no version ${version}${served.length ? ` (known: ${served.join(", ")})` : ""}. Fix: use a served version, e.g. ${group ? `${group}/` : ""}${served.at(-1) ?? "v1"}`,
                      },
            ];
        }
        try {
            new model(m).validate();
            // Valid for the schema, which lets unknown fields through as the CRDs do: the API server would drop them.
            const tree = fieldTrees.get(`${moduleFor(apiVersion)}/${m.kind}`);
            return (tree ? unknownFields(m, tree) : []).map((field) => ({
                field,
                message: `is not a field of ${m.kind} ${apiVersion}: the API server would drop it without a word. Fix: check the spelling`,
            }));
        } catch (e) {
            const errors = (e as { errors?: { instancePath: string; message?: string; params?: Record<string, unknown> }[] }).errors;
            if (!errors) return [{ field: "", message: (e as Error).message }];
            return errors.map((err) => ({
                field: fieldPath(err.instancePath),
                message: `${err.message ?? "is invalid"}${err.params?.allowedValues ? ` (${(err.params.allowedValues as unknown[]).join(", ")})` : ""}`,
            }));
        }
    };
}
