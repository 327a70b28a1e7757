import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { FluxObjectRef, Manifest, normaliseRepoPath, parseManifests, PLATFORM_SOURCE_NAME, readManifests, sameRepository, yamlFilesUnder } from "./gitops-tree";
import { isRemote, Kustomize, kubectlKustomize, wrapperDir, wrapperParent } from "./kustomize";

// What Flux applies in one environment, built the way Flux builds it: the root sync's folder, then every
// Flux Kustomization that yields, each from the source it names, with kustomize, then what
// kustomize-controller adds on top. The tree check, the program's alerts and readiness order read it.
//
// kustomize-controller's generator (fluxcd/pkg kustomize/kustomize_generator.go, `generateKustomization` and
// `WriteFile`, used by internal/controller/kustomization_controller.go `generate`) writes a
// kustomization.yaml when the path has none, then merges into it the Kustomization's targetNamespace (as
// `namespace`), patches and images (and, in the releases that have them, namePrefix, nameSuffix and
// components), and `Build` runs kustomize with LoadRestrictionsNone; commonMetadata labels and annotates
// every object. Here those fields go into a kustomization outside the repository that takes the
// path as its one resource: the same transformations, applied to the same objects. After the build,
// postBuild substitution runs on each object (fluxcd/pkg kustomize `varsub.go`) unless the object is
// annotated `kustomize.toolkit.fluxcd.io/substitute: disabled`.

/** A finding about the tree, naming the file, and the object and field when it is about one. */
export interface Finding {
    severity: "error" | "warning";
    file: string;
    /** `Kind namespace/name`, when the finding is about one object. */
    object?: string;
    /** Dotted path of the field, e.g. `spec.dependsOn[0].name`. */
    field?: string;
    message: string;
}

/** An object as Flux applies it, and where it comes from. */
export interface BuiltObject {
    manifest: Manifest;
    /** Root-relative file that declares it (its kustomization.yaml when no file does). */
    file: string;
    /** The Flux Kustomization that applies it: `namespace/name`, or the root sync's folder. */
    appliedBy: string;
    /** What patched it: an overlay's patch file, or a Flux `spec.patches` entry (`<file>: spec.patches[i]`). */
    patchedBy: string[];
}

/** One Flux Kustomization of the environment, as built. */
export interface LayerBuild {
    namespace: string;
    name: string;
    /** Its file. */
    file: string;
    /** Its `spec.path`, normalised; undefined when it was not built. */
    path?: string;
    objects: BuiltObject[];
}

export interface EnvironmentBuild {
    /** The root sync's folder. */
    syncPath: string;
    /** Everything applied, the root folder's objects first, then each layer's in dependsOn order. */
    objects: BuiltObject[];
    /** What the root sync's folder itself yields. */
    root: BuiltObject[];
    layers: LayerBuild[];
    findings: Finding[];
    /** Folders that did not build: what is under them was not judged. */
    unbuilt: string[];
}

export interface BuildOptions {
    /** Runs kustomize on a folder (lib/kustomize.ts `kubectlKustomize`). */
    kustomize: Kustomize;
    /** Build the root sync's folder only, not the layers it yields. @default false */
    rootOnly?: boolean;
}

const FLUX_KS = "kustomize.toolkit.fluxcd.io/";
const isFluxKustomization = (m: Manifest) => m.kind === "Kustomization" && (m.apiVersion ?? "").startsWith(FLUX_KS);
const isKustomizeConfig = (m: Manifest) => (m.apiVersion ?? "").startsWith("kustomize.config.k8s.io/");
const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

export function describeManifest(m: Manifest): string {
    const ns = m.metadata?.namespace;
    return `${m.kind} ${ns ? `${ns}/` : ""}${m.metadata?.name ?? "(no name)"}`;
}

function kustomizationFile(absDir: string): string | undefined {
    return KUSTOMIZATION_FILES.map((f) => path.join(absDir, f)).find((f) => fs.existsSync(f));
}

