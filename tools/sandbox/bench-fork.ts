// Benchmark: `fork` of a cluster folder holding 1,000 manifests. Run with `npm run bench:fork`.
import * as fs from "fs";
import * as path from "path";
import { performance } from "perf_hooks";
import { fork } from "./sandbox";
import { REPO_ROOT } from "../../lib/project";
import { median } from "../bench/stats";
import { addLargeAppsFolder, copyOfRepo } from "../../test/support/temp-repo";

const MANIFESTS = 1000;

function repoWithLargeCluster(): string {
    const root = copyOfRepo("bench-fork", ["stacks", "platform"]);
    fs.cpSync(path.join(REPO_ROOT, "clusters", "development"), path.join(root, "clusters", "development"), { recursive: true });
    addLargeAppsFolder(root, "development", MANIFESTS);
    return root;
}

async function main(): Promise<void> {
    const times: number[] = [];
    for (let run = 0; run < 5; run++) {
        const root = repoWithLargeCluster();
        const start = performance.now();
        await fork(
            { root, now: new Date(), run: async () => Promise.reject(Object.assign(new Error("ENOENT"), { code: "ENOENT" })), print: () => undefined },
            { sandbox: "bench", from: "development", branch: "bench" },
        );
        times.push(performance.now() - start);
        fs.rmSync(root, { recursive: true, force: true });
    }
    console.log(
        `fork of ${MANIFESTS} manifests in ${MANIFESTS / 10} files: median ${median(times).toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}) over 5 runs`,
    );
}

void main();
