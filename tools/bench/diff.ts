// `npm run diff` on the shipped tree between two commits, every environment on its cadence: the sample
// tree committed into a throw-away repository, released as the tags staging and production follow, then
// changed (podinfo's replicas), and diffed.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import { REPO_ROOT } from "../../lib/project";
import { diffEnvironments } from "../diff/diff";
import { median } from "./stats";

const RUNS = 3;

export function benchDiff(): void {
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), "bench-diff-"));
    try {
        for (const dir of ["clusters", "platform"]) fs.cpSync(path.join(REPO_ROOT, dir), path.join(repo, dir), { recursive: true });
        const git = (...args: string[]) =>
            execFileSync("git", ["-C", repo, "-c", "user.name=b", "-c", "user.email=b@example.com", ...args], { encoding: "utf8" });
        git("init", "-q", "-b", "main");
        git("add", "-A");
        git("commit", "-q", "-m", "release");
        // The tags the shipped staging (0.0.x) and production (0.0.6) follow.
        for (const tag of ["0.0.5", "0.0.6"]) git("tag", tag);
        const base = git("rev-parse", "HEAD").trim();
        const podinfo = path.join(repo, "platform", "services", "podinfo.yaml");
        fs.writeFileSync(podinfo, fs.readFileSync(podinfo, "utf8").replace(/replicaCount: \d+/, "replicaCount: 3"));
        git("commit", "-q", "-am", "change");
        const times: number[] = [];
        let changes = 0;
        for (let i = 0; i < RUNS; i++) {
            const start = performance.now();
            changes = diffEnvironments({ root: repo, base, head: "HEAD" }).reduce((n, d) => n + d.changes.length, 0);
            times.push(performance.now() - start);
        }
        console.log(
            `Flux diff of the shipped tree between two commits, every environment: ${(median(times) / 1000).toFixed(2)} s (target ≤ 2 s), ${changes} changes`,
        );
    } finally {
        fs.rmSync(repo, { recursive: true, force: true });
    }
}
