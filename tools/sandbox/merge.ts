import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { isMap, isScalar, isSeq, type Document } from "yaml";
import { yamlFilesUnder } from "../../lib/gitops-tree";
import { PROJECT } from "../../lib/project";
import { SandboxError } from "./tree";

// What a promote writes back: the sandbox's own changes since the fork, merged three ways with what
// happened to the source meanwhile. The fork point is recorded at fork time, as hashes (the sandbox
// needs no Git history): per file of the cluster folder, and per config key of the stack file.

/** Recorded in the sandbox's folder, which kustomize never reads (it builds what kustomization.yaml lists). */
export const FORK_POINT = ".fork-point.json";

export interface ForkPoint {
    source: string;
    /** sha256 of each YAML file of the source's folder, relative to it. */
    files: Record<string, string>;
    /** sha256 of each config value of the source (flattened key → JSON), but the sandbox's own keys. */
    config: Record<string, string>;
    /** The source's platform ref at the fork, when it is an OCI artifact (a perf clone keeps it). */
    ociRef?: Record<string, string>;
}

const hash = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * Keys a sandbox sets for itself, never carried back: its name, folder, branch, protection, lifetime,
 * alerts, host ports and identity tags, and the settings production alone may have. Secrets are
 * encrypted per stack, so they are never carried either.
 */
const SANDBOX_OWN = [
    /^environment$/,
    /^cluster\.name$/,
    /^sync\.(path|branch)$/,
    /^protect$/,
    /^sandbox(\.|$)/,
    /^alerts(\.|$)/,
    /^alertWebhookUrl$/,
    /^cluster\.tags\.(sandbox|owner|expires|cost-center)$/,
    /^cluster\.portMappings(\.|$)/,
    /^cluster\.natGateways$/,
];

/** The config of a stack file as flattened keys (lists are one value), without the sandbox's own keys or secrets. */
export function flatConfig(doc: Document): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const config = doc.get("config");
    if (!isMap(config)) return out;
    const walk = (prefix: string, node: unknown) => {
        if (isMap(node) && !node.has("secure")) {
            for (const pair of node.items) walk(`${prefix}.${String(isScalar(pair.key) ? pair.key.value : pair.key)}`, pair.value);
        } else if (isMap(node)) {
            return; // an encrypted value: re-encrypted per stack, never compared or carried
        } else {
            const value = isScalar(node) ? node.value : isSeq(node) ? node.toJSON() : node;
            const key = prefix.slice(1);
            if (!SANDBOX_OWN.some((re) => re.test(key))) out[key] = value;
        }
    };
    for (const pair of config.items) {
        const full = String(isScalar(pair.key) ? pair.key.value : pair.key);
        if (full.startsWith(`${PROJECT}:`)) walk(`.${full.slice(PROJECT.length + 1)}`, pair.value);
    }
    return out;
}

/** The fork point of a source: its folder's files and its config, as they are now. */
export function forkPointOf(source: string, sourceDir: string, sourceDoc: Document, ociRef?: Record<string, string>): ForkPoint {
    const files: Record<string, string> = {};
    for (const rel of yamlFilesUnder(sourceDir, "")) files[rel] = hash(fs.readFileSync(path.join(sourceDir, rel), "utf8"));
    const config: Record<string, string> = {};
    for (const [key, value] of Object.entries(flatConfig(sourceDoc))) config[key] = hash(JSON.stringify(value));
    return { source, files, config, ...(ociRef ? { ociRef } : {}) };
}

/** The recorded fork point, or undefined for a sandbox forked before they were recorded. */
export function readForkPoint(sandboxDir: string): ForkPoint | undefined {
    const file = path.join(sandboxDir, FORK_POINT);
    if (!fs.existsSync(file)) return undefined;
    try {
        const point = JSON.parse(fs.readFileSync(file, "utf8")) as ForkPoint;
        if (typeof point.files === "object" && point.files !== null && typeof point.config === "object" && point.config !== null) return point;
    } catch {
        // reported below
    }
    throw new SandboxError(
        `clusters/${path.basename(sandboxDir)}/${FORK_POINT} is not a fork point the fork wrote. Fix: restore it from Git, or delete it to promote the folder whole; nothing was changed.`,
    );
}

export interface TreeMerge {
    /** What to write into the source's folder: content, or undefined to delete. Files not listed stay. */
    writes: Map<string, string | undefined>;
    /** Files both the sandbox and the source changed since the fork, differently. */
    conflicts: string[];
}

/**
 * Three-way merge of a cluster folder: `ours` the source's folder now, `theirs` the sandbox's (named
 * back to the source), `base` the hashes at the fork. A file only the sandbox changed is taken; one only
 * the source changed is kept; one both changed alike is fine; one both changed differently is a conflict.
 * Without a fork point, the sandbox's folder wins whole (what promote did before fork points existed).
 */
export function mergeTree(ours: string, theirs: string, base: Record<string, string> | undefined): TreeMerge {
    const read = (dir: string, rel: string) => (fs.existsSync(path.join(dir, rel)) ? fs.readFileSync(path.join(dir, rel), "utf8") : undefined);
    const all = [...new Set([...yamlFilesUnder(ours, ""), ...yamlFilesUnder(theirs, ""), ...Object.keys(base ?? {})])].sort();
    const writes = new Map<string, string | undefined>();
    const conflicts: string[] = [];
    for (const rel of all) {
        const o = read(ours, rel);
        const t = read(theirs, rel);
        if (o === t) continue;
        if (!base) {
            writes.set(rel, t);
            continue;
        }
        const b = base[rel];
        const same = (text: string | undefined) => (text === undefined ? b === undefined : hash(text) === b);
        if (same(t)) continue; // only the source changed it: keep the source's
        if (same(o))
            writes.set(rel, t); // only the sandbox changed it
        else conflicts.push(rel);
    }
    return { writes, conflicts };
}

export interface ConfigChange {
    key: string;
    from: unknown;
    to: unknown;
}

/** The same three ways for the stack config: the sandbox's own changes to carry over, and the conflicts. */
export function mergeConfig(ours: Document, theirs: Document, base: Record<string, string> | undefined): { changes: ConfigChange[]; conflicts: string[] } {
    const o = flatConfig(ours);
    const t = flatConfig(theirs);
    const changes: ConfigChange[] = [];
    const conflicts: string[] = [];
    for (const key of [...new Set([...Object.keys(o), ...Object.keys(t)])].sort()) {
        const ov = JSON.stringify(o[key]);
        const tv = JSON.stringify(t[key]);
        if (ov === tv) continue;
        const b = base?.[key];
        const same = (v: string | undefined) => (v === undefined ? b === undefined : hash(v) === b);
        if (base && same(tv)) continue; // the source changed it since the fork; the sandbox did not
        if (!base || same(ov)) changes.push({ key, from: o[key], to: t[key] });
        else conflicts.push(key);
    }
    return { changes, conflicts };
}
