import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as semver from "semver";
import { parseAllDocuments } from "yaml";
import { LocatedManifest, Manifest, normaliseRepoPath, parseManifests, syncedManifests, yamlFilesUnder } from "../../lib/gitops-tree";
import { DEFAULT_FLUX_VERSION, defaultSyncPath, KIND_CLUSTER_DEFAULTS, PROJECT } from "../../lib/project";
import { type FluxServedApis } from "../../lib/flux-apis";
import { configString, configValue, listStacks, readStackDocument, stackFile } from "../../lib/stack-files";
import { apiVerdict } from "./deprecated-apis";
import { readFluxServedApis } from "../schemas/vendored";
import { REPO_ROOT } from "../../lib/project";

// The offline check of the tree Flux syncs (clusters/ and platform/) and of the stacks that point at it.
// Every finding names the file, the object and the field, so a merge request shows where to look.

export interface Finding {
    severity: "error" | "warning";
    file: string;
    /** `Kind namespace/name`, when the finding is about one object. */
    object?: string;
    /** Dotted path of the field, e.g. `spec.dependsOn[0].name`. */
    field?: string;
    message: string;
}

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

/**
 * The Flux release flux-operator installs for a stack's `flux.version`: the newest it ships that the
 * range allows (Flux takes Masterminds ranges; commas are its "and").
 */
export function fluxReleaseFor(range: string, apis: FluxServedApis): string | undefined {
    return semver.maxSatisfying(Object.keys(apis.releases), range.replace(/,/g, " ")) ?? undefined;
}

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

/** A kustomization entry kustomize would fetch: a URL, a git remote, or a `host/org/repo` path with a ref. */
function isRemote(entry: string): boolean {
    return (
        /^[a-z][a-z0-9+.-]*:\/\//i.test(entry) ||
        /^git(@|::)/.test(entry) ||
        /^(github\.com|gitlab\.com|bitbucket\.org)\//.test(entry) ||
        /[?&]ref=/.test(entry)
    );
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

/** What one `kubectl kustomize` run gave: a reason it failed ("missing" without kubectl), or its output. */
type KustomizeResult = { problem: string } | { output: string };

/** kubectl's verdict by folder content: checking several copies of a tree builds each distinct folder once. */
const kustomizeCache = new Map<string, KustomizeResult>();

function folderDigest(full: string): string {
    const hash = createHash("sha256");
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            hash.update(e.name);
            if (e.isDirectory()) walk(path.join(dir, e.name));
            else hash.update(fs.readFileSync(path.join(dir, e.name)));
        }
    };
    walk(full);
    return hash.digest("hex");
}

/**
 * Limits of one `kubectl kustomize` run: trees of tens of MB build well within them. Memory is capped as
 * address space (`ulimit -v`, where the shell supports it): Go reserves about 1 GiB of it at start, so
 * the cap must stay well above that.
 */
export const KUSTOMIZE_LIMITS = { timeoutMs: 60_000, maxOutputBytes: 256 * 1024 * 1024, maxAddressSpaceBytes: 4 * 1024 * 1024 * 1024 };