/** Folders a kustomization reads besides its own: its resources, components and bases that are folders, transitively. */
export function foldersRead(absDir: string, seen = new Set<string>()): string[] {
    if (seen.has(absDir)) return [];
    seen.add(absDir);
    const file = kustomizationFile(absDir);
    if (!file) return [];
    let k: Record<string, unknown> = {};
    try {
        k = (parseManifests(fs.readFileSync(file, "utf8"), file)[0] ?? {}) as Record<string, unknown>;
    } catch {
        return [];
    }
    const out: string[] = [];
    for (const field of ["resources", "components", "bases"]) {
        const entries = k[field];
        if (!Array.isArray(entries)) continue;
        for (const e of entries) {
            if (typeof e !== "string") continue;
            const target = path.resolve(absDir, e);
            if (fs.existsSync(target) && fs.statSync(target).isDirectory()) {
                out.push(target, ...foldersRead(target, seen));
            } else if (fs.existsSync(target)) out.push(path.dirname(target));
        }
    }
    return [...new Set(out)];
}

/** Where every wrapper lives: all at one depth, so the relative path to a folder is known before the wrapper's name. */
const fromWrapper = (abs: string) => path.relative(path.join(wrapperParent(), "x"), abs);

/** A Kustomization's post-build fields Flux merges into the kustomization (generator.go). */
interface FluxFields {
    targetNamespace?: string;
    namePrefix?: string;
    nameSuffix?: string;
    patches?: { patch?: string; target?: Record<string, string> }[];
    images?: Record<string, unknown>[];
    components?: string[];
    commonMetadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

function fluxFields(spec: Record<string, unknown>): FluxFields {
    const f: FluxFields = {};
    for (const k of ["targetNamespace", "namePrefix", "nameSuffix"] as const) if (typeof spec[k] === "string") f[k] = spec[k] as string;
    if (Array.isArray(spec["patches"])) f.patches = spec["patches"] as FluxFields["patches"];
    if (Array.isArray(spec["images"])) f.images = spec["images"] as FluxFields["images"];
    if (Array.isArray(spec["components"])) f.components = spec["components"] as string[];
    if (spec["commonMetadata"] && typeof spec["commonMetadata"] === "object") f.commonMetadata = spec["commonMetadata"] as FluxFields["commonMetadata"];
    return f;
}

/**
 * What Flux's generator lists for a folder without a kustomization.yaml (fluxcd/pkg
 * kustomize/kustomize_generator.go `generateKustomization`): every .yaml/.yml file under it, except that a
 * sub-folder with a kustomization file of its own is listed as a folder and not descended into.
 */
function generatedResources(root: string, rel: string): { files: string[]; dirs: string[] } {
    const files: string[] = [];
    const dirs: string[] = [];
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            const child = dir ? `${dir}/${e.name}` : e.name;
            if (e.isDirectory()) {
                if (kustomizationFile(path.join(root, child))) dirs.push(child);
                else walk(child);
            } else if (/\.ya?ml$/.test(e.name)) {
                try {
                    if (readManifests(path.join(root, child)).some((m) => m.apiVersion && m.kind && !isKustomizeConfig(m))) files.push(child);
                } catch {
                    files.push(child); // kustomize reports it, as Flux's generator does
                }
            }
        }
    };
    walk(rel);
    return { files, dirs };
}

/** The network entries of a kustomization and of what it reads: building it would fetch them. */
function remoteEntries(absDir: string): string[] {
    return [absDir, ...foldersRead(absDir)].flatMap((dir) => {
        const file = kustomizationFile(dir);
        if (!file) return [];
        try {
            const k = (readManifests(file)[0] ?? {}) as Record<string, unknown>;
            return ["resources", "components", "bases"]
                .flatMap((f) => (Array.isArray(k[f]) ? (k[f] as unknown[]) : []))
                .filter((e): e is string => typeof e === "string" && isRemote(e));
        } catch {
            return [];
        }
    });
}

