import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { type FluxServedApis, servedApisOf } from "../../lib/flux-apis";
import { REPO_ROOT } from "../../lib/project";

// The upstream schemas vendored in schemas/, and the one way they change: fetched again from upstream
// at a tag, with their record in schemas/sources.json rewritten to match.

export const SCHEMAS_DIR = path.join(REPO_ROOT, "schemas");
export const FLUX_INSTANCE_CRD = "fluxcd.controlplane.io_fluxinstances.yaml";
export const PLUTO_VERSIONS = "pluto-versions.yaml";

/** Where a vendored file came from; one entry per file in schemas/sources.json. */
export interface SchemaSource {
    /** GitHub owner/name (gitlab-org/gitlab for GitLab's own files, on gitlab.com). */
    project: string;
    /** The release tag the file was taken at, e.g. v0.58.0. */
    tag: string;
    /** The commit the tag pointed at, when known. */
    commit?: string;
    /** The file's path inside the project. */
    path: string;
    license: string;
    /** How the file reached this repository when not straight from the project, e.g. a package bundling it. */
    via?: string;
    sha256: string;
}

export type SchemaSources = Record<string, SchemaSource>;

export function readSources(dir = SCHEMAS_DIR): SchemaSources {
    return JSON.parse(fs.readFileSync(path.join(dir, "sources.json"), "utf8")) as SchemaSources;
}

export function sha256(text: string | Buffer): string {
    return createHash("sha256").update(text).digest("hex");
}

/** Every way the files in `dir` disagree with their records; empty when they agree. */
export function verifySources(dir = SCHEMAS_DIR): string[] {
    const sources = readSources(dir);
    const problems: string[] = [];
    for (const [file, source] of Object.entries(sources)) {
        const full = path.join(dir, file);
        if (!fs.existsSync(full)) {
            problems.push(`${file}: listed in sources.json but missing`);
            continue;
        }
        const actual = sha256(fs.readFileSync(full));
        if (actual !== source.sha256) {
            problems.push(`${file}: sha256 ${actual} is not the recorded ${source.sha256} of ${source.project}@${source.tag}; restore it or run npm run schemas:update`);
        }
    }
    for (const file of fs.readdirSync(dir)) {
        if (/\.(yaml|json)$/.test(file) && file !== "sources.json" && !(file in sources)) problems.push(`${file}: not recorded in sources.json`);
    }
    return problems;
}

function fluxInstanceSource(sources: SchemaSources): SchemaSource {
    const source = sources[FLUX_INSTANCE_CRD];
    if (!source) throw new Error(`schemas/sources.json has no record of ${FLUX_INSTANCE_CRD}`);
    return source;
}

/** The flux-operator chart version (no leading v) whose FluxInstance CRD is vendored. */
export function vendoredOperatorVersion(dir = SCHEMAS_DIR): string {
    return fluxInstanceSource(readSources(dir)).tag.replace(/^v/, "");
}

export interface UpdateOptions {
    /** Folder to write into. @default schemas/ */
    dir?: string;
    /** Where raw files are served from, `<base>/<project>/<tag>/<path>`. @default https://raw.githubusercontent.com */
    baseUrl?: string;
}

/** Fetches the FluxInstance CRD of a flux-operator release and records it; returns the new record. */
export async function updateFluxInstanceSchema(version: string, options: UpdateOptions = {}): Promise<SchemaSource> {
    if (!/^\d+\.\d+\.\d+$/.test(version)) {
        throw new Error(`"${version}" is not a flux-operator release: give the chart version, e.g. 0.58.1`);
    }
    const dir = options.dir ?? SCHEMAS_DIR;
    const sources = readSources(dir);
    const current = fluxInstanceSource(sources);
    const tag = `v${version}`;
    const url = `${options.baseUrl ?? "https://raw.githubusercontent.com"}/${current.project}/${tag}/${current.path}`;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: is ${tag} a flux-operator release?`);
    const text = await response.text();
    // A redirect to an error page or a moved file must not replace a good schema.
    if (!/^kind: CustomResourceDefinition$/m.test(text) || !/^\s+kind: FluxInstance$/m.test(text)) {
        throw new Error(`${url} is not the FluxInstance CustomResourceDefinition; nothing was written`);
    }
    const record: SchemaSource = { project: current.project, tag, path: current.path, license: current.license, sha256: sha256(text) };
    fs.writeFileSync(path.join(dir, FLUX_INSTANCE_CRD), text);
    fs.writeFileSync(path.join(dir, "sources.json"), JSON.stringify({ ...sources, [FLUX_INSTANCE_CRD]: record }, null, 2) + "\n");
    return record;
}

/** Fetches pluto's API deprecation data of a release (e.g. v5.24.0) and records it; returns the new record. */
export async function updatePlutoVersions(tag: string, options: UpdateOptions = {}): Promise<SchemaSource> {
    if (!/^v\d+\.\d+\.\d+$/.test(tag)) throw new Error(`"${tag}" is not a pluto release: give its tag, e.g. v5.24.0`);
    const dir = options.dir ?? SCHEMAS_DIR;
    const sources = readSources(dir);
    const current = sources[PLUTO_VERSIONS];
    if (!current) throw new Error(`schemas/sources.json has no record of ${PLUTO_VERSIONS}`);
    const url = `${options.baseUrl ?? "https://raw.githubusercontent.com"}/${current.project}/${tag}/${current.path}`;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: is ${tag} a pluto release?`);
    const text = await response.text();
    if (!/^deprecated-versions:$/m.test(text)) throw new Error(`${url} is not pluto's versions.yaml; nothing was written`);
    const record: SchemaSource = { project: current.project, tag, path: current.path, license: current.license, sha256: sha256(text) };
    fs.writeFileSync(path.join(dir, PLUTO_VERSIONS), text);
    fs.writeFileSync(path.join(dir, "sources.json"), JSON.stringify({ ...sources, [PLUTO_VERSIONS]: record }, null, 2) + "\n");
    return record;
}

