import * as fs from "fs";
import * as path from "path";
import { parseAllDocuments } from "yaml";

/** The name every cluster folder gives the source its platform Kustomizations pull from. */
export const PLATFORM_SOURCE_NAME = "platform";

/** The secret that source references; `PlatformRepositorySecret` creates it. */
export const PLATFORM_SECRET_NAME = "platform-repository";

export type PlatformSourceKind = "GitRepository" | "OCIRepository";

/** What a cluster folder declares about its `platform` source. */
export interface PlatformSource {
    kind: PlatformSourceKind;
    /** Repository URL as written in the manifest. */
    url: string;
    /** `spec.ref` as written: `{branch}` for Git, `{semver}` or `{tag}` for OCI. */
    ref: Record<string, string>;
    /** `spec.secretRef.name`, if any. */
    secretName?: string;
    /** The file, relative to the repository root, that declares it. */
    file: string;
}

/**
 * The ref a copy of a platform source gets when its stack follows another branch (a sandbox fork) or one
 * commit of it (the end-to-end test): a Git source follows that branch, at that commit when one is given;
 * an OCI source keeps its semver range or tag, which no branch moves.
 */
export function followBranch(kind: PlatformSourceKind, ref: Record<string, string>, to: { branch: string; commit?: string }): Record<string, string> {
    return kind === "GitRepository" ? { branch: to.branch, ...(to.commit ? { commit: to.commit } : {}) } : ref;
}

/**
 * Whether two source URLs name one repository: Git tolerates a trailing `.git` or `/`, hosts are
 * case-insensitive, and `ssh://git@host/x` reaches the same repository as `https://host/x`.
 */
export function sameRepository(a: string, b: string): boolean {
    const key = (url: string) => {
        const m = /^(?:[a-z][a-z0-9+.-]*:\/\/)?(?:[^@/]+@)?([^/:]+)(?::\d+)?[/:](.*)$/i.exec(url.trim());
        if (!m) return url.trim();
        return `${(m[1] ?? "").toLowerCase()}/${(m[2] ?? "").replace(/\/+$/, "").replace(/\.git$/, "")}`;
    };
    const scheme = (url: string) => (/^oci:\/\//i.test(url) ? "oci" : "git");
    return scheme(a) === scheme(b) && key(a) === key(b);
}

/** A Kubernetes object as it appears in a manifest file, with just the fields we read. */
export interface Manifest {
    apiVersion?: string;
    kind?: string;
    metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
    spec?: Record<string, unknown>;
}

/** Every YAML document in a file, parsed; throws naming the file when one does not parse. */
export function readManifests(file: string): Manifest[] {
    return parseManifests(fs.readFileSync(file, "utf8"), file);
}

/** The objects in a multi-document YAML text; a problem names `source`. */
export function parseManifests(text: string, source: string): Manifest[] {
    const docs = parseAllDocuments(text);
    const manifests: Manifest[] = [];
    for (const doc of docs) {
        if (doc.errors.length > 0) {
            throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
        }
        let value: unknown;
        try {
            value = doc.toJS();
        } catch (e) {
            // e.g. a YAML alias bomb ("Excessive alias count"): a named problem, not a crash.
            throw new Error(`${source}: ${(e as Error).message}`);
        }
        if (value !== null && typeof value === "object") {
            manifests.push(value as Manifest);
        }
    }
    return manifests;
}

/**
 * Finds the `platform` source a cluster folder declares. Returns undefined when the folder has none,
 * which is legal for a root sync path that only holds other objects.
 */
export function findPlatformSource(repoRoot: string, syncPath: string): PlatformSource | undefined {
    const dir = path.join(repoRoot, syncPath);
    const files = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
        .sort();
    for (const f of files) {
        for (const m of readManifests(path.join(dir, f))) {
            if ((m.kind === "GitRepository" || m.kind === "OCIRepository") && m.metadata?.name === PLATFORM_SOURCE_NAME) {
                const spec = m.spec ?? {};
                const secretRef = spec["secretRef"] as { name?: string } | undefined;
                return {
                    kind: m.kind,
                    url: typeof spec["url"] === "string" ? spec["url"] : "",
                    ref: (spec["ref"] as Record<string, string> | undefined) ?? {},
                    secretName: secretRef?.name,
                    file: path.posix.join(syncPath, f),
                };
            }
        }
    }
    return undefined;
}

/** Every YAML file under `dir` (relative to `root`), as root-relative POSIX paths, sorted. */
export function yamlFilesUnder(root: string, dir: string): string[] {
    const full = path.join(root, dir);
    if (!fs.existsSync(full)) return [];
    return fs
        .readdirSync(full, { withFileTypes: true })
        .flatMap((e) => {
            const rel = dir ? `${dir}/${e.name}` : e.name;
            if (e.isDirectory()) return yamlFilesUnder(root, rel);
            return /\.ya?ml$/.test(e.name) ? [rel] : [];
        })
        .sort();
}

export interface LocatedManifest {
    /** Root-relative file. */
    file: string;
    manifest: Manifest;
}

/** A path inside the repository as Flux reads it: POSIX, no leading `./`, no trailing `/`. */
export function normaliseRepoPath(p: string): string {
    return path.posix.normalize(p.replace(/\\/g, "/")).replace(/^\.\//, "").replace(/\/$/, "");
}

/** A Flux object in a cluster, by API version, kind, namespace and name. */
export interface FluxObjectRef {
    apiVersion: string;
    kind: string;
    namespace: string;
    name: string;
}
