// Benchmark: `fork` of a cluster folder holding 1,000 manifests. Run with `npm run bench:fork`.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import { fork } from "./sandbox";
import { REPO_ROOT } from "../../lib/project";
import { median } from "../bench/stats";

const FILES = 100;
const PER_FILE = 10;

function repoWithLargeCluster(): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-bench-"));
    fs.cpSync(path.join(REPO_ROOT, "stacks"), path.join(root, "stacks"), { recursive: true });
    fs.cpSync(path.join(REPO_ROOT, "clusters", "development"), path.join(root, "clusters", "development"), { recursive: true });
    const apps = path.join(root, "clusters", "development", "apps");
    fs.mkdirSync(apps);
    for (let f = 0; f < FILES; f++) {
        const docs = Array.from({ length: PER_FILE }, (_, i) =>
            [
                "apiVersion: kustomize.toolkit.fluxcd.io/v1",
                "kind: Kustomization",
                "metadata:",
                `  name: app-${f}-${i}`,
                "  namespace: flux-system",
                "spec:",
                "  interval: 10m",
                `  path: ./apps/app-${f}-${i}`,
                "  prune: true",
                "  sourceRef: {kind: GitRepository, name: platform}",
                "  postBuild:",
                "    substitute:",
                "      cluster_env: development",
            ].join("\n"),
        );
        fs.writeFileSync(path.join(apps, `apps-${f}.yaml`), docs.join("\n---\n") + "\n");
    }
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
        `fork of ${FILES * PER_FILE} manifests in ${FILES} files: median ${median(times).toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}) over 5 runs`,
    );
}

void main();
