import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as semver from "semver";
import { parse, stringify } from "yaml";
import { buildEnvironment, BuiltObject, sharedKustomize } from "../../lib/flux-build";
import { findPlatformSource, Manifest } from "../../lib/gitops-tree";
import { ENVIRONMENTS } from "../../lib/project";
import { releaseTags, selectedRelease } from "../../lib/releases";

// `npm run diff`: what each environment will get from a change, and when, on its own cadence. Every
// side is what Flux would apply (lib/flux-build.ts) from a tree taken out of Git itself (`git archive`),
// never from the network:
//   development  the base revision's tree, then the head's: it follows main, so this applies on merge;
//   staging      the newest release tag its semver range selects (what it runs now), then the head's
//                tree (what the next release will bring);
//   production   the tree at the tag it pins, then the tree at the tag the head pins.

export interface DiffOptions {
    /** The repository (a Git work tree). */
    root: string;
    /** @default "main" */
    base?: string;
    /** @default "HEAD" */
    head?: string;
    /** @default every long-lived environment with a cluster folder */
    envs?: string[];
}

export interface ObjectChange {
    id: string;
    change: "added" | "removed" | "changed";
    /** A unified diff of the object's YAML (Secret values and what comes from them redacted). */
    diff: string;
    file: string;
}

export interface EnvironmentDiff {
    env: string;
    /** When the change reaches the cluster. */
    when: string;
    /** What the two sides are. */
    sides: { now: string; after: string };
    changes: ObjectChange[];
    dangers: string[];
    /** Build problems (a diff of a tree that does not build would lie). */
    errors: string[];
}

/** A revision's tree, taken out of Git into a temporary folder; the caller removes it. */
function treeAt(root: string, rev: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flux-diff-"));
    const archive = spawnSync("git", ["-C", root, "archive", "--format=tar", rev], { maxBuffer: 512 * 1024 * 1024 });
    if (archive.status !== 0) {
        fs.rmSync(dir, { recursive: true, force: true });
        const why = archive.stderr.toString().trim();
        throw new Error(
            `${rev} is not in this clone (${why}). Fix: fetch it, e.g. git fetch origin ${/^\d/.test(rev) ? `tag ${rev}` : rev} --no-tags, or git fetch --tags`,
        );
    }
    execFileSync("tar", ["-x", "-C", dir], { input: archive.stdout });
    return dir;
}

/** A tree whose cluster folders come from one revision and platform/ from another (what an OCI cadence runs). */
function composed(root: string, clustersRev: string, platformRev: string, made: string[]): string {
    const clusters = treeAt(root, clustersRev);
    made.push(clusters);
    if (platformRev === clustersRev) return clusters;
    const platform = treeAt(root, platformRev);
    made.push(platform);
    fs.rmSync(path.join(clusters, "platform"), { recursive: true, force: true });
    if (fs.existsSync(path.join(platform, "platform"))) fs.cpSync(path.join(platform, "platform"), path.join(clusters, "platform"), { recursive: true });
    return clusters;
}

const idOf = (m: Manifest) => `${m.kind} ${m.metadata?.namespace ? `${m.metadata.namespace}/` : ""}${m.metadata?.name}`;
const digest = (v: string) => `<redacted sha256:${createHash("sha256").update(v).digest("hex").slice(0, 12)}>`;

/** Every value a Secret of the set holds: redacted wherever it lands. */
function secretValues(objects: BuiltObject[]): string[] {
    return objects
        .filter((o) => o.manifest.kind === "Secret")
        .flatMap((o) => {
            const m = o.manifest as Manifest & { data?: Record<string, string>; stringData?: Record<string, string> };
            return [
                ...Object.values(m.data ?? {}).map((v) => Buffer.from(String(v), "base64").toString("utf8")),
                ...Object.values(m.stringData ?? {}).map(String),
            ];
        })
        .filter((v) => v.length >= 4);
}

/**
 * An object as the diff shows it: a Secret's values as digests (whether they changed shows, never what they
 * are), values from Secrets elsewhere too, and a HelmRelease's values merged as helm-controller merges them
 * (`valuesFrom` in order, then `values`; ConfigMaps and Secrets the environment applies).
 */
