import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "@jest/globals";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadCrdSchemas } from "./crd-schemas";
import { apiVerdict, kubernetesMinor } from "./deprecated-apis";
import { CheckResult, checkTree, fieldPath, fluxApiProblem, fluxReleaseFor, formatFinding, KUSTOMIZE_LIMITS, rangeProblem } from "./tree-check";
import { readFluxServedApis } from "../schemas/vendored";
import { REPO_ROOT } from "../../lib/project";
import { commitSandboxes } from "../../test/support/sandboxes";
import { copyOfRepo } from "../../test/support/temp-repo";
import { releaseTags } from "../../lib/releases";

describe("semver ranges in Flux's Masterminds syntax", () => {
    it.each([
        "0.0.x",
        "6.x",
        "1.x",
        "~1.2.0",
        "^1.2",
        ">=1.2.0 <2.0.0",
        ">= 1.2, < 2.0",
        "1.2.3",
        "*",
        "1.2.3 || 2.x",
        "1.2 - 1.4",
        "!= 1.2.3",
        ">=1.0, != 1.2.3",
        "=> 1.2",
        "=< 2.0",
        "=>1.2, =<2.0",
        // Masterminds reads a prerelease on an x-range (Flux's own docs show `>=1.0.0-0`).
        "1.x-rc",
        ">= 1.2.0-rc.1",
    ])("accepts %s", (r) => {
        expect(rangeProblem(r)).toBeUndefined();
    });
    it.each(["banana", "1.2.3.4", ">=> 1", "", "1.x; rm -rf", "!= banana", "=> banana", "=< x.y.z", "!=", "=>", "1.x ||", "|| 1.x", "1.x,"])(
        "refuses '%s'",
        (r) => {
            expect(rangeProblem(r)).toBeDefined();
        },
    );
});

describe("a team's own CRDs (npm run check -- --schemas <dir>)", () => {
    const validate = loadCrdSchemas(path.join(REPO_ROOT, "test", "fixtures", "crds"));
    const issuer = (spec: Record<string, unknown>) => ({ apiVersion: "cert-manager.io/v1", kind: "ClusterIssuer", metadata: { name: "ca" }, spec });

    it("validates an object of that group by the CRD's schema, unknown fields included", () => {
        expect(validate(issuer({ ca: { secretName: "root" } }))).toEqual([]);
        expect(validate(issuer({ ca: {} }))).toEqual([{ field: "spec.ca", message: "must have required property 'secretName'" }]);
        expect(validate(issuer({ selfSigend: {} }))).toEqual([
            {
                field: "spec.selfSigend",
                message: "is not a field of ClusterIssuer cert-manager.io/v1: the API server would drop it without a word. Fix: check the spelling",
            },
        ]);
    });

    it("leaves a kind no CRD of the folder covers to be counted as not validated", () => {
        expect(validate({ apiVersion: "cert-manager.io/v1", kind: "Certificate", metadata: { name: "c" } })).toBeUndefined();
    });
});

describe("the Flux APIs a stack's Flux release serves (schemas/flux-served-apis.json)", () => {
    const apis = readFluxServedApis();

    it.each([
        ["2.x", "2.9.4"],
        ["2.8.x", "2.8.8"],
        ["2.8.8", "2.8.8"],
        [">=2.7.0, <2.8.0", "2.7.5"],
        ["2.1.x", undefined],
    ])("'%s' installs Flux %s, the newest release flux-operator ships in the range", (range, release) => {
        expect(fluxReleaseFor(range, apis)).toBe(release);
    });

    it("knows Flux 2.9 dropped notification v1beta2 Alerts that 2.8 still served", () => {
        expect(fluxApiProblem("notification.toolkit.fluxcd.io/v1beta2", "Alert", "2.8.8", apis)).toBeUndefined();
        expect(fluxApiProblem("notification.toolkit.fluxcd.io/v1beta2", "Alert", "2.9.4", apis)).toBe(
            "Flux 2.9.4 no longer serves notification.toolkit.fluxcd.io/v1beta2 Alert (it serves v1beta3). Fix: use notification.toolkit.fluxcd.io/v1beta3",
        );
    });

    it("knows Flux 2.8 dropped HelmRelease v2beta2 that 2.7 still served", () => {
        expect(fluxApiProblem("helm.toolkit.fluxcd.io/v2beta2", "HelmRelease", "2.7.5", apis)).toBeUndefined();
        expect(fluxApiProblem("helm.toolkit.fluxcd.io/v2beta2", "HelmRelease", "2.8.8", apis)).toMatch(
            /^Flux 2\.8\.8 no longer serves helm\.toolkit\.fluxcd\.io\/v2beta2 HelmRelease/,
        );
    });

    it("leaves versions no Flux ever served, and other groups, to the schema check", () => {
        expect(fluxApiProblem("source.toolkit.fluxcd.io/v9", "HelmRepository", "2.9.4", apis)).toBeUndefined();
        expect(fluxApiProblem("apps/v1", "Deployment", "2.9.4", apis)).toBeUndefined();
    });
});

