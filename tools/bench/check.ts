// The GitOps tree check's throughput on a generated tree of 1,000 manifests.
import * as fs from "fs";
import * as path from "path";
import { performance } from "perf_hooks";
import { checkTree, loadSchemaValidator } from "../check/tree-check";
import { REPO_ROOT } from "../../lib/project";
import { median } from "./stats";
import { addLargeAppsFolder, copyOfRepo } from "../../test/support/temp-repo";

const RUNS = 3;

function generatedTree(manifests: number): string {
    const root = copyOfRepo("bench-check", ["platform"]);
    fs.cpSync(path.join(REPO_ROOT, "clusters", "development"), path.join(root, "clusters", "bench"), { recursive: true });
    addLargeAppsFolder(root, "bench", manifests);
    return root;
}

export async function benchCheck(): Promise<void> {
    const root = generatedTree(1000);
    const validator = await loadSchemaValidator(root);
    const times: number[] = [];
    let result = checkTree(root, validator);
    for (let i = 0; i < RUNS; i++) {
        const start = performance.now();
        result = checkTree(root, validator, { kustomize: false });
        times.push(performance.now() - start);
    }
    const ms = median(times);
    const errors = result.findings.filter((f) => f.severity === "error").length;
    console.log(
        `GitOps check: ${result.manifests} manifests in ${ms.toFixed(0)} ms, ${Math.round((result.manifests / ms) * 1000)} manifests/s (schemas, ranges, references, API gate; kustomize builds excluded), ${errors} errors`,
    );
    fs.rmSync(root, { recursive: true, force: true });
}
