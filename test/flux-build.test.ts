import { afterAll, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseConfig } from "../infra/config";
import { buildEnvironment, type BuiltObject, foldersRead, readyOrderOf, sharedKustomize, substitute } from "../lib/flux-build";
import { klogReason, kubectlKustomize } from "../lib/kustomize";
import { copyOfRepo } from "./support/temp-repo";
import { REPO_ROOT } from "../lib/project";

// The one builder of what Flux applies (lib/flux-build.ts), on a tree this project did not shape: a base
// plus overlays with patch files, namespaces from kustomization.yaml (test/fixtures/overlay-tree).

const FIXTURE = path.join(REPO_ROOT, "test", "fixtures", "overlay-tree");
const copies: string[] = [];
afterAll(() => copies.forEach((c) => fs.rmSync(c, { recursive: true, force: true })));

/** A copy of the fixture with `edit` applied, for the cases that break it. */
function variant(edit: (root: string) => void): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-overlay-"));
    copies.push(root);
    fs.cpSync(FIXTURE, root, { recursive: true });
    edit(root);
    return root;
}
const write = (root: string, file: string, text: string) => fs.writeFileSync(path.join(root, file), text);
const build = (root = FIXTURE) => buildEnvironment(root, "clusters/staging", { kustomize: sharedKustomize() });
const find = (b: ReturnType<typeof build>, kind: string, name: string) => b.objects.find((o) => o.manifest.kind === kind && o.manifest.metadata?.name === name);
/** A field of a built object's spec, by dotted path (numbers index lists). */
const specAt = (o: { manifest: { spec?: Record<string, unknown> } } | undefined, dotted: string): unknown =>
    dotted.split(".").reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined), o?.manifest.spec);

/** What pulumi up waits for, in order, from what a root sync applies. */
const readyOrder = (objects: BuiltObject[]) => readyOrderOf(objects.map((o) => o.manifest)).map((r) => `${r.kind} ${r.namespace}/${r.name}`);

describe("what Flux applies in an environment of an overlay tree", () => {
    it("builds each layer from its overlay: namespaces from the base's kustomization.yaml, values from the overlay's patch file", () => {
        const b = build();
        expect(b.findings).toEqual([]);
        const podinfo = find(b, "HelmRelease", "podinfo");
        expect(podinfo?.manifest.metadata?.namespace).toBe("podinfo");
        expect(podinfo?.manifest.spec).toMatchObject({ chart: { spec: { version: ">=1.x-rc" } }, values: { replicaCount: 1 } });
        expect(find(b, "HelmRelease", "cert-manager")?.manifest.spec).toMatchObject({ values: { crds: { enabled: true } } });
        expect(find(b, "HelmRepository", "jetstack")?.manifest.metadata?.namespace).toBe("cert-manager");
    });

    it("substitutes the layer's postBuild variables into what it applies", () => {
        const podinfo = find(build(), "HelmRelease", "podinfo");
        expect(specAt(podinfo, "values.ingress.hosts.0.host")).toBe("podinfo.staging.example");
    });

    it("traces every object to the file that declares it, and to the Kustomization that applies it", () => {
        const b = build();
        expect(find(b, "HelmRelease", "podinfo")).toMatchObject({ file: "apps/base/podinfo/release.yaml", appliedBy: "flux-system/apps" });
        expect(find(b, "GitRepository", "platform")).toMatchObject({ file: "clusters/staging/platform.yaml", appliedBy: "clusters/staging" });
    });

    it("builds the layers in dependsOn order, and the readiness order of the cluster folder from what it yields", () => {
        const b = build();
        expect(b.layers.map((l) => `${l.name} ${l.path}`)).toEqual([
            "infra-controllers infrastructure/controllers/staging",
            "infra-configs infrastructure/configs/staging",
            "apps apps/staging",
        ]);
        expect(readyOrder(b.root)).toEqual([
            "GitRepository flux-system/platform",
            "Kustomization flux-system/infra-controllers",
            "Kustomization flux-system/infra-configs",
            "Kustomization flux-system/apps",
        ]);
    });
});

