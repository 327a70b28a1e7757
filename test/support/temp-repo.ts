import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../../lib/project";

/** The tree the tools' tests are written for: their own copy of the sample, not the checkout's tree. */
export const SAMPLE_TREE = path.join(REPO_ROOT, "test", "fixtures", "sample-tree");

/**
 * A copy of the sample tree's stack files and GitOps tree (test/fixtures/sample-tree) in a new
 * temporary folder, for tests and benchmarks that change files. The caller removes it. A team's own
 * `platform/` and `clusters/` in the checkout change nothing here.
 */
export function copyOfRepo(prefix: string, dirs: string[] = ["stacks", "clusters", "platform"]): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `gitops-${prefix}-`));
    for (const dir of dirs) fs.cpSync(path.join(SAMPLE_TREE, dir), path.join(root, dir), { recursive: true });
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