/** Builds one folder as Flux would for a Kustomization with these fields. Never fetches from the network. */
function buildFolder(root: string, rel: string, fields: FluxFields, kustomize: Kustomize): { manifests: Manifest[] } | { problem: string } {
    const abs = path.join(root, rel);
    const remote = remoteEntries(abs);
    if (remote.length > 0) return { problem: `remote: it fetches ${remote.join(", ")} from the network, which this offline build does not` };
    const own = kustomizationFile(abs);
    const extends_ = Object.keys(fields).length > 0;
    if (own && !extends_) return kustomize(abs);
    const generated = own ? undefined : generatedResources(root, rel);
    if (generated && generated.dirs.length === 0 && !extends_) {
        // Flux's generated kustomization of plain files: the manifests as they are.
        try {
            return { manifests: generated.files.flatMap((f) => readManifests(path.join(root, f))) };
        } catch (e) {
            return { problem: (e as Error).message };
        }
    }
    const resources = generated ? [...generated.files, ...generated.dirs].map((f) => fromWrapper(path.join(root, f))) : [fromWrapper(abs)];
    const kustomization: Record<string, unknown> = { apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", resources };
    if (fields.targetNamespace) kustomization["namespace"] = fields.targetNamespace;
    if (fields.namePrefix) kustomization["namePrefix"] = fields.namePrefix;
    if (fields.nameSuffix) kustomization["nameSuffix"] = fields.nameSuffix;
    if (fields.patches) kustomization["patches"] = fields.patches;
    if (fields.images) kustomization["images"] = fields.images;
    if (fields.components) kustomization["components"] = fields.components.map((c) => fromWrapper(path.resolve(abs, c)));
    if (fields.commonMetadata?.labels) kustomization["labels"] = [{ pairs: fields.commonMetadata.labels, includeSelectors: false }];
    if (fields.commonMetadata?.annotations) kustomization["commonAnnotations"] = fields.commonMetadata.annotations;
    // The same kustomization with the repository's folders named from its root: equal for every copy of a tree.
    const identity = stringify(kustomization).split(fromWrapper(root)).join("<root>");
    const dir = wrapperDir(stringify(kustomization), { root, identity });
    return kustomize(dir);
}

// --- postBuild substitution, as fluxcd/pkg kustomize varsub.go and drone/envsubst do it ---------------------

const SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute";

/**
 * `${var}`, `${var:=default}`, `${var:-default}`, `${var:+alt}` and `$${var}` (an escape) over an object's
 * YAML. Names must be shell-variable-like (varsub.go refuses others). Unset without a default becomes
 * empty, as Flux does unless its StrictPostBuildSubstitutions feature gate is on: reported, since the
 * object then differs from what its author wrote.
 */
export function substitute(text: string, vars: Record<string, string>): { text: string; unset: string[] } {
    const unset: string[] = [];
    const out = text.replace(/\$(\$?)\{([^}:]+)(?::?([=+-])([^}]*))?\}/g, (whole, escaped: string, name: string, op?: string, arg?: string) => {
        if (escaped) return whole.slice(1);
        const value = vars[name];
        if (op === "+") return value ? (arg ?? "") : "";
        if (value !== undefined && value !== "") return value;
        if (op === "=" || op === "-") return arg ?? "";
        if (value === undefined) unset.push(name);
        return "";
    });
    return { text: out, unset };
}

/** The variables a Kustomization's postBuild gives, from its `substitute` and the ConfigMaps/Secrets it names. */
function postBuildVars(
    spec: Record<string, unknown>,
    namespace: string,
    known: BuiltObject[],
    where: { file: string; object: string },
    findings: Finding[],
): Record<string, string> | undefined {
    const post = spec["postBuild"] as
        { substitute?: Record<string, unknown>; substituteFrom?: { kind?: string; name?: string; optional?: boolean }[] } | undefined;
    if (!post) return undefined;
    const vars: Record<string, string> = {};
    (post.substituteFrom ?? []).forEach((ref, i) => {
        const found = known.find(
            (b) => b.manifest.kind === ref.kind && b.manifest.metadata?.name === ref.name && (b.manifest.metadata?.namespace ?? namespace) === namespace,
        );
        if (!found) {
            if (!ref.optional) {
                findings.push({
                    severity: "error",
                    ...where,
                    field: `spec.postBuild.substituteFrom[${i}]`,
                    message: `no ${ref.kind} ${namespace}/${ref.name} in what this environment applies before it, and it is not optional: Flux would not build. Fix: add it, or set optional: true`,
                });
            }
            return;
        }
        const m = found.manifest as Manifest & { data?: Record<string, string>; stringData?: Record<string, string> };
        const decoded =
            ref.kind === "Secret"
                ? Object.fromEntries(Object.entries(m.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), "base64").toString("utf8")]))
                : (m.data ?? {});
        Object.assign(vars, decoded, ref.kind === "Secret" ? (m.stringData ?? {}) : {});
    });
    for (const [k, v] of Object.entries(post.substitute ?? {})) vars[k] = String(v);
    return vars;
}