describe("what pulumi up waits for in a cluster folder", () => {
    it("is what the folder's kustomization.yaml yields: a file it does not list is not waited for, the namespace it sets is honoured", () => {
        const root = variant((r) => {
            write(
                r,
                "clusters/staging/forgotten.yaml",
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: forgotten\n  namespace: flux-system\nspec:\n  interval: 1m\n  url: https://gitlab.example/x.git\n",
            );
            const k = fs.readFileSync(path.join(r, "clusters/staging/kustomization.yaml"), "utf8");
            write(r, "clusters/staging/kustomization.yaml", k.replace("kind: Kustomization\n", "kind: Kustomization\nnamespace: fleet\n"));
        });
        expect(readyOrder(buildEnvironment(root, "clusters/staging", { kustomize: sharedKustomize(), rootOnly: true }).root)).toEqual([
            "GitRepository fleet/platform",
            "Kustomization fleet/infra-controllers",
            "Kustomization fleet/infra-configs",
            "Kustomization fleet/apps",
        ]);
    });
});

describe("what kustomize-controller adds on top of the build", () => {
    it("applies a Kustomization's own patches, target namespace, name prefix and common labels, and names the patch", () => {
        const root = variant((r) => {
            const apps = fs.readFileSync(path.join(r, "clusters/staging/apps.yaml"), "utf8");
            write(
                r,
                "clusters/staging/apps.yaml",
                apps.replace(
                    "  postBuild:",
                    [
                        "  namePrefix: team-",
                        "  commonMetadata:",
                        "    labels:",
                        "      team: shop",
                        "  patches:",
                        "    - target: { kind: HelmRelease, name: podinfo }",
                        "      patch: |",
                        "        - op: replace",
                        "          path: /spec/values/replicaCount",
                        "          value: 3",
                        "  postBuild:",
                    ].join("\n"),
                ),
            );
        });
        const podinfo = find(build(root), "HelmRelease", "team-podinfo");
        expect(podinfo?.manifest.metadata?.labels).toEqual({ team: "shop" });
        expect(specAt(podinfo, "values.replicaCount")).toBe(3);
        expect(podinfo?.patchedBy).toEqual(["clusters/staging/apps.yaml: spec.patches[0]"]);
        expect(podinfo?.file).toBe("apps/base/podinfo/release.yaml");
    });

    it("sets a Kustomization's images, and substitutes from a ConfigMap the environment applies", () => {
        const root = variant((r) => {
            write(
                r,
                "apps/staging/web.yaml",
                'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/stefanprodan/podinfo:6.0.0\n          env: [{name: DOMAIN, value: "${domain}"}]\n',
            );
            const k = fs.readFileSync(path.join(r, "apps/staging/kustomization.yaml"), "utf8");
            write(r, "apps/staging/kustomization.yaml", k.replace("  - ../base/podinfo\n", "  - ../base/podinfo\n  - web.yaml\n"));
            write(
                r,
                "clusters/staging/vars.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n  namespace: flux-system\ndata:\n  domain: staging.example\n",
            );
            const c = fs.readFileSync(path.join(r, "clusters/staging/kustomization.yaml"), "utf8");
            write(r, "clusters/staging/kustomization.yaml", c.replace("  - apps.yaml\n", "  - apps.yaml\n  - vars.yaml\n"));
            const apps = fs.readFileSync(path.join(r, "clusters/staging/apps.yaml"), "utf8");
            write(
                r,
                "clusters/staging/apps.yaml",
                apps
                    .replace("  postBuild:\n", "  images:\n    - name: ghcr.io/stefanprodan/podinfo\n      newTag: 6.7.1\n  postBuild:\n")
                    .replace(
                        "      cluster_env: staging\n",
                        "      cluster_env: staging\n    substituteFrom:\n      - kind: ConfigMap\n        name: cluster-vars\n",
                    ),
            );
        });
        const b = build(root);
        expect(b.findings.filter((f) => f.severity === "error")).toEqual([]);
        const web = find(b, "Deployment", "web");
        const container = (specAt(web, "template.spec.containers") as { image: string; env: { value: string }[] }[])[0];
        expect(container?.image).toBe("ghcr.io/stefanprodan/podinfo:6.7.1");
        expect(container?.env[0]?.value).toBe("staging.example");
    });

    it("adds a Kustomization's components, named relative to its path", () => {
        const root = variant((r) => {
            fs.mkdirSync(path.join(r, "apps/components/monitored"), { recursive: true });
            write(
                r,
                "apps/components/monitored/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n  - pairs:\n      monitoring: enabled\n",
            );
            const apps = fs.readFileSync(path.join(r, "clusters/staging/apps.yaml"), "utf8");
            write(r, "clusters/staging/apps.yaml", apps.replace("  postBuild:\n", "  components:\n    - ../components/monitored\n  postBuild:\n"));
        });
        const b = build(root);
        expect(b.findings.filter((f) => f.severity === "error")).toEqual([]);
        expect(find(b, "HelmRelease", "podinfo")?.manifest.metadata?.labels).toEqual({ monitoring: "enabled" });
        expect(find(b, "Kustomization", "infra-configs")?.manifest.metadata?.labels).toBeUndefined();
    });

    it("reports a Kustomization patch whose target matches nothing: it would never be applied", () => {
        const root = variant((r) => {
            const apps = fs.readFileSync(path.join(r, "clusters/staging/apps.yaml"), "utf8");
            write(
                r,
                "clusters/staging/apps.yaml",
                apps.replace(
                    "  postBuild:",
                    "  patches:\n    - target: { kind: HelmRelease, name: podnfo }\n      patch: |\n        - op: replace\n          path: /spec/values/replicaCount\n          value: 2\n  postBuild:",
                ),
            );
        });
        expect(build(root).findings).toContainEqual({
            severity: "error",
            file: "clusters/staging/apps.yaml",
            object: "Kustomization flux-system/apps",
            field: "spec.patches[0].target",
            message:
                'matches nothing this Kustomization applies, so the patch is never applied. Fix: correct the target ({"kind":"HelmRelease","name":"podnfo"})',
        });
    });

    it("substitutes as Flux does: defaults, escapes, numbers stay numbers, and says when a variable has no value", () => {
        expect(substitute("a: ${x:=1}\nb: $${x}\nc: ${y}\nd: ${z:-zed}", { y: "2" })).toEqual({ text: "a: 1\nb: ${x}\nc: 2\nd: zed", unset: [] });
        expect(substitute("host: ${nope}.example", {})).toEqual({ text: "host: .example", unset: ["nope"] });
    });

    it("leaves an object annotated substitute: disabled as it is", () => {
        const root = variant((r) => {
            const release = fs.readFileSync(path.join(r, "apps/base/podinfo/release.yaml"), "utf8");
            write(
                r,
                "apps/base/podinfo/release.yaml",
                release.replace("  name: podinfo\n", "  name: podinfo\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n"),
            );
        });
        const podinfo = find(build(root), "HelmRelease", "podinfo");
        expect(specAt(podinfo, "values.ingress.hosts.0.host")).toBe("podinfo.${cluster_env}.example");
    });

    it("says a source it cannot build from is outside the repository, instead of skipping it silently", () => {
        const root = variant((r) => {
            fs.appendFileSync(
                path.join(r, "clusters/staging/platform.yaml"),
                "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: shop\n  namespace: flux-system\nspec:\n  interval: 1m\n  url: https://gitlab.example/shop/deploy.git\n  ref:\n    branch: main\n",
            );
            fs.appendFileSync(
                path.join(r, "clusters/staging/apps.yaml"),
                "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: shop\n  namespace: flux-system\nspec:\n  interval: 10m\n  sourceRef:\n    kind: GitRepository\n    name: shop\n  path: ./deploy\n  prune: true\n",
            );
        });
        expect(build(root).findings).toEqual([
            {
                severity: "warning",
                file: "clusters/staging/apps.yaml",
                object: "Kustomization flux-system/shop",
                field: "spec.sourceRef",
                message: "not built: GitRepository flux-system/shop is outside this repository",
            },
        ]);
    });

    it("reports a failing kustomize build whole, as klog prints a long error", () => {
        expect(klogReason('E1206 run.go:72] "command failed" err=<\n\taccumulating resources: first line\n\tsecond line: detail\n >\n')).toBe(
            "accumulating resources: first line\nsecond line: detail",
        );
        const root = variant((r) => write(r, "apps/staging/kustomization.yaml", "resources:\n  - ../base/podinfo\n  - missing.yaml\n"));
        const [finding] = build(root).findings;
        expect(finding).toMatchObject({ severity: "error", file: "clusters/staging/apps.yaml" });
        expect(finding?.message).toMatch(/^kustomize build of apps\/staging fails: .*missing\.yaml/s);
    });
});