function shown(o: BuiltObject, all: BuiltObject[], secrets: string[]): string {
    let m = structuredClone(o.manifest) as Manifest & { data?: Record<string, string>; stringData?: Record<string, string> };
    if (m.kind === "Secret") {
        for (const field of ["data", "stringData"] as const) {
            const values = m[field];
            if (values) m[field] = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, digest(String(v))]));
        }
    }
    if (m.kind === "HelmRelease") {
        const spec = (m.spec ?? {}) as { values?: unknown; valuesFrom?: { kind?: string; name?: string; valuesKey?: string }[] };
        let merged: Record<string, unknown> = {};
        for (const ref of spec.valuesFrom ?? []) {
            const source = all.find(
                (x) => x.manifest.kind === ref.kind && x.manifest.metadata?.name === ref.name && x.manifest.metadata?.namespace === m.metadata?.namespace,
            );
            const data = (source?.manifest as { data?: Record<string, string> } | undefined)?.data ?? {};
            const raw = data[ref.valuesKey ?? "values.yaml"];
            const text = ref.kind === "Secret" && raw ? Buffer.from(raw, "base64").toString("utf8") : raw;
            if (text) merged = deepMerge(merged, (parse(text) ?? {}) as Record<string, unknown>);
        }
        if (spec.values && typeof spec.values === "object") merged = deepMerge(merged, spec.values as Record<string, unknown>);
        if (spec.valuesFrom?.length) m = { ...m, ["values (merged)" as "spec"]: merged };
    }
    let text = stringify(m, { lineWidth: 0, sortMapEntries: true });
    for (const s of [...secrets].sort((a, b) => b.length - a.length)) text = text.split(s).join(digest(s));
    return text;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) {
        const prev = out[k];
        out[k] =
            prev && v && typeof prev === "object" && typeof v === "object" && !Array.isArray(prev) && !Array.isArray(v)
                ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>)
                : v;
    }
    return out;
}

/** A unified diff of two texts, line by line (an LCS; objects are small). */
export function unifiedDiff(before: string, after: string, context = 3): string {
    const a = before ? before.replace(/\n$/, "").split("\n") : [];
    const b = after ? after.replace(/\n$/, "").split("\n") : [];
    const lcs: number[][] = Array.from({ length: a.length + 1 }, () => Array.from({ length: b.length + 1 }, () => 0));
    for (let i = a.length - 1; i >= 0; i--)
        for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    const ops: { op: " " | "-" | "+"; line: string }[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
        if (i < a.length && j < b.length && a[i] === b[j]) {
            ops.push({ op: " ", line: a[i++]! });
            j++;
        } else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ op: "-", line: a[i++]! });
        else ops.push({ op: "+", line: b[j++]! });
    }
    // Only the changed lines and `context` lines around them.
    const keep = ops.map((o, k) => o.op !== " " || ops.slice(Math.max(0, k - context), k + context + 1).some((x) => x.op !== " "));
    const out: string[] = [];
    ops.forEach((o, k) => {
        if (keep[k]) out.push(`${o.op}${o.line}`);
        else if (keep[k - 1]) out.push("…");
    });
    return out.join("\n");
}