export const GITLAB_CI_SCHEMA = "gitlab-ci.json";

/** GitLab's CI/CD configuration schema, which its pipeline editor validates `.gitlab-ci.yml` with. */
export function readGitlabCiSchema(dir = SCHEMAS_DIR): object {
    return JSON.parse(fs.readFileSync(path.join(dir, GITLAB_CI_SCHEMA), "utf8")) as object;
}

/**
 * Fetches GitLab's CI schema at a ref of gitlab-org/gitlab (a tag such as v18.6.0-ee, or master) from
 * gitlab.com and records it; returns the new record.
 */
export async function updateGitlabCiSchema(ref: string, options: UpdateOptions & { gitlabUrl?: string } = {}): Promise<SchemaSource> {
    if (!/^[\w.-]+$/.test(ref)) throw new Error(`"${ref}" is not a gitlab-org/gitlab ref: give a tag, e.g. v18.6.0-ee, or master`);
    const dir = options.dir ?? SCHEMAS_DIR;
    const sources = readSources(dir);
    const current = sources[GITLAB_CI_SCHEMA];
    if (!current) throw new Error(`schemas/sources.json has no record of ${GITLAB_CI_SCHEMA}`);
    const url = `${options.gitlabUrl ?? "https://gitlab.com"}/${current.project}/-/raw/${ref}/${current.path}`;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: is ${ref} a gitlab-org/gitlab ref?`);
    const text = await response.text();
    let schema: { $id?: unknown; definitions?: unknown };
    try {
        schema = JSON.parse(text) as typeof schema;
    } catch {
        schema = {};
    }
    if (schema.$id !== "https://gitlab.com/.gitlab-ci.yml" || typeof schema.definitions !== "object") {
        throw new Error(`${url} is not GitLab's CI schema; nothing was written`);
    }
    const record: SchemaSource = { project: current.project, tag: ref, path: current.path, license: current.license, sha256: sha256(text) };
    fs.writeFileSync(path.join(dir, GITLAB_CI_SCHEMA), text);
    fs.writeFileSync(path.join(dir, "sources.json"), JSON.stringify({ ...sources, [GITLAB_CI_SCHEMA]: record }, null, 2) + "\n");
    return record;
}

export const FLUX_SERVED_APIS = "flux-served-apis.json";
const FLUX_DATA_PATH = "config/data/flux";

/** The served Flux APIs of every Flux release a flux-operator release ships, as vendored. */
export function readFluxServedApis(dir = SCHEMAS_DIR): FluxServedApis {
    return JSON.parse(fs.readFileSync(path.join(dir, FLUX_SERVED_APIS), "utf8")) as FluxServedApis;
}

interface GitHubEntry {
    name: string;
    type: string;
}

async function getOk(url: string, what: string): Promise<Response> {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: ${what}`);
    return response;
}

/**
 * Derives, from the manifests a flux-operator release applies for each Flux version it ships
 * (`config/data/flux/<version>/*.yaml`), which Flux APIs each version serves, and records it. Travels
 * with the FluxInstance CRD: same project, same tag.
 */
export async function updateFluxServedApis(version: string, options: UpdateOptions & { apiUrl?: string } = {}): Promise<SchemaSource> {
    if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`"${version}" is not a flux-operator release: give the chart version, e.g. 0.58.1`);
    const dir = options.dir ?? SCHEMAS_DIR;
    const sources = readSources(dir);
    const project = fluxInstanceSource(sources).project;
    const tag = `v${version}`;
    const api = options.apiUrl ?? "https://api.github.com";
    const list = async (p: string) =>
        (await (await getOk(`${api}/repos/${project}/contents/${p}?ref=${tag}`, `is ${tag} a flux-operator release with ${FLUX_DATA_PATH}?`)).json()) as GitHubEntry[];
    const releases: FluxServedApis["releases"] = {};
    for (const release of (await list(FLUX_DATA_PATH)).filter((e) => e.type === "dir" && /^v\d+\.\d+\.\d+$/.test(e.name))) {
        const files = (await list(`${FLUX_DATA_PATH}/${release.name}`)).filter((e) => e.type === "file" && e.name.endsWith(".yaml"));
        const texts = await Promise.all(
            files.map(async (f) => (await getOk(`${options.baseUrl ?? "https://raw.githubusercontent.com"}/${project}/${tag}/${FLUX_DATA_PATH}/${release.name}/${f.name}`, "a file listed a moment ago")).text()),
        );
        releases[release.name.replace(/^v/, "")] = servedApisOf(texts);
    }
    // An empty or CRD-less answer must not replace good data.
    if (Object.values(releases).every((served) => Object.keys(served).length === 0)) {
        throw new Error(`${project} ${tag} ships no Flux CRDs under ${FLUX_DATA_PATH}; nothing was written`);
    }
    const text = JSON.stringify({ operator: tag, releases }, null, 2) + "\n";
    const record: SchemaSource = { project, tag, path: `${FLUX_DATA_PATH}/*/*.yaml (served versions of each CRD)`, license: "AGPL-3.0-only", sha256: sha256(text) };
    fs.writeFileSync(path.join(dir, FLUX_SERVED_APIS), text);
    fs.writeFileSync(path.join(dir, "sources.json"), JSON.stringify({ ...readSources(dir), [FLUX_SERVED_APIS]: record }, null, 2) + "\n");
    return record;
}
