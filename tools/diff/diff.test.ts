import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../../lib/project";
import { diffEnvironments, EnvironmentDiff, formatDiff, unifiedDiff } from "./diff";

// `npm run diff` on a repository with real history (test/fixtures/cadence-tree committed and changed
// commit by commit, releases tagged): what each environment gets, and when, on its own cadence.

let repo: string;
const git = (...args: string[]) => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();
const commit = (message: string) => {
    git("add", "-A");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", message);
    return git("rev-parse", "HEAD");
};
const write = (file: string, edit: (text: string) => string) => fs.writeFileSync(path.join(repo, file), edit(fs.readFileSync(path.join(repo, file), "utf8")));

/** Commits of the history, by what they did. */
const rev: Record<string, string> = {};

beforeAll(() => {
    repo = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-diff-"));
    fs.cpSync(path.join(REPO_ROOT, "test", "fixtures", "cadence-tree"), repo, { recursive: true });
    execFileSync("git", ["init", "-q", "-b", "main", repo]);
    rev["0.1.0"] = commit("first release");
    git("tag", "0.1.0");
    write("platform/apps/podinfo.yaml", (t) => t.replace("replicaCount: 1", "replicaCount: 2"));
    rev["0.1.1"] = commit("two replicas");
    git("tag", "0.1.1");
    // The change under review: values through the ConfigMap, a new Secret value, the extras layer gone.
    write("platform/apps/podinfo.yaml", (t) =>
        t.replace("message: hello", "message: hello from main").replace("first-password-not-real", "second-password-not-real"),
    );
    write("clusters/development/platform.yaml", (t) => t.slice(0, t.lastIndexOf("---\n")));
    rev["change"] = commit("the change");
    // Production's pin moved, then moved back.
    write("clusters/production/platform.yaml", (t) => t.replace('tag: "0.1.0"', 'tag: "0.1.1"'));
    rev["pin"] = commit("production to 0.1.1");
    write("clusters/production/platform.yaml", (t) => t.replace('tag: "0.1.1"', 'tag: "0.1.0"'));
    rev["unpin"] = commit("production back to 0.1.0");
    write("clusters/staging/platform.yaml", (t) => t.replace('semver: "0.1.x"', 'semver: "0.1.0 - 0.1.0"'));
    rev["range"] = commit("staging narrowed");
});
afterAll(() => fs.rmSync(repo, { recursive: true, force: true }));

const envOf = (diffs: EnvironmentDiff[], env: string) => diffs.find((d) => d.env === env)!;
const summary = (d: EnvironmentDiff) => d.changes.map((c) => `${c.change} ${c.id}`);

describe("what each environment gets from a change", () => {
    let diffs: EnvironmentDiff[];
    beforeAll(() => {
        diffs = diffEnvironments({ root: repo, base: rev["0.1.1"], head: rev["change"] });
    });

    it("development follows main: everything, on merge, with the removed layer called out", () => {
        const d = envOf(diffs, "development");
        expect(d.when).toBe("on merge (it follows main)");
        expect(summary(d)).toEqual([
            "removed Kustomization flux-system/extras",
            "removed Namespace extras",
            "changed ConfigMap podinfo/podinfo-values",
            "changed HelmRelease podinfo/podinfo",
            "changed Secret podinfo/podinfo-auth",
        ]);
        expect(d.dangers).toEqual([
            "Kustomization flux-system/extras is removed with prune: true, so everything it applied is deleted",
            "Namespace extras is removed, and everything in it",
        ]);
    });

    it("shows a HelmRelease's values merged from its valuesFrom, as a unified diff", () => {
        const release = envOf(diffs, "development").changes.find((c) => c.id === "HelmRelease podinfo/podinfo")!;
        expect(release.diff).toMatch(/^-\s+message: hello\n\+\s+message: hello from main$/m);
        expect(release.diff).toContain("values (merged):");
        expect(release.file).toBe("platform/apps/podinfo.yaml");
    });

    it("shows that a Secret changed, never its value", () => {
        const secret = envOf(diffs, "development").changes.find((c) => c.id === "Secret podinfo/podinfo-auth")!;
        expect(secret.diff).toMatch(/^-\s+password: <redacted sha256:[0-9a-f]{12}>\n\+\s+password: <redacted sha256:[0-9a-f]{12}>$/m);
        expect(formatDiff(diffs, "markdown")).not.toMatch(/first-password|second-password/);
    });

    it("staging runs the newest release its range selects, and gets the change with the next release", () => {
        const d = envOf(diffs, "staging");
        expect(d.sides.now).toBe("release 0.1.1 (the newest 0.1.x)");
        expect(d.when).toBe("with the next release tag that 0.1.x selects (now 0.1.1)");
        expect(summary(d)).toEqual(["changed ConfigMap podinfo/podinfo-values", "changed HelmRelease podinfo/podinfo", "changed Secret podinfo/podinfo-auth"]);
    });

    it("production gets nothing until its pin moves, and says how much is waiting", () => {
        const d = envOf(diffs, "production");
        expect(d.changes).toEqual([]);
        expect(d.when).toBe(`no change until the pin moves; 3 changes are waiting on ${rev["change"]} since 0.1.0`);
    });
});

describe("moving production's pin", () => {
    it("is what production gets, on merge", () => {
        const d = envOf(diffEnvironments({ root: repo, base: rev["change"], head: rev["pin"], envs: ["production"] }), "production");
        expect(d.when).toBe("on merge: the pin moves from 0.1.0 to 0.1.1");
        expect(summary(d)).toEqual(["changed HelmRelease podinfo/podinfo", "changed OCIRepository flux-system/platform"]);
        expect(d.dangers).toEqual([]);
    });

    it("backwards is called out", () => {
        const d = envOf(diffEnvironments({ root: repo, base: rev["pin"], head: rev["unpin"], envs: ["production"] }), "production");
        expect(d.when).toBe("on merge: the pin moves from 0.1.1 to 0.1.0 (backwards)");
        expect(d.dangers).toEqual(["the production pin moves backwards, from 0.1.1 to 0.1.0"]);
    });
});

describe("changing staging's range", () => {
    it("says which release it selects before and after", () => {
        const d = envOf(diffEnvironments({ root: repo, base: rev["unpin"], head: rev["range"], envs: ["staging"] }), "staging");
        expect(d.when).toBe(
            "the range moves from 0.1.x (selects 0.1.1) to 0.1.0 - 0.1.0 (selects 0.1.0) on merge; the rest with the next release tag that 0.1.0 - 0.1.0 selects",
        );
    });
});

describe("a tag the clone does not have", () => {
    it("is named with the command that fetches it", () => {
        git("tag", "-d", "0.1.0");
        try {
            expect(() => diffEnvironments({ root: repo, base: rev["change"], head: rev["pin"], envs: ["production"] })).toThrow(
                /^0\.1\.0 is not in this clone \(fatal: .*\)\. Fix: fetch it, e\.g\. git fetch origin tag 0\.1\.0 --no-tags, or git fetch --tags$/,
            );
        } finally {
            git("tag", "0.1.0", rev["0.1.0"] ?? "");
        }
    });
});

describe("the unified diff", () => {
    it("keeps three lines of context and marks what it leaves out", () => {
        const before = ["a", "b", "c", "d", "e", "f", "g", "h", "i"].join("\n");
        expect(unifiedDiff(before, before.replace("e", "E"))).toBe([" b", " c", " d", "-e", "+E", " f", " g", " h", "…"].join("\n"));
    });
});