/** What one environment's objects become, and the changes a reviewer must not miss. */
function compare(before: BuiltObject[], after: BuiltObject[]): { changes: ObjectChange[]; dangers: string[] } {
    const secrets = [...secretValues(before), ...secretValues(after)];
    const key = (m: Manifest) => `${m.kind}/${m.metadata?.namespace ?? ""}/${m.metadata?.name}`;
    const was = new Map(before.map((o) => [key(o.manifest), o]));
    const now = new Map(after.map((o) => [key(o.manifest), o]));
    const changes: ObjectChange[] = [];
    const dangers: string[] = [];
    for (const [k, o] of now) {
        const old = was.get(k);
        const next = shown(o, after, secrets);
        if (!old) {
            changes.push({ id: idOf(o.manifest), change: "added", diff: unifiedDiff("", next), file: o.file });
            continue;
        }
        const prev = shown(old, before, secrets);
        if (prev === next) continue;
        changes.push({ id: idOf(o.manifest), change: "changed", diff: unifiedDiff(prev, next), file: o.file });
        if (old.manifest.apiVersion !== o.manifest.apiVersion)
            dangers.push(`${idOf(o.manifest)}: API version ${old.manifest.apiVersion} → ${o.manifest.apiVersion}`);
        if (o.manifest.kind === "Kustomization" && o.manifest.metadata?.labels?.["gitops-platform.io/teardown"] === "provider") {
            dangers.push(`${idOf(o.manifest)}: a layer that provides CRDs or controllers changes`);
        }
    }
    for (const [k, o] of was) {
        if (now.has(k)) continue;
        changes.push({ id: idOf(o.manifest), change: "removed", diff: unifiedDiff(shown(o, before, secrets), ""), file: o.file });
        if (o.manifest.kind === "Namespace") dangers.push(`${idOf(o.manifest)} is removed, and everything in it`);
        if (o.manifest.kind === "Kustomization" && o.manifest.spec?.["prune"] === true) {
            dangers.push(`${idOf(o.manifest)} is removed with prune: true, so everything it applied is deleted`);
        }
    }
    const order = { removed: 0, changed: 1, added: 2 } as const;
    changes.sort((x, y) => order[x.change] - order[y.change] || x.id.localeCompare(y.id));
    return { changes, dangers };
}

/** Builds one environment's cluster folder from a tree. */
function built(tree: string, clusterPath: string): { objects: BuiltObject[]; errors: string[] } {
    if (!fs.existsSync(path.join(tree, clusterPath))) return { objects: [], errors: [] };
    const b = buildEnvironment(tree, clusterPath, { kustomize: sharedKustomize() });
    return { objects: b.objects, errors: b.findings.filter((f) => f.severity === "error").map((f) => `${f.file}: ${f.message}`) };
}

/**
 * What one cluster folder's objects become between two trees on disk: `npm run sandbox -- promote`
 * shows its merge this way, so a promotion is reviewed on what Flux applies, as a merge request is.
 */
export function diffTrees(
    beforeRoot: string,
    afterRoot: string,
    clusterPath: string,
): Pick<EnvironmentDiff, "changes" | "dangers" | "errors"> & { /** Files the after side's objects come from or are patched by. */ sources: Set<string> } {
    const before = built(beforeRoot, clusterPath);
    const after = built(afterRoot, clusterPath);
    const sources = new Set(after.objects.flatMap((o) => [o.file, ...o.patchedBy.map((p) => p.replace(/: spec\.patches\[\d+\]$/, ""))]));
    return { ...compare(before.objects, after.objects), errors: [...new Set([...before.errors, ...after.errors])], sources };
}

