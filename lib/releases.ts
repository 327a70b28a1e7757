import { spawnSync } from "child_process";
import * as fs from "fs";
import * as semver from "semver";

// The releases staging and production run are Git tags of this repository: the publish-platform job
// pushes `platform/` of the tagged commit as the OCI artifact of that tag. What an OCI-fed environment
// runs is therefore the tree at a tag, not the working tree.

/** The release tags of the repository (`1.2.3` or `v1.2.3`), newest first; none outside a Git work tree. */
export function releaseTags(root: string): string[] {
    // Only a repository's own top folder: a tree kept inside another repository (a test fixture) has
    // none of that repository's releases, and `rev:path` would not name its paths.
    const top = spawnSync("git", ["-C", root, "rev-parse", "--show-toplevel"], { encoding: "utf8" });
    if (top.status !== 0 || fs.realpathSync(top.stdout.trim()) !== fs.realpathSync(root)) return [];
    const out = spawnSync("git", ["-C", root, "tag", "--list"], { encoding: "utf8" });
    if (out.status !== 0) return [];
    return out.stdout
        .split("\n")
        .map((t) => t.trim())
        .filter((t) => semver.valid(t.replace(/^v/, "")) !== null)
        .sort((a, b) => semver.rcompare(a.replace(/^v/, ""), b.replace(/^v/, "")));
}

/**
 * The tag an OCIRepository ref selects among `tags` (newest first): its pinned tag, or the newest its
 * semver range satisfies. Flux's range syntax is Masterminds' (commas for AND); node-semver takes spaces.
 */
export function selectedRelease(ref: Record<string, string>, tags: string[]): string | undefined {
    if (ref["tag"]) return tags.find((t) => t === ref["tag"] || t === `v${ref["tag"]}`);
    const range = ref["semver"];
    if (!range) return undefined;
    return tags.find((t) => semver.satisfies(t.replace(/^v/, ""), range.replace(/,/g, " ")));
}

/** Whether `path` (repository-relative) is a folder in the tree of `rev`. */
export function folderAt(root: string, rev: string, path: string): boolean {
    const r = spawnSync("git", ["-C", root, "cat-file", "-t", `${rev}:${path.replace(/^\.\//, "").replace(/\/+$/, "")}`], { encoding: "utf8" });
    return r.status === 0 && r.stdout.trim() === "tree";
}