// --- tracing ------------------------------------------------------------------------------------------

/** The kustomization.yaml of each folder that has one and parses (one that does not is the build's to report). */
function kustomizationsOf(root: string, dirs: string[]): { dir: string; k: Record<string, unknown> }[] {
    return dirs.flatMap((dir) => {
        const file = kustomizationFile(path.join(root, dir));
        if (!file) return [];
        try {
            return [{ dir, k: (readManifests(file)[0] ?? {}) as Record<string, unknown> }];
        } catch {
            return [];
        }
    });
}

/** Files a kustomization reads as inputs, not as objects: patch files and kustomize configurations. */
export function inputFiles(root: string, dirs: string[]): Set<string> {
    const out = new Set<string>();
    for (const { dir, k } of kustomizationsOf(root, dirs)) {
        const add = (p: unknown) => typeof p === "string" && out.add(path.relative(root, path.resolve(root, dir, p)));
        for (const p of (k["patches"] as { path?: string }[] | undefined) ?? []) add(p?.path);
        for (const p of (k["patchesJson6902"] as { path?: string }[] | undefined) ?? []) add(p?.path);
        for (const p of (k["patchesStrategicMerge"] as unknown[] | undefined) ?? []) add(p);
        for (const p of (k["configurations"] as unknown[] | undefined) ?? []) add(p);
    }
    return out;
}

/** A kustomize patch file of an overlay, with what it patches: its target, or the object it names (strategic merge). */
interface PatchFile {
    file: string;
    target?: Record<string, string>;
    patch: Manifest | undefined;
}

/** The patch files the kustomizations of these folders apply. */
function patchFiles(root: string, dirs: string[]): PatchFile[] {
    const out: PatchFile[] = [];
    for (const { dir, k } of kustomizationsOf(root, dirs)) {
        const entries: { path?: string; target?: Record<string, string> }[] = [
            ...((k["patches"] as { path?: string; target?: Record<string, string> }[] | undefined) ?? []),
            ...((k["patchesStrategicMerge"] as unknown[] | undefined) ?? []).map((p) => ({ path: typeof p === "string" ? p : undefined })),
        ];
        for (const e of entries) {
            if (typeof e.path !== "string") continue;
            const rel = path.relative(root, path.resolve(root, dir, e.path));
            let patch: Manifest | undefined;
            try {
                patch = readManifests(path.join(root, rel))[0];
            } catch {
                patch = undefined;
            }
            out.push({ file: rel, ...(e.target ? { target: e.target } : {}), patch });
        }
    }
    return out;
}

/** The patch files that apply to an object: by their target, or by the kind and name they are written for. */
function patchesOf(m: Manifest, patches: PatchFile[]): PatchFile[] {
    return patches.filter((p) => (p.target ? targets(p.target, m) : p.patch?.kind === m.kind && p.patch?.metadata?.name === m.metadata?.name));
}

/** Where each object of the tree is declared, by kind and name (first file wins), patch files aside. */
function declarations(root: string, dirs: string[]): Map<string, string> {
    const out = new Map<string, string>();
    const inputs = inputFiles(root, dirs);
    for (const dir of dirs) {
        for (const file of yamlFilesUnder(root, dir).filter((f) => !inputs.has(f))) {
            let manifests: Manifest[] = [];
            try {
                manifests = readManifests(path.join(root, file));
            } catch {
                continue;
            }
            for (const m of manifests) {
                const key = `${m.kind}/${m.metadata?.name}`;
                if (!out.has(key)) out.set(key, file);
            }
        }
    }
    return out;
}

