import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../../lib/project";
import { configValue, listStacks, readStackDocument } from "../../lib/stack-files";

/**
 * A copy of the repository's stack files and GitOps tree in a new temporary folder, for tests and
 * benchmarks that change files. The caller removes it. Sandboxes a branch has committed are left out:
 * the copy holds the long-lived stacks the fixtures are written for (a test wanting a sandbox forks one).
 */
export function copyOfRepo(prefix: string, dirs: string[] = ["stacks", "clusters", "platform"]): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `gitops-${prefix}-`));
    const sandboxes = listStacks(REPO_ROOT).filter((s) => configValue(readStackDocument(REPO_ROOT, s), "sandbox") !== undefined);
    const excluded = new Set(sandboxes.flatMap((s) => [path.join("stacks", `Pulumi.${s}.yaml`), path.join("clusters", s)]));
    for (const dir of dirs) {
        fs.cpSync(path.join(REPO_ROOT, dir), path.join(root, dir), { recursive: true, filter: (from) => !excluded.has(path.relative(REPO_ROOT, from)) });
    }
    return root;
}

/**
 * Adds `manifests` valid manifests (HelmReleases of podinfo and ConfigMaps, ten to a file) under
 * `clusters/<cluster>/apps` of a copy: the large cluster folder the benchmarks time.
 */
export function addLargeAppsFolder(root: string, cluster: string, manifests: number): void {
    const apps = path.join(root, "clusters", cluster, "apps");
    fs.mkdirSync(apps, { recursive: true });
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
}