describe("API retirements from pluto's data (schemas/pluto-versions.yaml)", () => {
    it.each([
        ["resource.k8s.io/v1beta1", "ResourceClaim", "1.36", "removed"],
        ["resource.k8s.io/v1beta1", "ResourceClaim", "1.35", "deprecated"],
        ["resource.k8s.io/v1alpha3", "ResourceSlice", "1.34", "removed"],
        ["storage.k8s.io/v1alpha1", "VolumeAttributesClass", "kindest/node:v1.35.0", "removed"],
        ["storagemigration.k8s.io/v1alpha1", "StorageVersionMigration", "1.35", "removed"],
        ["admissionregistration.k8s.io/v1alpha1", "ValidatingAdmissionPolicy", "1.33", "removed"],
        ["cert-manager.io/v1alpha2", "Certificate", "1.35", "removed"],
        ["apps/v1", "Deployment", "1.36", "ok"],
    ])("%s %s on %s: %s", (apiVersion, kind, version, status) => {
        expect(apiVerdict(apiVersion, kind, version).status).toBe(status);
    });

    it("names cert-manager, not Kubernetes, for cert-manager's own APIs", () => {
        expect(apiVerdict("cert-manager.io/v1alpha2", "Certificate", "1.35")).toEqual({
            status: "removed",
            message: "cert-manager.io/v1alpha2 Certificate was removed in cert-manager 1.6; the platform installs cert-manager 1.x. Use cert-manager.io/v1",
        });
    });
});

