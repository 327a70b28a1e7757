import { describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as semver from "semver";
import { buildEnvironment, readyOrderOf, sharedKustomize } from "../lib/flux-build";
import { findPlatformSource, Manifest, readManifests, sameRepository, yamlFilesUnder } from "../lib/gitops-tree";
import { SAMPLE_TREE } from "./support/temp-repo";

// The sample tree as designed (its own copy, test/fixtures/sample-tree, so a team's tree in the checkout
// changes nothing here): cadence per environment and the order of the sample's layers. What any tree
// must satisfy (parsing, schemas, references, builds, layers the gate can wait for) is `npm run check`'s.

const ENVIRONMENTS = ["development", "staging", "production"];
const LAYERS = ["platform-services", "platform-service-configs", "platform-configs"];

function clusterManifests(env: string): Manifest[] {
    return yamlFilesUnder(SAMPLE_TREE, `clusters/${env}`)
        .map((f) => path.join(SAMPLE_TREE, f))
        .flatMap(readManifests);
}

it("no cluster folder carries flux bootstrap's gotk files: the operator owns the root sync", () => {
    const gotk = yamlFilesUnder(SAMPLE_TREE, "clusters").filter((f) => path.basename(f).startsWith("gotk-"));
    expect(gotk).toEqual([]);
});

it("labels what provides CRDs and controllers, so a teardown removes it last", () => {
    const labelled = [...ENVIRONMENTS.map((e) => `clusters/${e}`), "platform/services"]
        .flatMap((dir) =>
            yamlFilesUnder(SAMPLE_TREE, dir)
                .map((f) => path.join(SAMPLE_TREE, f))
                .flatMap(readManifests),
        )
        .filter((m) => m.metadata?.labels?.["gitops-platform.io/teardown"] === "provider")
        .map((m) => `${m.kind} ${m.metadata?.name}`);
    expect(labelled.sort()).toEqual([
        "HelmRelease cert-manager",
        "Kustomization platform-services",
        "Kustomization platform-services",
        "Kustomization platform-services",
    ]);
});

describe("each environment has its own cadence", () => {
    it("development tracks the main branch of the repository", () => {
        const source = findPlatformSource(SAMPLE_TREE, "clusters/development");
        expect(source).toMatchObject({ kind: "GitRepository", ref: { branch: "main" }, secretName: "platform-repository" });
    });

    it("staging follows a semver range of platform artifacts", () => {
        const source = findPlatformSource(SAMPLE_TREE, "clusters/staging");
        expect(source).toMatchObject({ kind: "OCIRepository", secretName: "platform-repository" });
        expect(Object.keys(source!.ref)).toEqual(["semver"]);
        expect(semver.validRange(source!.ref.semver)).not.toBeNull();
        expect(semver.valid(source!.ref.semver)).toBeNull();
    });

    it("production pins the platform to a tag and the digest it was published with", () => {
        const source = findPlatformSource(SAMPLE_TREE, "clusters/production");
        expect(source).toMatchObject({ kind: "OCIRepository", secretName: "platform-repository" });
        expect(Object.keys(source!.ref)).toEqual(["tag", "digest"]);
        expect(semver.valid(source!.ref.tag)).toBe(source!.ref.tag);
        expect(source!.ref.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    });

    it("staging and production pull the same artifact repository", () => {
        expect(findPlatformSource(SAMPLE_TREE, "clusters/staging")?.url).toBe(findPlatformSource(SAMPLE_TREE, "clusters/production")?.url);
    });
});

describe.each(ENVIRONMENTS)("the platform layers of %s", (env) => {
    const kustomizations = () =>
        new Map(
            clusterManifests(env)
                .filter((m) => m.kind === "Kustomization" && m.apiVersion?.startsWith("kustomize.toolkit.fluxcd.io/"))
                .map((m) => [m.metadata?.name, m]),
        );

    it("are exactly services, service-configs and configs, each waiting for the one before", () => {
        const ks = kustomizations();
        expect([...ks.keys()].map((k) => k ?? "").sort((a, b) => a.localeCompare(b))).toEqual([...LAYERS].sort((a, b) => a.localeCompare(b)));
        expect(LAYERS.map((name) => ks.get(name)?.spec?.dependsOn)).toEqual([
            undefined,
            [{ name: "platform-services" }],
            [{ name: "platform-service-configs" }],
        ]);
    });

    it("prune, wait with a timeout, and pull from the platform source in a folder that exists", () => {
        const sourceKind = findPlatformSource(SAMPLE_TREE, `clusters/${env}`)?.kind;
        for (const [name, k] of kustomizations()) {
            const spec = k.spec ?? {};
            expect([name, spec.prune, spec.wait, typeof spec.timeout]).toEqual([name, true, true, "string"]);
            expect([name, spec.sourceRef]).toEqual([name, { kind: sourceKind, name: "platform" }]);
            expect([name, fs.existsSync(path.join(SAMPLE_TREE, String(spec.path)))]).toEqual([name, true]);
        }
    });

    it(`substitutes the environment name into platform/configs`, () => {
        expect(kustomizations().get("platform-configs")?.spec?.postBuild).toEqual({ substitute: { cluster_env: env } });
    });
});

it("installs cert-manager from its OCI registry, its CRDs through the chart's own value", () => {
    const manifests = readManifests(path.join(SAMPLE_TREE, "platform/services/cert-manager.yaml"));
    const repository = manifests.find((m) => m.kind === "HelmRepository");
    const release = manifests.find((m) => m.kind === "HelmRelease");
    expect(repository?.spec).toMatchObject({ type: "oci", url: "oci://quay.io/jetstack/charts" });
    // Helm's `crds` policy has no effect on CRDs the chart templates; only the chart value installs them.
    expect(JSON.stringify(release?.spec ?? {})).not.toContain("CreateReplace");
    expect((release?.spec as { values?: { crds?: unknown } } | undefined)?.values?.crds).toMatchObject({ enabled: true });
});

describe("what pulumi up waits for in a cluster folder", () => {
    it("is every source, then every Kustomization after what it dependsOn, whatever order the files say, and nothing without a Ready condition", () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-ready-order-"));
        try {
            fs.mkdirSync(path.join(root, "clusters", "sandbox-x"), { recursive: true });
            const ks = (name: string, dependsOn: string[]) =>
                `apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: ${name}, namespace: flux-system}\n` +
                `spec: {dependsOn: [${dependsOn.map((d) => `{name: ${d}}`).join(", ")}], interval: 10m, path: ./${name}, prune: true, sourceRef: {kind: GitRepository, name: platform}}\n`;
            fs.writeFileSync(
                path.join(root, "clusters", "sandbox-x", "a-layers.yaml"),
                [ks("apps", ["configs"]), ks("configs", ["services"]), ks("services", []), ks("loop-a", ["loop-b"]), ks("loop-b", ["loop-a"])].join("---\n"),
            );
            fs.writeFileSync(
                path.join(root, "clusters", "sandbox-x", "b-sources.yaml"),
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: platform, namespace: flux-system}\nspec: {url: https://example.invalid/x.git}\n" +
                    "---\napiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Alert\nmetadata: {name: no-ready-condition, namespace: flux-system}\nspec: {}\n" +
                    "---\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a-layers.yaml]\n",
            );
            const built = buildEnvironment(root, "clusters/sandbox-x", { kustomize: sharedKustomize(), rootOnly: true });
            expect(readyOrderOf(built.root.map((o) => o.manifest)).map((r) => `${r.kind} ${r.namespace}/${r.name}`)).toEqual([
                "GitRepository flux-system/platform",
                "Kustomization flux-system/services",
                "Kustomization flux-system/configs",
                "Kustomization flux-system/apps",
                // A dependsOn cycle, which Flux would never reconcile either, is listed rather than looped on.
                "Kustomization flux-system/loop-b",
                "Kustomization flux-system/loop-a",
            ]);
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });
});

describe("one repository, however its URL is spelled", () => {
    it.each([
        ["https://gitlab.com/team/platform.git", "https://gitlab.com/team/platform", true],
        ["https://GitLab.com/team/platform/", "https://gitlab.com/team/platform.git", true],
        ["ssh://git@gitlab.com/team/platform.git", "https://gitlab.com/team/platform", true],
        ["git@gitlab.com:team/platform.git", "https://gitlab.com/team/platform", true],
        // Paths are case-sensitive on most Git hosts, and a fork is another repository.
        ["https://gitlab.com/team/Platform", "https://gitlab.com/team/platform", false],
        ["https://gitlab.com/alice/platform", "https://gitlab.com/team/platform", false],
        // An OCI artifact is never the Git repository it was published from.
        ["oci://registry.gitlab.com/team/platform", "https://registry.gitlab.com/team/platform", false],
    ])("%s and %s: %s", (a, b, same) => {
        expect(sameRepository(a, b)).toBe(same);
        expect(sameRepository(b, a)).toBe(same);
    });
});