describe("the program reads the same builder", () => {
    const config = () =>
        parseConfig(
            {
                "gitops-platform:environment": "staging",
                "gitops-platform:cluster": JSON.stringify({ backend: "kind" }),
                "gitops-platform:sync": JSON.stringify({ url: "https://gitlab.example/acme/fleet.git" }),
                "gitops-platform:platformRepository": JSON.stringify({ type: "git", url: "https://gitlab.example/acme/fleet.git" }),
                "gitops-platform:token": "a-token",
                "gitops-platform:alerts": JSON.stringify({ type: "generic" }),
                "gitops-platform:alertWebhookUrl": "https://hooks.example/x",
            },
            { stack: "staging", repoRoot: FIXTURE, env: {}, secretKeys: ["gitops-platform:token", "gitops-platform:alertWebhookUrl"] },
        );

    it("waits for the layers of an overlay tree in dependsOn order", () => {
        expect(config().fluxObjects.map((r) => `${r.kind} ${r.namespace}/${r.name}`)).toEqual([
            "GitRepository flux-system/platform",
            "Kustomization flux-system/infra-controllers",
            "Kustomization flux-system/infra-configs",
            "Kustomization flux-system/apps",
        ]);
    });

    it("alerts on the namespaces the overlays' releases and repositories really land in", () => {
        expect(config().alerts).toMatchObject({ helmReleaseNamespaces: ["cert-manager", "podinfo"], sourceNamespaces: ["cert-manager", "podinfo"] });
    });
});

