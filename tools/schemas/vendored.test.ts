import { afterAll, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { DEFAULTS } from "../../infra/config";
import {
    FLUX_INSTANCE_CRD,
    FLUX_SERVED_APIS,
    PLUTO_VERSIONS,
    readFluxServedApis,
    readSources,
    SCHEMAS_DIR,
    sha256,
    updateFluxInstanceSchema,
    updateFluxServedApis,
    updateGitlabCiSchema,
    updatePlutoVersions,
    vendoredOperatorVersion,
    verifySources,
} from "./vendored";

const copies: string[] = [];
afterAll(() => {
    for (const dir of copies) fs.rmSync(dir, { recursive: true, force: true });
});

function copyOfSchemas(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-schemas-"));
    copies.push(dir);
    fs.cpSync(SCHEMAS_DIR, dir, { recursive: true });
    return dir;
}

/** Serves `files` (path → body) on 127.0.0.1 for the duration of `body`; anything else is a 404. */
async function serving<T>(files: Record<string, string>, body: (baseUrl: string, requested: string[]) => Promise<T>): Promise<T> {
    const requested: string[] = [];
    const server = http.createServer((req, res) => {
        requested.push(req.url ?? "");
        const file = files[req.url ?? ""];
        res.writeHead(file === undefined ? 404 : 200).end(file ?? "404: Not Found");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
        return await body(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, requested);
    } finally {
        await new Promise((resolve) => server.close(resolve));
    }
}

const UPSTREAM_PATH = "/controlplaneio-fluxcd/flux-operator/v0.59.0/config/crd/bases/fluxcd.controlplane.io_fluxinstances.yaml";
const NEXT_CRD = "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  names:\n    kind: FluxInstance\n";

describe("the vendored upstream schemas", () => {
    it("ship inside the repository, each file exactly as its record in sources.json says", () => {
        expect(verifySources()).toEqual([]);
    });

    it("are the FluxInstance CRD of the flux-operator release the program installs by default", () => {
        expect(vendoredOperatorVersion()).toBe(DEFAULTS.fluxOperatorVersion);
    });

    it("hold the Flux APIs of the same flux-operator release as the FluxInstance CRD", () => {
        expect(readSources()[FLUX_SERVED_APIS]?.tag).toBe(readSources()[FLUX_INSTANCE_CRD]?.tag);
        expect(readFluxServedApis().operator).toBe(readSources()[FLUX_INSTANCE_CRD]?.tag);
    });

    it("are reported when a file was edited by hand", () => {
        const dir = copyOfSchemas();
        fs.appendFileSync(path.join(dir, FLUX_INSTANCE_CRD), "# local edit\n");
        expect(verifySources(dir)).toEqual([
            expect.stringMatching(/^fluxcd\.controlplane\.io_fluxinstances\.yaml: sha256 [0-9a-f]{64} is not the recorded [0-9a-f]{64} of controlplaneio-fluxcd\/flux-operator@v0\.58\.0; restore it or run npm run schemas:update$/),
        ]);
    });

    it("are reported when a schema file has no record", () => {
        const dir = copyOfSchemas();
        fs.writeFileSync(path.join(dir, "extra.yaml"), "kind: CustomResourceDefinition\n");
        expect(verifySources(dir)).toEqual(["extra.yaml: not recorded in sources.json"]);
    });
});

describe("npm run schemas:update", () => {
    it("fetches the CRD at the release tag and rewrites the file and its record together", async () => {
        const dir = copyOfSchemas();
        const record = await serving({ [UPSTREAM_PATH]: NEXT_CRD }, async (baseUrl, requested) => {
            const result = await updateFluxInstanceSchema("0.59.0", { dir, baseUrl });
            expect(requested).toEqual([UPSTREAM_PATH]);
            return result;
        });
        expect(record).toEqual({
            project: "controlplaneio-fluxcd/flux-operator",
            tag: "v0.59.0",
            path: "config/crd/bases/fluxcd.controlplane.io_fluxinstances.yaml",
            license: "AGPL-3.0-only",
            sha256: sha256(NEXT_CRD),
        });
        expect(fs.readFileSync(path.join(dir, FLUX_INSTANCE_CRD), "utf8")).toBe(NEXT_CRD);
        expect(readSources(dir)[FLUX_INSTANCE_CRD]).toEqual(record);
        expect(verifySources(dir)).toEqual([]);
        expect(vendoredOperatorVersion(dir)).toBe("0.59.0");
    });

    it("keeps the current schema when the tag does not exist upstream", async () => {
        const dir = copyOfSchemas();
        await serving({}, async (baseUrl) => {
            await expect(updateFluxInstanceSchema("0.99.0", { dir, baseUrl })).rejects.toThrow(/answered 404: is v0\.99\.0 a flux-operator release\?$/);
        });
        expect(verifySources(dir)).toEqual([]);
        expect(vendoredOperatorVersion(dir)).toBe("0.58.0");
    });

    it("keeps the current schema when upstream answers with something that is not the CRD", async () => {
        const dir = copyOfSchemas();
        await serving({ [UPSTREAM_PATH]: "<html>moved</html>" }, async (baseUrl) => {
            await expect(updateFluxInstanceSchema("0.59.0", { dir, baseUrl })).rejects.toThrow("is not the FluxInstance CustomResourceDefinition; nothing was written");
        });
        expect(vendoredOperatorVersion(dir)).toBe("0.58.0");
    });

    it("refuses a version that is not a release number, before any request", async () => {
        await expect(updateFluxInstanceSchema("v0.59", { dir: copyOfSchemas(), baseUrl: "http://127.0.0.1:9" })).rejects.toThrow(
            '"v0.59" is not a flux-operator release: give the chart version, e.g. 0.58.1',
        );
    });
});

describe("npm run schemas:update -- pluto", () => {
    const PLUTO_PATH = "/FairwindsOps/pluto/v5.25.0/versions.yaml";
    const NEXT = "deprecated-versions:\n  - version: example.k8s.io/v1beta1\n    kind: Example\n";

    it("fetches versions.yaml at the release tag and records it", async () => {
        const dir = copyOfSchemas();
        const record = await serving({ [PLUTO_PATH]: NEXT }, (baseUrl) => updatePlutoVersions("v5.25.0", { dir, baseUrl }));
        expect(record).toMatchObject({ project: "FairwindsOps/pluto", tag: "v5.25.0", path: "versions.yaml", sha256: sha256(NEXT) });
        expect(fs.readFileSync(path.join(dir, PLUTO_VERSIONS), "utf8")).toBe(NEXT);
        expect(verifySources(dir)).toEqual([]);
    });

    it("keeps the current data when upstream answers with something else", async () => {
        const dir = copyOfSchemas();
        await serving({ [PLUTO_PATH]: "<html/>" }, async (baseUrl) => {
            await expect(updatePlutoVersions("v5.25.0", { dir, baseUrl })).rejects.toThrow("is not pluto's versions.yaml; nothing was written");
        });
        expect(verifySources(dir)).toEqual([]);
    });
});

describe("npm run schemas:update -- flux-operator: the Flux APIs", () => {
    const API = "/repos/controlplaneio-fluxcd/flux-operator/contents/config/data/flux";
    const crd = (group: string, kind: string, served: Record<string, boolean>) =>
        `---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  group: ${group}\n  names:\n    kind: ${kind}\n  versions:\n` +
        Object.entries(served)
            .map(([name, on]) => `  - name: ${name}\n    served: ${on}\n`)
            .join("") +
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: source-controller\n";
    const upstream = {
        [`${API}?ref=v0.59.0`]: JSON.stringify([
            { name: "v2.10.0", type: "dir" },
            { name: "README.md", type: "file" },
        ]),
        [`${API}/v2.10.0?ref=v0.59.0`]: JSON.stringify([{ name: "source-controller.yaml", type: "file" }]),
        ["/controlplaneio-fluxcd/flux-operator/v0.59.0/config/data/flux/v2.10.0/source-controller.yaml"]: crd("source.toolkit.fluxcd.io", "GitRepository", { v1: true, v2beta1: true, v1beta2: false }),
    };

    it("derives what each shipped Flux release serves from the CRDs the operator applies, and records it", async () => {
        const dir = copyOfSchemas();
        const record = await serving(upstream, (url) => updateFluxServedApis("0.59.0", { dir, baseUrl: url, apiUrl: url }));
        expect(readFluxServedApis(dir)).toEqual({ operator: "v0.59.0", releases: { "2.10.0": { "source.toolkit.fluxcd.io": { GitRepository: ["v1", "v2beta1"] } } } });
        expect(record).toMatchObject({ project: "controlplaneio-fluxcd/flux-operator", tag: "v0.59.0" });
        expect(verifySources(dir)).toEqual([]);
    });

    it("keeps the current data when the release ships no Flux CRDs", async () => {
        const dir = copyOfSchemas();
        const before = fs.readFileSync(path.join(dir, FLUX_SERVED_APIS), "utf8");
        const empty = { ...upstream, ["/controlplaneio-fluxcd/flux-operator/v0.59.0/config/data/flux/v2.10.0/source-controller.yaml"]: "<html/>" };
        await serving(empty, async (url) => {
            await expect(updateFluxServedApis("0.59.0", { dir, baseUrl: url, apiUrl: url })).rejects.toThrow("ships no Flux CRDs under config/data/flux; nothing was written");
        });
        expect(fs.readFileSync(path.join(dir, FLUX_SERVED_APIS), "utf8")).toBe(before);
    });
});

describe("npm run schemas:update -- gitlab-ci", () => {
    const GITLAB_PATH = "/gitlab-org/gitlab/-/raw/v18.6.0-ee/app/assets/javascripts/editor/schema/ci.json";
    const NEXT = JSON.stringify({ $id: "https://gitlab.com/.gitlab-ci.yml", type: "object", definitions: {} });

    it("fetches GitLab's own schema at a tag from gitlab.com and records it", async () => {
        const dir = copyOfSchemas();
        const record = await serving({ [GITLAB_PATH]: NEXT }, (gitlabUrl) => updateGitlabCiSchema("v18.6.0-ee", { dir, gitlabUrl }));
        expect(record).toEqual({
            project: "gitlab-org/gitlab",
            tag: "v18.6.0-ee",
            path: "app/assets/javascripts/editor/schema/ci.json",
            license: "MIT",
            sha256: sha256(NEXT),
        });
        expect(fs.readFileSync(path.join(dir, "gitlab-ci.json"), "utf8")).toBe(NEXT);
        expect(verifySources(dir)).toEqual([]);
    });

    it("keeps the current schema when gitlab.com answers with a sign-in page", async () => {
        const dir = copyOfSchemas();
        await serving({ [GITLAB_PATH]: "<html>Sign in</html>" }, async (gitlabUrl) => {
            await expect(updateGitlabCiSchema("v18.6.0-ee", { dir, gitlabUrl })).rejects.toThrow("is not GitLab's CI schema; nothing was written");
        });
        expect(verifySources(dir)).toEqual([]);
    });

    it("records where the vendored copy came from when it is not GitLab's file itself", () => {
        expect(readSources()["gitlab-ci.json"]?.via).toMatch(/^npm gitlab-ci-local@4\.75\.1/);
    });
});