/** The diff of every environment between two revisions, each on its own cadence. */
export function diffEnvironments(options: DiffOptions): EnvironmentDiff[] {
    const root = options.root;
    const base = options.base ?? "main";
    const head = options.head ?? "HEAD";
    const made: string[] = [];
    try {
        const baseTree = treeAt(root, base);
        const headTree = treeAt(root, head);
        made.push(baseTree, headTree);
        const envs =
            options.envs ?? ENVIRONMENTS.filter((e) => fs.existsSync(path.join(headTree, "clusters", e)) || fs.existsSync(path.join(baseTree, "clusters", e)));
        const tags = releaseTags(root);
        const out: EnvironmentDiff[] = [];
        for (const env of envs) {
            const sourceHead = fs.existsSync(path.join(headTree, "clusters", env)) ? findPlatformSource(headTree, `clusters/${env}`) : undefined;
            const sourceBase = fs.existsSync(path.join(baseTree, "clusters", env)) ? findPlatformSource(baseTree, `clusters/${env}`) : undefined;
            let when: string;
            let sides: { now: string; after: string };
            let nowTree = baseTree;
            let afterTree = headTree;
            if (sourceHead?.kind === "OCIRepository" && sourceHead.ref["semver"]) {
                const range = sourceHead.ref["semver"];
                const pick = (r: string | undefined) => (r ? selectedRelease({ semver: r }, tags) : undefined);
                const running = pick(sourceBase?.ref["semver"] ?? range);
                const selected = pick(range);
                nowTree = running ? composed(root, base, running, made) : baseTree;
                sides = {
                    now: running ? `release ${running} (the newest ${sourceBase?.ref["semver"] ?? range})` : `${base} (no release matches ${range})`,
                    after: head,
                };
                when =
                    sourceBase?.ref["semver"] && sourceBase.ref["semver"] !== range
                        ? `the range moves from ${sourceBase.ref["semver"]} (selects ${running ?? "nothing"}) to ${range} (selects ${selected ?? "nothing"}) on merge; the rest with the next release tag that ${range} selects`
                        : `with the next release tag that ${range} selects (now ${running ?? "none"})`;
            } else if (sourceHead?.kind === "OCIRepository") {
                const pinNow = sourceBase?.ref["tag"];
                const pinAfter = sourceHead.ref["tag"];
                nowTree = pinNow ? composed(root, base, selectedRelease({ tag: pinNow }, tags) ?? pinNow, made) : baseTree;
                afterTree = pinAfter ? composed(root, head, selectedRelease({ tag: pinAfter }, tags) ?? pinAfter, made) : headTree;
                sides = { now: `release ${pinNow ?? "?"}`, after: `release ${pinAfter ?? "?"}` };
                if (pinNow === pinAfter) {
                    const waiting = compare(built(nowTree, `clusters/${env}`).objects, built(headTree, `clusters/${env}`).objects).changes.length;
                    when = `no change until the pin moves; ${waiting} change${waiting === 1 ? "" : "s"} ${waiting === 1 ? "is" : "are"} waiting on ${head} since ${pinNow}`;
                } else {
                    const backwards = pinNow && pinAfter && semver.valid(pinNow) && semver.valid(pinAfter) && semver.lt(pinAfter, pinNow);
                    when = `on merge: the pin moves from ${pinNow} to ${pinAfter}${backwards ? " (backwards)" : ""}`;
                }
            } else {
                sides = { now: base, after: head };
                when = `on merge${sourceHead?.ref["branch"] ? ` (it follows ${sourceHead.ref["branch"]})` : ""}`;
            }
            const before = built(nowTree, `clusters/${env}`);
            const after = built(afterTree, `clusters/${env}`);
            const { changes, dangers } = compare(before.objects, after.objects);
            const pinNow = sourceBase?.ref["tag"];
            const pinAfter = sourceHead?.ref["tag"];
            if (pinNow && pinAfter && semver.valid(pinNow) && semver.valid(pinAfter) && semver.lt(pinAfter, pinNow))
                dangers.unshift(`the production pin moves backwards, from ${pinNow} to ${pinAfter}`);
            out.push({ env, when, sides, changes, dangers, errors: [...new Set([...before.errors, ...after.errors])] });
        }
        return out;
    } finally {
        for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
    }
}

const count = (d: EnvironmentDiff, c: ObjectChange["change"]) => d.changes.filter((x) => x.change === c).length;

/** The report a reviewer reads: the summary first, then each environment's changes. */
export function formatDiff(diffs: EnvironmentDiff[], format: "text" | "markdown"): string {
    const md = format === "markdown";
    const lines: string[] = [];
    lines.push(md ? "## What each environment will get" : "What each environment will get", "");
    for (const d of diffs) {
        const summary = `+${count(d, "added")} ~${count(d, "changed")} -${count(d, "removed")}`;
        lines.push(md ? `- **${d.env}**: ${summary}, ${d.when}` : `${d.env}: ${summary}, ${d.when}`);
        for (const danger of d.dangers) lines.push(md ? `  - ⚠ ${danger}` : `  ! ${danger}`);
        for (const error of d.errors) lines.push(md ? `  - ✗ does not build: ${error}` : `  x does not build: ${error}`);
    }
    lines.push("", "HelmRelease charts are not rendered here: a release shows as the HelmRelease Flux applies, its values merged.");
    for (const d of diffs) {
        if (d.changes.length === 0) continue;
        lines.push("", md ? `### ${d.env}: ${d.sides.now} → ${d.sides.after}` : `== ${d.env}: ${d.sides.now} -> ${d.sides.after}`);
        for (const c of d.changes) {
            lines.push("", md ? `**${c.change}** \`${c.id}\` (${c.file})` : `${c.change} ${c.id} (${c.file})`);
            lines.push(md ? "```diff" : "", c.diff, md ? "```" : "");
        }
    }
    return lines.join("\n").replace(/\n{3,}/g, "\n\n") + "\n";
}