/** Whether a kustomize patch target selects an object (kind, name as a regex, namespace, group, version). */
export function targets(target: Record<string, string> | undefined, m: Manifest): boolean {
    if (!target) return false;
    const [group, version] = (m.apiVersion ?? "").includes("/") ? (m.apiVersion ?? "").split("/") : ["", m.apiVersion ?? ""];
    const full = (pattern: string, value: string) => new RegExp(`^(${pattern})$`).test(value);
    if (target["kind"] && !full(target["kind"], m.kind ?? "")) return false;
    if (target["name"] && !full(target["name"], m.metadata?.name ?? "")) return false;
    if (target["namespace"] && !full(target["namespace"], m.metadata?.namespace ?? "")) return false;
    if (target["group"] !== undefined && target["group"] !== group) return false;
    if (target["version"] && target["version"] !== version) return false;
    return true;
}

// --- the environment ------------------------------------------------------------------------------------

/** The Flux objects a built set holds that report Ready, causes first: sources, then the rest after what they dependsOn. */
export function readyOrderOf(objects: Manifest[]): FluxObjectRef[] {
    const declared = objects.filter((m) => /^(source|kustomize|helm)\.toolkit\.fluxcd\.io\//.test(m.apiVersion ?? "") && m.kind && m.metadata?.name);
    const ref = (m: Manifest): FluxObjectRef => ({
        apiVersion: m.apiVersion ?? "",
        kind: m.kind ?? "",
        namespace: m.metadata?.namespace ?? "default",
        name: m.metadata?.name ?? "",
    });
    const key = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;
    const byKey = new Map(declared.map((m) => [key(m.kind ?? "", ref(m).namespace, ref(m).name), m]));
    const out: FluxObjectRef[] = [];
    const placed = new Set<string>();
    const place = (k: string, stack: Set<string>) => {
        const m = byKey.get(k);
        if (!m || placed.has(k) || stack.has(k)) return; // unknown, done, or a dependsOn cycle (the check reports it)
        stack.add(k);
        const own = ref(m);
        for (const d of (m.spec?.["dependsOn"] as { name?: string; namespace?: string }[] | undefined) ?? []) {
            if (d.name) place(key(own.kind, d.namespace ?? own.namespace, d.name), stack);
        }
        placed.add(k);
        out.push(own);
    };
    for (const [k, m] of byKey) if ((m.apiVersion ?? "").startsWith("source.toolkit.fluxcd.io/")) place(k, new Set());
    for (const k of byKey.keys()) place(k, new Set());
    return out;
}

/**
 * Builds what Flux applies for the root sync path `syncPath`, following every Flux Kustomization whose
 * source is this repository: the root sync's own GitRepository, or a source whose URL is that of the
 * folder's `platform` source (an OCIRepository of it holds `platform/` at the artifact's root, as
 * publish-platform pushes it). A source this repository cannot stand for is a warning, never silence.
 */
export function buildEnvironment(root: string, syncPath: string, options: BuildOptions): EnvironmentBuild {
    const findings: Finding[] = [];
    const unbuilt: string[] = [];
    const rootPath = normaliseRepoPath(syncPath);
    const layers: LayerBuild[] = [];
    const objects: BuiltObject[] = [];
    const built = (rel: string, fields: FluxFields, appliedBy: string, where: string): BuiltObject[] => {
        if (!fs.existsSync(path.join(root, rel))) return [];
        const result = buildFolder(root, rel, fields, options.kustomize);
        if ("problem" in result) {
            unbuilt.push(rel);
            if (result.problem === "missing") {
                findings.push({
                    severity: "error",
                    file: rel,
                    message: "kubectl is not on PATH, so what Flux builds cannot be built. Install kubectl 1.27 or later (it bundles kustomize v5)",
                });
            } else {
                findings.push({ severity: "error", file: where, message: `kustomize build of ${rel} fails: ${result.problem.split(`${root}/`).join("")}` });
            }
            return [];
        }
        const dirs = [rel, ...foldersRead(path.join(root, rel)).map((d) => path.relative(root, d))];
        const declaredIn = declarations(root, dirs);
        const overlays = patchFiles(root, dirs);
        const strip = (name: string) => name.slice((fields.namePrefix ?? "").length, name.length - (fields.nameSuffix ?? "").length || undefined);
        return result.manifests
            .filter((m) => !isKustomizeConfig(m))
            .map((manifest) => ({
                manifest,
                file:
                    declaredIn.get(`${manifest.kind}/${manifest.metadata?.name}`) ??
                    declaredIn.get(`${manifest.kind}/${strip(manifest.metadata?.name ?? "")}`) ??
                    (kustomizationFile(path.join(root, rel)) ? path.relative(root, kustomizationFile(path.join(root, rel))!) : rel),
                appliedBy,
                patchedBy: patchesOf(manifest, overlays).map((p) => p.file),
            }));
    };

    const rootObjects = built(rootPath, {}, rootPath, rootPath);
    objects.push(...rootObjects);

    if (options.rootOnly) return { syncPath: rootPath, objects, root: rootObjects, layers, findings, unbuilt };

    const platform = rootObjects.find(
        (b) => (b.manifest.kind === "GitRepository" || b.manifest.kind === "OCIRepository") && b.manifest.metadata?.name === PLATFORM_SOURCE_NAME,
    )?.manifest;
    const platformUrl = typeof platform?.spec?.["url"] === "string" ? (platform.spec["url"] as string) : undefined;
    const done = new Set<string>();
    const idOf = (m: Manifest) => `${m.metadata?.namespace ?? "default"}/${m.metadata?.name}`;
    // Layers in dependsOn order where it can be kept (a cycle is the check's to report): so what a layer
    // substitutes from an earlier one is there.
    for (let progress = true, strict = true; progress || strict;) {
        if (!progress) strict = false;
        progress = false;
        const waiting = (m: Manifest) => {
            const ns = m.metadata?.namespace ?? "default";
            return ((m.spec?.["dependsOn"] as { name?: string; namespace?: string }[] | undefined) ?? []).some((d) => {
                const dep = `${d.namespace ?? ns}/${d.name}`;
                return !done.has(dep) && objects.some((o) => isFluxKustomization(o.manifest) && idOf(o.manifest) === dep);
            });
        };
        for (const b of objects.slice()) {
            const m = b.manifest;
            if (!isFluxKustomization(m)) continue;
            const namespace = m.metadata?.namespace ?? "default";
            const id = idOf(m);
            if (done.has(id) || (strict && waiting(m))) continue;
            const spec = (m.spec ?? {}) as Record<string, unknown>;
            const sourceRef = (spec["sourceRef"] ?? {}) as { kind?: string; name?: string; namespace?: string };
            const sourceNs = sourceRef.namespace ?? namespace;
            const isRootSource = sourceRef.kind === "GitRepository" && sourceNs === "flux-system" && sourceRef.name === "flux-system";
            const source = objects.find(
                (o) =>
                    o.manifest.kind === sourceRef.kind &&
                    o.manifest.metadata?.name === sourceRef.name &&
                    (o.manifest.metadata?.namespace ?? "default") === sourceNs,
            );
            if (!isRootSource && !source) continue; // maybe applied by a later layer: tried again below
            done.add(id);
            progress = true;
            const where = { file: b.file, object: describeManifest(m) };
            const layer: LayerBuild = { namespace, name: m.metadata?.name ?? "", file: b.file, objects: [] };
            layers.push(layer);
            const url = typeof source?.manifest.spec?.["url"] === "string" ? (source.manifest.spec["url"] as string) : undefined;
            const inRepo = isRootSource || (url !== undefined && platformUrl !== undefined && sameRepository(url, platformUrl));
            if (!inRepo) {
                findings.push({
                    severity: "warning",
                    ...where,
                    field: "spec.sourceRef",
                    message: `not built: ${sourceRef.kind} ${sourceNs}/${sourceRef.name} is outside this repository`,
                });
                continue;
            }
            const written = typeof spec["path"] === "string" ? spec["path"] : ".";
            const rel = normaliseRepoPath(written);
            if (rel.startsWith("..") || path.isAbsolute(rel)) {
                findings.push({
                    severity: "error",
                    ...where,
                    field: "spec.path",
                    message: `'${written}' leaves the source. Fix: a path inside the repository`,
                });
                continue;
            }
            if (!fs.existsSync(path.join(root, rel))) {
                findings.push({
                    severity: "error",
                    ...where,
                    field: "spec.path",
                    message: `'${written}' does not exist in this repository. Fix: correct the path`,
                });
                continue;
            }
            if (source?.manifest.kind === "OCIRepository" && rel !== "platform" && !rel.startsWith("platform/")) {
                findings.push({
                    severity: "error",
                    ...where,
                    field: "spec.path",
                    message: `'${written}' is not in the platform artifact, which holds platform/ only (publish-platform pushes --ignore-paths='/*,!/platform/'). Fix: move it under platform/`,
                });
                continue;
            }
            layer.path = rel;
            const fields = fluxFields(spec);
            let out = built(rel, fields, id, b.file);
            // kustomize patches before it renames or moves anything (kusttarget.go runs the patch transformers
            // before the namespace and prefix/suffix ones): targets name the objects as written.
            const asWritten = (o: BuiltObject): Manifest => {
                const name = o.manifest.metadata?.name ?? "";
                const prefix = fields.namePrefix ?? "";
                const suffix = fields.nameSuffix ?? "";
                const bare = name.startsWith(prefix) && name.endsWith(suffix) ? name.slice(prefix.length, name.length - suffix.length) : name;
                const metadata = { ...o.manifest.metadata, name: bare, ...(fields.targetNamespace ? { namespace: undefined } : {}) };
                return { ...o.manifest, metadata };
            };
            // A layer that did not build says nothing about its patches.
            (unbuilt.includes(rel) ? [] : (fields.patches ?? [])).forEach((p, i) => {
                const target = fields.targetNamespace && p.target ? { ...p.target, namespace: "" } : p.target;
                const hits = out.filter((o) => targets(target, asWritten(o)));
                for (const o of hits) o.patchedBy.push(`${b.file}: spec.patches[${i}]`);
                if (p.target && hits.length === 0) {
                    findings.push({
                        severity: "error",
                        ...where,
                        field: `spec.patches[${i}].target`,
                        message: `matches nothing this Kustomization applies, so the patch is never applied. Fix: correct the target (${JSON.stringify(p.target)})`,
                    });
                }
            });
            const vars = postBuildVars(spec, namespace, objects, where, findings);
            if (vars) {
                out = out.map((o) => {
                    if (
                        o.manifest.metadata &&
                        (o.manifest.metadata as { annotations?: Record<string, string> }).annotations?.[SUBSTITUTE_ANNOTATION] === "disabled"
                    )
                        return o;
                    // On the object's YAML, as Flux does: `replicas: ${n}` becomes a number, not a string.
                    const { text, unset } = substitute(stringify(o.manifest, { lineWidth: 0 }), vars);
                    for (const name of new Set(unset)) {
                        findings.push({
                            severity: "warning",
                            file: o.file,
                            object: describeManifest(o.manifest),
                            message: `\${${name}} has no value in ${describeManifest(m)}'s postBuild, so Flux substitutes an empty string. Fix: add it to substitute, or write \${${name}:=default}`,
                        });
                    }
                    try {
                        return { ...o, manifest: parse(text) as Manifest };
                    } catch (e) {
                        findings.push({
                            severity: "error",
                            file: o.file,
                            object: describeManifest(o.manifest),
                            message: `is not valid YAML after substitution: ${(e as Error).message}`,
                        });
                        return o;
                    }
                });
            }
            layer.objects = out;
            objects.push(...out);
        }
    }
    // Kustomizations whose source never appeared: the reference check names them.
    return { syncPath: rootPath, objects, root: rootObjects, layers, findings, unbuilt };
}

let shared: Kustomize | undefined;

/** The kustomize the program and the tools build with: kubectl, once per content on this machine. */
export function sharedKustomize(): Kustomize {
    shared ??= kubectlKustomize({ cacheDir: path.join(os.tmpdir(), "gitops-platform-kustomize-cache"), reads: (dir) => foldersRead(dir) });
    return shared;
}