/** Builds one kustomization. */
function kustomizeBuild(root: string, dir: string): KustomizeResult {
    const kib = Math.floor(KUSTOMIZE_LIMITS.maxAddressSpaceBytes / 1024);
    // sh sets the cap and becomes kubectl; a shell that cannot set it (macOS's for -v) runs kubectl uncapped.
    const capped = `if (ulimit -v ${kib}) 2>/dev/null; then ulimit -v ${kib}; fi; command -v kubectl >/dev/null || exit 127; exec kubectl "$@"`;
    const result = spawnSync("sh", ["-c", capped, "sh", "kustomize", path.join(root, dir)], {
        encoding: "utf8",
        timeout: KUSTOMIZE_LIMITS.timeoutMs,
        maxBuffer: KUSTOMIZE_LIMITS.maxOutputBytes,
        // The check is offline by contract: a fetch kustomize might still try goes to a closed local port.
        env: {
            ...process.env,
            HTTP_PROXY: "http://127.0.0.1:9",
            HTTPS_PROXY: "http://127.0.0.1:9",
            NO_PROXY: "",
            http_proxy: "",
            https_proxy: "",
            no_proxy: "",
        },
    });
    const code = (result.error as NodeJS.ErrnoException | undefined)?.code;
    if (code === "ENOENT" || result.status === 127) return { problem: "missing" };
    // Go's runtime, short of address space, dies with one of these (at start, or when the heap grows).
    if (result.status !== 0 && /out of memory|cannot allocate memory|failed to reserve/i.test(result.stderr ?? "")) {
        return { problem: `it needed more than ${KUSTOMIZE_LIMITS.maxAddressSpaceBytes / 1024 / 1024} MiB of memory` };
    }
    if (code === "ENOBUFS") return { problem: `its output is larger than ${KUSTOMIZE_LIMITS.maxOutputBytes / 1024 / 1024} MiB` };
    if (code === "ETIMEDOUT") return { problem: `it did not finish within ${KUSTOMIZE_LIMITS.timeoutMs / 1000} s` };
    if (result.status === 0) return { output: result.stdout };
    // kubectl logs through klog (`E1124 … run.go:72] "command failed" err="…"`): keep the reason only.
    const line = (result.stderr || String(result.error)).trim().split("\n")[0] ?? "";
    return { problem: (/err="(.*)"$/.exec(line)?.[1] ?? line).replace(/\\"/g, '"').split(`${root}/`).join("") };
}

/** Builds a kustomization once per content; its objects go into `built` when it builds. */
function kubectlKustomize(root: string, dir: string, findings: Finding[], built: Map<string, Manifest[]>): "missing" | void {
    const key = `${dir}:${folderDigest(path.join(root, dir))}:${JSON.stringify(KUSTOMIZE_LIMITS)}`;
    const result = kustomizeCache.get(key) ?? kustomizeBuild(root, dir);
    kustomizeCache.set(key, result);
    if ("output" in result) {
        try {
            built.set(dir, parseManifests(result.output, `kubectl kustomize ${dir}`));
        } catch (e) {
            findings.push({
                severity: "error",
                file: `${dir}/kustomization.yaml`,
                message: `its kubectl kustomize output cannot be read: ${(e as Error).message}`,
            });
        }
        return;
    }
    if (result.problem === "missing") return "missing";
    findings.push({ severity: "error", file: `${dir}/kustomization.yaml`, message: `kubectl kustomize fails: ${result.problem}` });
}

interface StackView {
    name: string;
    file: string;
    syncPath: string;
    kubernetesVersion: string;
    /** The stack's `flux.version`: an exact version or a range. */
    fluxVersion: string;
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
        const declared = (configValue(doc, "flux") as { version?: unknown } | undefined)?.version;
        // The program refuses a non-string version with its own message; here it is simply the default.
        const fluxVersion = typeof declared === "string" ? declared : DEFAULT_FLUX_VERSION;
        return [{ name, file, syncPath, kubernetesVersion, fluxVersion }];
    });
}

/** What one cluster folder makes Flux apply, from the files already parsed. */
function clusterSet(root: string, clusterDir: string, byFile: Map<string, Located[]>): Located[] {
    return syncedManifests(root, clusterDir, parsedFrom(byFile));
}

/** An object's identity across a file and kustomize's output of it: API version, kind and name. */
const identity = (m: Manifest) => `${m.apiVersion}/${m.kind}/${m.metadata?.name}`;

const parsedFrom = (byFile: Map<string, Located[]>) => (file: string) => (byFile.get(file) ?? []).map((l) => l.manifest);

/**
 * What Flux applies from `syncPath` and every Flux Kustomization it leads to: a folder's built objects
 * where `built` has it (each traced to the file that declares it, else to the kustomization.yaml), its
 * files otherwise.
 */
function appliedSet(root: string, syncPath: string, byFile: Map<string, Located[]>, built: Map<string, Manifest[]>): Located[] {
    const declaredIn = new Map<string, string>();
    for (const ls of byFile.values()) for (const l of ls) if (!declaredIn.has(identity(l.manifest))) declaredIn.set(identity(l.manifest), l.file);
    return syncedManifests(root, syncPath, parsedFrom(byFile), (dir) =>
        built.get(dir)?.map((manifest) => ({ file: declaredIn.get(identity(manifest)) ?? `${dir}/kustomization.yaml`, manifest })),
    );
}

type Ref = { kind?: string; name?: string; namespace?: string };

function checkReferences(cluster: string, set: Located[], findings: Finding[]): void {
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
            dependsOn.forEach((d, i) => expect(l, `spec.dependsOn[${i}].name`, d, "HelmRelease"));
        }
    }
}

export interface CheckResult {
    findings: Finding[];
    files: number;
    manifests: number;
    /** Objects of an API group no schema here knows (e.g. a vendor's CRD): parsed, not validated. */
    unvalidated: number;
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
    let manifests = 0;
    let unvalidated = 0;

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
        manifests += located.length;
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

    // What each kustomization folder builds to: what Flux applies from it.
    const built = new Map<string, Manifest[]>();
    if (options.kustomize !== false) {
        const dirs = new Set(files.filter((f) => path.posix.basename(f) === "kustomization.yaml").map((f) => path.posix.dirname(f)));
        for (const dir of [...dirs].filter((d) => !remote.has(d))) {
            if (kubectlKustomize(root, dir, findings, built) === "missing") {
                findings.push({
                    severity: "error",
                    file: dir,
                    message:
                        "kubectl is not on PATH, so kustomizations cannot be built. Install kubectl 1.27 or later (it bundles kustomize v5): https://kubernetes.io/docs/tasks/tools/",
                });
                break;
            }
        }
    }

