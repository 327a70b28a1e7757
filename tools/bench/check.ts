// The GitOps tree check's throughput on a generated tree of 1,000 manifests.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import { checkTree, loadSchemaValidator } from "../check/tree-check";
import { REPO_ROOT } from "../../lib/project";
import { median } from "./stats";

const RUNS = 3;

function generatedTree(manifests: number): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-bench-check-"));
    fs.cpSync(path.join(REPO_ROOT, "platform"), path.join(root, "platform"), { recursive: true });
    fs.cpSync(path.join(REPO_ROOT, "clusters", "development"), path.join(root, "clusters", "bench"), { recursive: true });
    const apps = path.join(root, "clusters", "bench", "apps");
    fs.mkdirSync(apps);
    const perFile = 10;
    for (let f = 0; f < manifests / perFile; f++) {
        const docs = Array.from({ length: perFile }, (_, i) => {
            const n = `app-${f}-${i}`;
            return i % 2 === 0
                ? `apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: ${n}\n  namespace: podinfo\nspec:\n  interval: 30m\n  chart:\n    spec:\n      chart: podinfo\n      version: "6.x"\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n        namespace: podinfo\n  values:\n    replicaCount: 1\n`
                : `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${n}\n  namespace: apps\ndata:\n  owner: team-${f}\n`;
        });
        fs.writeFileSync(path.join(apps, `apps-${f}.yaml`), docs.join("---\n"));
    }
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