describe("kustomize builds are reused across copies of a tree", () => {
    it("builds a layer Flux patches once, whichever folder the copy of the tree is in", () => {
        const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-kustomize-cache-"));
        const copies = [copyOfRepo("reuse-a"), copyOfRepo("reuse-b")];
        try {
            const kustomize = kubectlKustomize({ cacheDir, reads: (dir) => foldersRead(dir) });
            const entries = () => fs.readdirSync(cacheDir).length;
            // Production's platform-services layer carries a Flux patch: built through a wrapper kustomization.
            const first = buildEnvironment(copies[0]!, "clusters/production", { kustomize });
            const afterFirst = entries();
            const second = buildEnvironment(copies[1]!, "clusters/production", { kustomize: kubectlKustomize({ cacheDir, reads: (dir) => foldersRead(dir) }) });
            expect(afterFirst).toBeGreaterThan(0);
            expect(entries()).toBe(afterFirst);
            expect(second.objects.map((o) => o.manifest)).toEqual(first.objects.map((o) => o.manifest));
            expect(
                second.objects.find((o) => o.manifest.kind === "HelmRelease" && o.manifest.metadata?.name === "podinfo")?.manifest.spec?.["values"],
            ).toMatchObject({
                replicaCount: 2,
            });
        } finally {
            for (const dir of [cacheDir, ...copies]) fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