    for (const l of [...byFile.values()].flat()) {
        const m = l.manifest;
        if (isKustomizeConfig(m)) continue;
        const object = describe(m);
        if (!m.apiVersion || !m.kind || !m.metadata?.name) {
            findings.push({ severity: "error", file: l.file, object, message: "needs apiVersion, kind and metadata.name" });
            continue;
        }
        const problems = validate(m);
        if (problems === undefined) unvalidated++;
        for (const problem of problems ?? []) findings.push({ severity: "error", file: l.file, object, field: problem.field, message: problem.message });

        const spec = (m.spec ?? {}) as Record<string, unknown>;
        if (m.kind === "OCIRepository") {
            const range = (spec.ref as { semver?: unknown } | undefined)?.semver;
            const problem = typeof range === "string" ? rangeProblem(range) : undefined;
            if (problem) findings.push({ severity: "error", file: l.file, object, field: "spec.ref.semver", message: problem });
        }
        if (m.kind === "HelmRelease") {
            const version = (spec.chart as { spec?: { version?: unknown } } | undefined)?.spec?.version;
            const problem = typeof version === "string" ? rangeProblem(version) : undefined;
            if (problem) findings.push({ severity: "error", file: l.file, object, field: "spec.chart.spec.version", message: problem });
        }
        if (isFluxKustomization(m) && typeof spec.path === "string" && !fs.existsSync(path.join(root, normaliseRepoPath(spec.path)))) {
            findings.push({
                severity: "error",
                file: l.file,
                object,
                field: "spec.path",
                message: `'${spec.path}' does not exist in this repository. Fix: correct the path`,
            });
        }
    }

    const clusterDirs = fs.existsSync(path.join(root, "clusters"))
        ? fs
              .readdirSync(path.join(root, "clusters"), { withFileTypes: true })
              .filter((e) => e.isDirectory())
              .map((e) => `clusters/${e.name}`)
        : [];
    const sets = new Map(clusterDirs.map((dir) => [dir, clusterSet(root, dir, byFile)]));
    for (const [dir, set] of sets) checkReferences(dir, set, findings);

    // The API gate judges what Flux would apply: a folder's kustomize output where it has a
    // kustomization.yaml (which may pull objects from folders no Flux Kustomization names, and leaves out
    // files it does not list), its files where it has none.
    const applied = new Map<string, Located[]>();
    const fluxApis = options.fluxApis ?? readFluxServedApis();
    for (const stack of readStacks(root, findings)) {
        const set = applied.get(stack.syncPath) ?? appliedSet(root, stack.syncPath, byFile, built);
        applied.set(stack.syncPath, set);
        const release = fluxReleaseFor(stack.fluxVersion, fluxApis);
        if (!release) {
            const shipped = Object.keys(fluxApis.releases).sort(semver.compare);
            findings.push({
                severity: "error",
                file: stack.file,
                field: `${PROJECT}:flux.version`,
                message: `'${stack.fluxVersion}' matches no Flux release flux-operator ${fluxApis.operator} ships (${shipped[0]} to ${shipped.at(-1)}). Fix: allow one of them`,
            });
        }
        for (const { file, manifest } of set) {
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

    // A file no kustomization lists is never applied, however valid: usually a forgotten entry in
    // kustomization.yaml. Only judged where the folders were built.
    if (built.size > 0) {
        const appliedIds = new Set([...applied.values()].flat().map((l) => identity(l.manifest)));
        for (const [file, located] of byFile) {
            const objects = located.filter((l) => !isKustomizeConfig(l.manifest));
            if (objects.length === 0 || objects.some((l) => appliedIds.has(identity(l.manifest)))) continue;
            findings.push({
                severity: "warning",
                file,
                message: "no stack's Flux applies anything in this file. Fix: list it in its folder's kustomization.yaml, or delete it",
            });
        }
    }

    // Platform files are synced by several clusters; say each thing once.
    const unique = new Map(findings.map((f) => [formatFinding(f), f]));
    return { findings: [...unique.values()], files: files.length, manifests, unvalidated };
}

/**
 * Schema validators for every apiVersion/kind in the tree: Flux kinds from @kubernetes-models/flux-cd
 * (generated from Flux's CRDs), Kubernetes kinds from kubernetes-models. Both are ES modules, hence the
 * dynamic import; this runs in Node, not in jest.
 */
export async function loadSchemaValidator(root: string): Promise<SchemaValidator> {
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
    for (const file of [...yamlFilesUnder(root, "clusters"), ...yamlFilesUnder(root, "platform")]) {
        for (const doc of parseAllDocuments(fs.readFileSync(path.join(root, file), "utf8"))) {
            let apiVersion: string | undefined;
            try {
                apiVersion = (doc.toJS() as Manifest | null)?.apiVersion;
            } catch {
                continue; // reported by checkTree
            }
            const specifier = apiVersion ? moduleFor(apiVersion) : undefined;
            if (apiVersion && specifier && !modules.has(apiVersion)) modules.set(apiVersion, await importEsm(specifier).catch(() => undefined));
        }
    }
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
            if (!served) return undefined;
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
            return [];
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