describe("API retirements", () => {
    it("fails an API removed before the cluster's version, naming the replacement", () => {
        expect(apiVerdict("policy/v1beta1", "PodDisruptionBudget", "kindest/node:v1.35.0")).toEqual({
            status: "removed",
            message: "policy/v1beta1 PodDisruptionBudget was removed in Kubernetes 1.25; this cluster runs 1.35. Use policy/v1",
        });
    });
    it("warns about an API deprecated but still served", () => {
        expect(apiVerdict("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "1.30")).toEqual({
            status: "deprecated",
            message:
                "flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema is deprecated since Kubernetes 1.29, removed in 1.32. Use flowcontrol.apiserver.k8s.io/v1",
        });
    });
    it("accepts the same API on a cluster older than its deprecation", () => {
        expect(apiVerdict("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "1.28")).toEqual({ status: "ok" });
        expect(apiVerdict("apps/v1", "Deployment", "1.35")).toEqual({ status: "ok" });
    });
    it("reads the Kubernetes minor from an EKS version or a kind node image", () => {
        expect([kubernetesMinor("1.35"), kubernetesMinor("kindest/node:v1.34.2"), kubernetesMinor("v1.9.1")]).toEqual(["1.35", "1.34", "1.9"]);
    });
    it("names fields the way kubectl explain does", () => {
        expect(fieldPath("/spec/dependsOn/0/name")).toBe("spec.dependsOn[0].name");
    });
});

// The full check, schemas included, runs in Node: the schema packages are ES modules jest cannot load.
// One process checks every fixture.

interface Fixture {
    what: string;
    change: (root: string) => void;
    /** The one error (or warning) the broken tree must produce, as `npm run check` prints it. */
    /** Every finding, in the order printed, each by its beginning. */
    expected: string | string[];
}

function edit(root: string, file: string, from: string | RegExp, to: string): void {
    const full = path.join(root, file);
    const text = fs.readFileSync(full, "utf8");
    const next = text.replace(from, to);
    if (next === text) throw new Error(`fixture edit found nothing to change in ${file}`);
    fs.writeFileSync(full, next);
}

function append(root: string, file: string, yaml: string): void {
    fs.appendFileSync(path.join(root, file), `---\n${yaml}`);
}

const WIDGET_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`;
const CRDS_LAYER = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: platform-crds
  namespace: flux-system
spec:
  interval: 10m
  timeout: 5m
  sourceRef:
    kind: GitRepository
    name: platform
  path: ./platform/crds
  prune: true
  wait: true
`;

/** A layer of CRDs, and a Widget in platform/configs, which does not depend on that layer. */
function addCrdLayer(root: string): void {
    fs.mkdirSync(path.join(root, "platform/crds"));
    fs.writeFileSync(path.join(root, "platform/crds/widgets.yaml"), WIDGET_CRD);
    fs.writeFileSync(
        path.join(root, "platform/crds/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - widgets.yaml\n",
    );
    append(root, "clusters/development/platform.yaml", CRDS_LAYER);
    fs.writeFileSync(path.join(root, "platform/configs/widget.yaml"), "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: apps\n");
    fs.appendFileSync(path.join(root, "platform/configs/kustomization.yaml"), "  - widget.yaml\n");
}

const fixtures: Fixture[] = [
    {
        what: "an ArtifactGenerator on a stack that does not install source-watcher",
        change: (r) =>
            append(
                r,
                "clusters/development/platform.yaml",
                'apiVersion: source.extensions.fluxcd.io/v1beta1\nkind: ArtifactGenerator\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  sources:\n    - alias: repo\n      kind: GitRepository\n      name: platform\n  artifacts:\n    - name: apps\n      copy:\n        - from: "@repo/platform/configs/**"\n          to: "@artifact/"\n',
            ),
        expected: [
            "error   clusters/development/platform.yaml: ArtifactGenerator flux-system/apps: stack aws-development: ArtifactGenerator needs source-watcher, which this stack's flux.components does not install. Fix: add source-watcher to flux.components in stacks/Pulumi.aws-development.yaml",
            "error   clusters/development/platform.yaml: ArtifactGenerator flux-system/apps: stack development: ArtifactGenerator needs source-watcher, which this stack's flux.components does not install. Fix: add source-watcher to flux.components in stacks/Pulumi.development.yaml",
        ],
    },
    {
        what: "a source whose credentials Secret neither the tree nor the stack provides",
        change: (r) =>
            edit(
                r,
                "platform/services/podinfo.yaml",
                "  url: https://stefanprodan.github.io/podinfo\n",
                "  url: https://stefanprodan.github.io/podinfo\n  secretRef:\n    name: podinfo-auth\n",
            ),
        expected: [
            "warning platform/services/podinfo.yaml: HelmRepository podinfo/podinfo: spec.secretRef.name: no Secret podinfo/podinfo-auth in what clusters/development syncs, nor one the stack creates: it stays not Ready until that Secret exists. Fix: correct the name, add the Secret (sealed or SOPS-encrypted), or make sure something else creates it",
            "warning platform/services/podinfo.yaml: HelmRepository podinfo/podinfo: spec.secretRef.name: no Secret podinfo/podinfo-auth in what clusters/production syncs, nor one the stack creates: it stays not Ready until that Secret exists. Fix: correct the name, add the Secret (sealed or SOPS-encrypted), or make sure something else creates it",
            "warning platform/services/podinfo.yaml: HelmRepository podinfo/podinfo: spec.secretRef.name: no Secret podinfo/podinfo-auth in what clusters/staging syncs, nor one the stack creates: it stays not Ready until that Secret exists. Fix: correct the name, add the Secret (sealed or SOPS-encrypted), or make sure something else creates it",
        ],
    },
    {
        what: "a layer that waits with no timeout, so a failing health check holds for its whole interval",
        change: (r) => edit(r, "clusters/production/platform.yaml", "  timeout: 5m\n", ""),
        expected: [
            "warning clusters/production/platform.yaml: Kustomization flux-system/platform-service-configs: spec.timeout: is not set, so its health checks wait as long as its interval (10m) before Flux reports the failure. Fix: set spec.timeout, shorter than flux.readyTimeout",
        ],
    },
    {
        what: "a layer whose custom resources outlive their CRDs in a teardown (no dependsOn, no provider label)",
        change: addCrdLayer,
        expected: [
            "warning clusters/development/platform.yaml: Kustomization flux-system/platform-crds: is a layer of development but not of staging and production: environments should differ by patches, not by layers. Fix: add it to clusters/staging once it is ready to go there, or remove it",
            "warning clusters/development/platform.yaml: Kustomization flux-system/platform-crds: metadata.labels: applies the CRDs of example.com, which flux-system/platform-configs uses (Widget apps/w) without a dependsOn on it: the teardown may delete it first, and leave those objects' finalizers waiting. Fix: add dependsOn: [{name: platform-crds}] to flux-system/platform-configs, or label this layer gitops-platform.io/teardown: provider",
        ],
    },
    {
        what: "only the layer development has and the others lack, when the layer using custom resources depends on the layer applying their CRDs (the teardown orders them by itself)",
        change: (r) => {
            addCrdLayer(r);
            edit(
                r,
                "clusters/development/platform.yaml",
                "    - name: platform-service-configs\n",
                "    - name: platform-service-configs\n    - name: platform-crds\n",
            );
        },
        expected: [
            "warning clusters/development/platform.yaml: Kustomization flux-system/platform-crds: is a layer of development but not of staging and production: environments should differ by patches, not by layers. Fix: add it to clusters/staging once it is ready to go there, or remove it",
        ],
    },
    {
        what: "a layer that neither waits nor health-checks, so its Ready means applied",
        change: (r) => edit(r, "clusters/development/platform.yaml", "  wait: true\n", ""),
        expected: [
            "warning clusters/development/platform.yaml: Kustomization flux-system/platform-services: spec.wait: is not set, and no healthChecks either: Ready will mean applied, not running, so the readiness gate of pulumi up and the layers that dependsOn it do not wait for it. Fix: set spec.wait: true and a spec.timeout",
        ],
    },
    {
        what: "a file that is not YAML",
        change: (r) => edit(r, "platform/services/podinfo.yaml", "  name: podinfo\n---", "  name: podinfo\n  labels: [unclosed\n---"),
        expected: [
            "error   platform/services/podinfo.yaml: document 1 is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
            "error   platform/services/kustomization.yaml: kubectl kustomize fails: accumulating resources: accumulating resources from 'podinfo.yaml': MalformedYAMLError: yaml: line 5: did not find expected ',' or ']'",
        ],
    },
    {
        what: "a Kustomization path that does not exist",
        change: (r) => edit(r, "clusters/development/platform.yaml", "path: ./platform/configs", "path: ./platform/confgs"),
        expected:
            "error   clusters/development/platform.yaml: Kustomization flux-system/platform-configs: spec.path: './platform/confgs' does not exist in this repository. Fix: correct the path",
    },
    {
        what: "a sourceRef to an unknown source",
        change: (r) =>
            edit(r, "clusters/staging/platform.yaml", /name: platform\n  path: \.\/platform\/services/, "name: platfrm\n  path: ./platform/services"),
        expected:
            "error   clusters/staging/platform.yaml: Kustomization flux-system/platform-services: spec.sourceRef.name: no OCIRepository flux-system/platfrm in what clusters/staging syncs. Fix: correct the name or add the object",
    },
    {
        what: "a dependsOn on an unknown Kustomization",
        change: (r) => edit(r, "clusters/production/platform.yaml", "- name: platform-service-configs", "- name: platform-service-config"),
        expected:
            "error   clusters/production/platform.yaml: Kustomization flux-system/platform-configs: spec.dependsOn[0].name: no Kustomization flux-system/platform-service-config in what clusters/production syncs. Fix: correct the name or add the object",
    },
    {
        what: "an invalid semver range on an OCIRepository",
        change: (r) => edit(r, "clusters/staging/platform.yaml", 'semver: "0.0.x"', 'semver: "0.0.x.y"'),
        expected:
            "error   clusters/staging/platform.yaml: OCIRepository flux-system/platform: spec.ref.semver: '0.0.x.y' is not a valid semver range (Masterminds syntax): it has the improper constraint '0.0.x.y'. Fix: e.g. '1.2.x', '~1.2.0' or '>=1.2.0 <2.0.0'",
    },
    {
        what: "an invalid chart version range on a HelmRelease",
        change: (r) => edit(r, "platform/services/podinfo.yaml", 'version: "6.x"', 'version: ">=> 6"'),
        expected:
            "error   platform/services/podinfo.yaml: HelmRelease podinfo/podinfo: spec.chart.spec.version: '>=> 6' is not a valid semver range (Masterminds syntax): it has the improper constraint '>=> 6'. Fix: e.g. '1.2.x', '~1.2.0' or '>=1.2.0 <2.0.0'",
    },
    {
        what: "a field of the wrong type in a HelmRelease",
        change: (r) => edit(r, "platform/services/podinfo.yaml", "  interval: 30m", "  interval: 30"),
        expected: "error   platform/services/podinfo.yaml: HelmRelease podinfo/podinfo: spec.interval: must be string",
    },
    {
        what: "a value outside a Flux enum",
        change: (r) => edit(r, "clusters/production/platform.yaml", "  interval: 10m\n  url: oci://", "  interval: 10m\n  provider: azur\n  url: oci://"),
        expected:
            "error   clusters/production/platform.yaml: OCIRepository flux-system/platform: spec.provider: must be equal to one of the allowed values (generic, aws, azure, gcp)",
    },
    {
        what: "a Kubernetes object of the wrong shape",
        change: (r) => edit(r, "platform/configs/apps-namespace.yaml", "    - type: Container", "    - type: 12"),
        expected: "error   platform/configs/apps-namespace.yaml: LimitRange apps/default-container-resources: spec.limits[0].type: must be string",
    },
    {
        what: "a chart source that does not exist",
        change: (r) => edit(r, "platform/services/cert-manager.yaml", "        name: jetstack", "        name: jetstak"),
        // Once for each cluster folder that syncs the HelmRelease.
        expected: ["development", "production", "staging"].map(
            (env) =>
                `error   platform/services/cert-manager.yaml: HelmRelease cert-manager/cert-manager: spec.chart.spec.sourceRef.name: no HelmRepository cert-manager/jetstak in what clusters/${env} syncs. Fix: correct the name or add the object`,
        ),
    },
    {
        what: "an API removed before the stack's Kubernetes version",
        change: (r) =>
            append(
                r,
                "platform/configs/apps-namespace.yaml",
                "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: shop\n  namespace: apps\nspec:\n  minAvailable: 1\n",
            ),
        // Once for each stack whose cluster would receive it.
        expected: ["aws-development", "aws-production", "aws-staging", "development", "production", "staging"].map(
            (stack) =>
                `error   platform/configs/apps-namespace.yaml: PodDisruptionBudget apps/shop: apiVersion: stack ${stack}: policy/v1beta1 PodDisruptionBudget was removed in Kubernetes 1.25; this cluster runs 1.35. Use policy/v1`,
        ),
    },
    {
        what: "a removed API that a kustomization pulls in from a folder no Flux Kustomization names",
        change: (r) => {
            fs.mkdirSync(path.join(r, "platform/legacy"));
            fs.writeFileSync(
                path.join(r, "platform/legacy/kustomization.yaml"),
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - pdb.yaml\n",
            );
            fs.writeFileSync(
                path.join(r, "platform/legacy/pdb.yaml"),
                "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: shop\n  namespace: apps\nspec:\n  minAvailable: 1\n",
            );
            edit(r, "platform/configs/kustomization.yaml", "  - platform-info.yaml", "  - platform-info.yaml\n  - ../legacy");
        },
        expected: ["aws-development", "aws-production", "aws-staging", "development", "production", "staging"].map(
            (stack) =>
                `error   platform/legacy/pdb.yaml: PodDisruptionBudget apps/shop: apiVersion: stack ${stack}: policy/v1beta1 PodDisruptionBudget was removed in Kubernetes 1.25`,
        ),
    },
    {
        what: "a file its folder's kustomization.yaml does not list, which Flux never applies (and so no API verdict)",
        change: (r) =>
            fs.writeFileSync(
                path.join(r, "platform/configs/forgotten.yaml"),
                "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: shop\n  namespace: apps\nspec:\n  minAvailable: 1\n",
            ),
        expected:
            "warning platform/configs/forgotten.yaml: no stack's Flux applies anything in this file. Fix: list it in its folder's kustomization.yaml, or delete it",
    },
    {
        what: "a Flux API the stack's Flux release no longer serves, although Flux's schemas still describe it",
        change: (r) =>
            edit(
                r,
                "platform/services/podinfo.yaml",
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository",
                "apiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: HelmRepository",
            ),
        // Each stack judged against the Flux its flux.version installs: 2.x gets 2.9.4, 2.8.x and 2.8.8 get 2.8.8.
        expected: [
            ["aws-development", "2.9.4"],
            ["aws-production", "2.8.8"],
            ["aws-staging", "2.8.8"],
            ["development", "2.9.4"],
            ["production", "2.8.8"],
            ["staging", "2.8.8"],
        ].map(
            ([stack, flux]) =>
                `error   platform/services/podinfo.yaml: HelmRepository podinfo/podinfo: apiVersion: stack ${stack}: Flux ${flux} no longer serves source.toolkit.fluxcd.io/v1beta2 HelmRepository (it serves v1). Fix: use source.toolkit.fluxcd.io/v1`,
        ),
    },
    {
        what: "a stack whose Flux version matches no release its flux-operator ships",
        change: (r) => edit(r, "stacks/Pulumi.staging.yaml", 'version: "2.8.x"', 'version: "2.1.x"'),
        expected:
            "error   stacks/Pulumi.staging.yaml: gitops-platform:flux.version: '2.1.x' matches no Flux release flux-operator v0.58.0 ships (2.2.3 to 2.9.4). Fix: allow one of them",
    },
    {
        what: "an object of an API group no schema here knows, counted as not validated rather than passed",
        change: (r) =>
            append(r, "platform/configs/platform-info.yaml", "apiVersion: widgets.example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: apps\n"),
        expected: [],
    },
    {
        what: "a deprecated API, as a warning",
        change: (r) => append(r, "platform/configs/platform-info.yaml", "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: legacy\n  namespace: apps\n"),
        expected: ["aws-development", "aws-production", "aws-staging", "development", "production", "staging"].map(
            (stack) =>
                `warning platform/configs/platform-info.yaml: Endpoints apps/legacy: apiVersion: stack ${stack}: v1 Endpoints is deprecated since Kubernetes 1.33, no removal scheduled yet. Use discovery.k8s.io/v1 EndpointSlice`,
        ),
    },
    {
        what: "a production stack on a Flux range, refused by the check as the program refuses it (lib/flux-apis.ts)",
        change: (r) => edit(r, "stacks/Pulumi.production.yaml", 'version: "2.8.8"', 'version: "2.8.x"'),
        expected:
            "error   stacks/Pulumi.production.yaml: gitops-platform:flux.version: is the range '2.8.x', but production runs one known Flux version. Fix: pin an exact version, e.g. '2.8.8'",
    },
    {
        what: "a stack on a flux-operator whose Flux releases are not vendored",
        change: (r) => edit(r, "stacks/Pulumi.production.yaml", /operatorVersion: "[^"]+"/, 'operatorVersion: "0.57.0"'),
        expected:
            "error   stacks/Pulumi.production.yaml: gitops-platform:flux.operatorVersion: is 0.57.0, but this project knows which Flux releases flux-operator 0.58.0 ships, and no other's (schemas/flux-served-apis.json).",
    },
    {
        what: "a stack whose root sync path does not exist",
        change: (r) => edit(r, "stacks/Pulumi.staging.yaml", "    branch: main\n", "    branch: main\n    path: clusters/ghost\n"),
        expected:
            "error   stacks/Pulumi.staging.yaml: gitops-platform:sync.path: the root sync path 'clusters/ghost' does not exist. Fix: create it or correct sync.path",
    },
    {
        what: "a stack file that is not YAML",
        change: (r) => edit(r, "stacks/Pulumi.development.yaml", "config:\n", "config:\n  bad: [unclosed\n"),
        expected: "error   stacks/Pulumi.development.yaml: is not valid YAML:",
    },
    {
        what: "a kustomization.yaml listing a missing file",
        change: (r) => edit(r, "platform/service-configs/kustomization.yaml", "  - cluster-issuers.yaml", "  - cluster-issuers.yaml\n  - missing.yaml"),
        expected:
            // kustomize's whole reason, every line of it.
            "error   platform/service-configs/kustomization.yaml: kubectl kustomize fails: accumulating resources: accumulation err='accumulating resources from 'missing.yaml': " +
            "open platform/service-configs/missing.yaml: no such file or directory': must build at directory: not a valid directory: evalsymlink failure on 'platform/service-configs/missing.yaml'",
    },
    {
        what: "a kustomization pulling a remote resource, which is reported and never fetched",
        change: (r) =>
            edit(
                r,
                "platform/service-configs/kustomization.yaml",
                "  - cluster-issuers.yaml",
                "  - cluster-issuers.yaml\n  - https://raw.githubusercontent.com/example/manifests/main/extra.yaml\n  - github.com/example/manifests/base?ref=v1",
            ),
        expected: [
            "error   platform/service-configs/kustomization.yaml: resources[1]: 'https://raw.githubusercontent.com/example/manifests/main/extra.yaml' is fetched from the network when built. Fix: copy it into the repository and list the local path",
            "error   platform/service-configs/kustomization.yaml: resources[2]: 'github.com/example/manifests/base?ref=v1' is fetched from the network when built. Fix: copy it into the repository and list the local path",
        ],
    },
    {
        what: "a YAML alias bomb, reported instead of crashing the check",
        change: (r) =>
            fs.writeFileSync(
                path.join(r, "platform/configs/bomb.yaml"),
                `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb, namespace: apps}\ndata:\n  seed: &a "x"\n  many: [${Array.from({ length: 150 }, () => "*a").join(", ")}]\n`,
            ),
        expected: "error   platform/configs/bomb.yaml: document 1 cannot be read: Excessive alias count indicates a resource exhaustion attack",
    },
    {
        what: "a Flux API version no schema serves",
        change: (r) =>
            edit(
                r,
                "platform/services/podinfo.yaml",
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository",
                "apiVersion: source.toolkit.fluxcd.io/v9\nkind: HelmRepository",
            ),
        expected:
            "error   platform/services/podinfo.yaml: HelmRepository podinfo/podinfo: apiVersion: source.toolkit.fluxcd.io serves no version v9 (known: v1beta1, v1beta2, v1). Fix: use a served version, e.g. source.toolkit.fluxcd.io/v1",
    },
    {
        what: "a misspelt kind of a known API",
        change: (r) => edit(r, "platform/services/podinfo.yaml", "kind: HelmRepository", "kind: HelmRepo"),
        expected: [
            "error   platform/services/podinfo.yaml: HelmRepo podinfo/podinfo: kind: source.toolkit.fluxcd.io v1 has no kind HelmRepo. Fix: check the spelling",
            // ...and the HelmRelease pulling from it now names a source no cluster folder holds.
            ...["development", "production", "staging"].map(
                (env) =>
                    `error   platform/services/podinfo.yaml: HelmRelease podinfo/podinfo: spec.chart.spec.sourceRef.name: no HelmRepository podinfo/podinfo in what clusters/${env} syncs. Fix: correct the name or add the object`,
            ),
        ],
    },
    {
        what: "an object without a name",
        change: (r) => edit(r, "platform/configs/platform-info.yaml", "  name: platform-info\n", ""),
        expected: [
            "error   platform/configs/kustomization.yaml: kubectl kustomize fails: accumulating resources: accumulation err='accumulating resources from 'platform-info.yaml': missing metadata.name",
            "error   platform/configs/platform-info.yaml: ConfigMap apps/(no name): needs apiVersion, kind and metadata.name",
        ],
    },
];

/** A team's own tree (test/fixtures/overlay-tree): a base plus overlays with patch files, namespaces from kustomization.yaml. */
const OVERLAY_TREE = path.join(REPO_ROOT, "test", "fixtures", "overlay-tree");

/** Mistakes in that tree Flux would not catch before applying, each reported where it is. */
const overlayFixtures: Fixture[] = [
    {
        what: "a HelmRelease whose HelmRepository does not exist, behind an overlay",
        change: (r) => edit(r, "apps/base/podinfo/release.yaml", "        name: podinfo\n", "        name: podinf0\n"),
        expected:
            "error   apps/base/podinfo/release.yaml: HelmRelease podinfo/podinfo: spec.chart.spec.sourceRef.name: no HelmRepository podinfo/podinf0 in what clusters/staging syncs. Fix: correct the name or add the object",
    },
    {
        what: "a dependsOn cycle between Kustomizations",
        change: (r) =>
            edit(
                r,
                "clusters/staging/infrastructure.yaml",
                "    gitops-platform.io/teardown: provider\nspec:\n",
                "    gitops-platform.io/teardown: provider\nspec:\n  dependsOn:\n    - name: apps\n",
            ),
        expected:
            "error   clusters/staging/apps.yaml: Kustomization flux-system/apps: spec.dependsOn: is part of a dependsOn cycle (flux-system/apps -> flux-system/infra-configs -> flux-system/infra-controllers -> flux-system/apps): Flux never reconciles any of them. Fix: remove one of the dependencies",
    },
    {
        what: "a misspelt field, which the API server would drop",
        change: (r) => edit(r, "clusters/staging/apps.yaml", "  dependsOn:", "  dependOn:"),
        expected:
            "error   clusters/staging/apps.yaml: Kustomization flux-system/apps: spec.dependOn: is not a field of Kustomization kustomize.toolkit.fluxcd.io/v1: the API server would drop it without a word. Fix: check the spelling",
    },
    {
        what: "a source named like the root sync the FluxInstance owns",
        change: (r) => {
            edit(r, "clusters/staging/platform.yaml", "  name: platform\n", "  name: flux-system\n");
            for (const f of ["clusters/staging/infrastructure.yaml", "clusters/staging/apps.yaml"]) {
                fs.writeFileSync(path.join(r, f), fs.readFileSync(path.join(r, f), "utf8").replaceAll("    name: platform\n", "    name: flux-system\n"));
            }
        },
        expected:
            "error   clusters/staging/platform.yaml: GitRepository flux-system/flux-system: metadata.name: is the name of the root sync the FluxInstance owns: what clusters/staging syncs would overwrite it. Fix: rename it",
    },
    {
        what: "a chart version range with a trailing ||, set by an overlay's patch file",
        change: (r) => edit(r, "apps/staging/podinfo-values.yaml", '">=1.x-rc"', '">=1.x-rc ||"'),
        expected:
            "error   apps/base/podinfo/release.yaml: HelmRelease podinfo/podinfo: spec.chart.spec.version: '>=1.x-rc ||' is not a valid semver range (Masterminds syntax): it has an empty alternative around '||'. Fix: e.g. '1.2.x', '~1.2.0' or '>=1.2.0 <2.0.0' (set by the patch apps/staging/podinfo-values.yaml)",
    },
    {
        what: "a Kustomization patch whose target matches nothing, so it is never applied",
        change: (r) =>
            edit(
                r,
                "clusters/staging/apps.yaml",
                "  postBuild:",
                "  patches:\n    - target:\n        kind: HelmRelease\n        name: podnifo\n      patch: |\n        - op: replace\n          path: /spec/values/replicaCount\n          value: 3\n  postBuild:",
            ),
        expected:
            'error   clusters/staging/apps.yaml: Kustomization flux-system/apps: spec.patches[0].target: matches nothing this Kustomization applies, so the patch is never applied. Fix: correct the target ({"kind":"HelmRelease","name":"podnifo"})',
    },
    {
        what: "an object of the wrong shape in a layer outside clusters/ and platform/",
        change: (r) => edit(r, "infrastructure/controllers/base/cert-manager/release.yaml", "  interval: 30m", "  interval: 30"),
        expected: "error   infrastructure/controllers/base/cert-manager/release.yaml: HelmRelease cert-manager/cert-manager: spec.interval: must be string",
    },
];

describe("npm run check", () => {
    const roots = new Map<string, string>();
    let results: Record<string, CheckResult>;

    beforeAll(async () => {
        const sandboxed = copyOfRepo("check-sandboxes");
        await commitSandboxes(sandboxed);
        roots.set("committed sandboxes", sandboxed);
        // The same tree without them (this checkout may carry sandboxes of its own).
        roots.set("long-lived stacks only", copyOfRepo("check-plain"));
        for (const f of fixtures) {
            const root = copyOfRepo("check");
            f.change(root);
            roots.set(f.what, root);
        }
        roots.set("overlay tree", OVERLAY_TREE);
        for (const f of overlayFixtures) {
            const root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-check-overlay-"));
            fs.cpSync(OVERLAY_TREE, root, { recursive: true });
            f.change(root);
            roots.set(f.what, root);
        }
        const args = ["-r", "ts-node/register/transpile-only", path.join(__dirname, "cli.ts"), "--json", ...[...roots.values()].flatMap((r) => ["--root", r])];
        // The CLI as `npm run check` runs it: ts-node transpiling through swc.
        const env = { ...process.env, TS_NODE_SWC: "true" };
        results = JSON.parse(execFileSync(process.execPath, args, { cwd: REPO_ROOT, encoding: "utf8", timeout: 60000, env })) as Record<string, CheckResult>;
    });

    afterAll(() => {
        for (const [what, root] of roots) if (what !== "overlay tree") fs.rmSync(root, { recursive: true, force: true });
    });

    it("counts an object no schema knows as not validated (the number npm run check prints in its summary)", () => {
        const root = roots.get("an object of an API group no schema here knows, counted as not validated rather than passed") ?? "";
        expect((results[root]?.unvalidated ?? 0) - (results[roots.get("long-lived stacks only") ?? ""]?.unvalidated ?? 0)).toBe(1);
    });

    it("passes a tree with a committed sandbox of every stack, kind and EKS, with no error and no warning", () => {
        const root = roots.get("committed sandboxes") ?? "";
        expect(results[root]?.findings.map(formatFinding)).toEqual([]);
        // Each sandbox's folder was checked like any other: six more copies of the cluster manifests.
        expect(results[root]?.manifests).toBeGreaterThan(results[roots.get("long-lived stacks only") ?? ""]?.manifests ?? Infinity);
    });

    it("passes the sample tree with no error and no warning", () => {
        expect(results[roots.get("long-lived stacks only") ?? ""]?.findings.map(formatFinding)).toEqual([]);
        expect(results[roots.get("long-lived stacks only") ?? ""]?.manifests).toBeGreaterThan(25);
    });

    it("passes a team's overlay tree (base plus overlays, patch files, namespaces from kustomization.yaml) with no error and no warning", () => {
        expect(results[OVERLAY_TREE]?.findings.map(formatFinding)).toEqual([]);
        // Its layers under infrastructure/ and apps/ were judged too, not only clusters/.
        expect(results[OVERLAY_TREE]?.manifests).toBeGreaterThanOrEqual(11);
    });

    it.each([...fixtures, ...overlayFixtures].map((f) => [f.what, f] as const))("catches %s, naming file, object and field", (_what, fixture) => {
        const printed = results[roots.get(fixture.what) ?? ""]?.findings.map(formatFinding);
        const expected = typeof fixture.expected === "string" ? [fixture.expected] : fixture.expected;
        // Exactly these findings: the mistake is reported where it has effect, and nothing else is blamed.
        expect(printed).toEqual(expected.map((e) => expect.stringMatching(new RegExp(`^${e.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`))));
    });
});

describe("kubectl kustomize within limits", () => {
    let root: string;
    const saved = { ...KUSTOMIZE_LIMITS };
    beforeAll(() => {
        root = copyOfRepo("check-limits");
        // Only the layer under test is built: one kubectl run per case.
        for (const dir of ["clusters", "platform/services", "platform/service-configs"]) fs.rmSync(path.join(root, dir), { recursive: true });
        // A valid layer whose build is about 1.2 MB: 120 ConfigMaps of 10 kB each.
        const value = "x".repeat(10_000);
        const names = Array.from({ length: 120 }, (_, i) => `big-${i}.yaml`);
        names.forEach((name, i) =>
            fs.writeFileSync(
                path.join(root, "platform/configs", name),
                `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-${i}\n  namespace: apps\ndata:\n  v: ${value}\n`,
            ),
        );
        fs.appendFileSync(path.join(root, "platform/configs/kustomization.yaml"), names.map((n) => `  - ${n}\n`).join(""));
    });
    afterEach(() => {
        Object.assign(KUSTOMIZE_LIMITS, saved);
    });
    afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

    const kustomizeFindings = () =>
        checkTree(root, () => [])
            .findings.map(formatFinding)
            .filter((f) => f.includes("kubectl kustomize"));

    it("builds a layer larger than Node's default 1 MB child-process buffer", () => {
        expect(kustomizeFindings()).toEqual([]);
    });

    it("names the kustomization whose output breaks the output cap", () => {
        KUSTOMIZE_LIMITS.maxOutputBytes = 1024 * 1024;
        expect(kustomizeFindings()).toEqual(["error   platform/configs/kustomization.yaml: kubectl kustomize fails: its output is larger than 1 MiB"]);
    });

    it("names the kustomization kubectl cannot build within the memory cap", () => {
        KUSTOMIZE_LIMITS.maxAddressSpaceBytes = 256 * 1024 * 1024;
        expect(kustomizeFindings()).toEqual(["error   platform/configs/kustomization.yaml: kubectl kustomize fails: it needed more than 256 MiB of memory"]);
    });
});

describe("a platform/ restructure under the cadences", () => {
    // Staging and production pull platform/ of a release tag, not of the working tree: a merge request
    // that moves a layer's folder and points staging at it breaks staging on merge.
    let root: string;
    const git = (...args: string[]) =>
        execFileSync("git", ["-C", root, ...args], {
            encoding: "utf8",
            env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" },
        });
    const released = () =>
        checkTree(root, () => [])
            .findings.map(formatFinding)
            .filter((f) => f.includes("release") || f.includes("git fetch --tags"));
    beforeEach(() => {
        root = copyOfRepo("check-releases");
        git("init", "-q", "-b", "main");
        git("add", "-A");
        git("commit", "-qm", "sample");
        git("tag", "0.0.6");
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("refuses a layer path the release staging pulls does not have, and says to release first", () => {
        fs.renameSync(path.join(root, "platform/configs"), path.join(root, "platform/cluster-configs"));
        for (const env of ["development", "staging"])
            edit(root, `clusters/${env}/platform.yaml`, "path: ./platform/configs", "path: ./platform/cluster-configs");
        expect(released()).toEqual([
            "error   clusters/staging/platform.yaml: Kustomization flux-system/platform-configs: spec.path: './platform/cluster-configs' is not in release 0.0.6 (what its range 0.0.x selects), which clusters/staging pulls: Flux fails this layer as soon as this merges. Fix: release the change to platform/ first (tag it; publish-platform pushes it), then move clusters/staging to the new path in a later merge request",
        ]);
        // Released: the same tree passes, and production, pinned to the old tag, keeps the old path.
        git("add", "-A");
        git("commit", "-qm", "restructure");
        git("tag", "0.0.7");
        expect(released()).toEqual([]);
    });

    it("says when no release of the clone matches, instead of judging the working tree as if it were released", () => {
        git("tag", "-d", "0.0.6");
        git("tag", "1.0.0");
        expect(released()).toEqual([
            "warning clusters/production/platform.yaml: OCIRepository flux-system/platform: spec.ref: no release tag of this clone matches its tag 0.0.6, so clusters/production's layer paths were judged against the working tree only. Fix: git fetch --tags",
            "warning clusters/staging/platform.yaml: OCIRepository flux-system/platform: spec.ref: no release tag of this clone matches its range 0.0.x, so clusters/staging's layer paths were judged against the working tree only. Fix: git fetch --tags",
        ]);
    });
});

describe("release tags belong to the repository whose top folder is checked", () => {
    it("a tree kept inside another repository has none of its releases", () => {
        const outer = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-outer-"));
        try {
            const git = (...args: string[]) =>
                execFileSync("git", ["-C", outer, ...args], {
                    encoding: "utf8",
                    env: {
                        ...process.env,
                        GIT_AUTHOR_NAME: "t",
                        GIT_AUTHOR_EMAIL: "t@example.com",
                        GIT_COMMITTER_NAME: "t",
                        GIT_COMMITTER_EMAIL: "t@example.com",
                    },
                });
            git("init", "-q", "-b", "main");
            fs.mkdirSync(path.join(outer, "fixture"));
            fs.writeFileSync(path.join(outer, "fixture", "README.md"), "a tree kept here\n");
            git("add", "-A");
            git("commit", "-qm", "fixture");
            git("tag", "1.0.0");
            expect(releaseTags(outer)).toEqual(["1.0.0"]);
            expect(releaseTags(path.join(outer, "fixture"))).toEqual([]);
        } finally {
            fs.rmSync(outer, { recursive: true, force: true });
        }
    });
});
