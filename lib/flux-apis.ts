import * as fs from "fs";
import * as path from "path";
import * as semver from "semver";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT } from "./project";

// Which Flux APIs each Flux release serves, as flux-operator installs them: derived from the CRDs in
// flux-operator's `config/data/flux/<version>/*.yaml` (the manifests it applies for that version), and
// vendored as schemas/flux-served-apis.json. @kubernetes-models/flux-cd knows every version Flux ever
// served, so it cannot say that Flux 2.8 no longer serves, say, HelmRepository v1beta2.

/** group → kind → the versions the release serves, oldest first. */
export type ServedApis = Record<string, Record<string, string[]>>;

export interface FluxServedApis {
    /** The flux-operator release whose manifests these come from, e.g. v0.58.0. */
    operator: string;
    /** Flux version (no v) → what it serves. */
    releases: Record<string, ServedApis>;
}

interface CrdVersion {
    name?: string;
    served?: boolean;
}

/** The served APIs declared by the CustomResourceDefinitions in some manifests. */
export function servedApisOf(manifests: string[]): ServedApis {
    const served: ServedApis = {};
    for (const text of manifests) {
        for (const doc of parseAllDocuments(text)) {
            const crd = doc.toJS() as { kind?: string; spec?: { group?: string; names?: { kind?: string }; versions?: CrdVersion[] } } | null;
            if (crd?.kind !== "CustomResourceDefinition" || !crd.spec?.group || !crd.spec.names?.kind) continue;
            const versions = (crd.spec.versions ?? []).filter((v) => v.served && v.name).map((v) => String(v.name));
            (served[crd.spec.group] ??= {})[crd.spec.names.kind] = versions;
        }
    }
    return served;
}

/**
 * Why a Flux version or range would not pick exactly the Flux 2 releases it means, or undefined: empty
 * or dangling ranges match everything, unsatisfiable ones nothing, and the operator installs Flux 2.
 */
export function fluxVersionProblem(version: string): string | undefined {
    const fix = "Fix: e.g. '2.x', '2.8.x' or '2.8.8'";
    const range = version.replace(/,/g, " ").trim();
    if (range === "" || /^\|\||\|\|$|\|\|\s*\|\|/.test(range)) return `'${version}' would match any version. ${fix}`;
    if (semver.validRange(range) === null) return `is not a valid version or semver range. ${fix}`;
    if (semver.minVersion(range) === null) return `'${version}' matches no version at all. ${fix}`;
    if (!semver.subset(range, ">=2.0.0-0 <3.0.0-0")) return `'${version}' allows versions other than Flux 2, which the operator installs. ${fix}`;
    return undefined;
}

/** Why production's Flux version is not one known release: production runs exactly what was tested. */
export function productionPinProblem(version: string): string | undefined {
    return /^\d+\.\d+\.\d+$/.test(version)
        ? undefined
        : `is the range '${version}', but production runs one known Flux version. Fix: pin an exact version, e.g. '2.8.8'`;
}

/** The vendored data: which Flux releases the pinned flux-operator ships, and what each serves. */
export function readFluxServedApis(dir = path.join(REPO_ROOT, "schemas")): FluxServedApis {
    return JSON.parse(fs.readFileSync(path.join(dir, "flux-served-apis.json"), "utf8")) as FluxServedApis;
}

/**
 * The Flux release flux-operator installs for a stack's `flux.version`: the newest it ships that the
 * range allows (Flux takes Masterminds ranges; commas are its "and").
 */
export function fluxReleaseFor(range: string, apis: FluxServedApis): string | undefined {
    return semver.maxSatisfying(Object.keys(apis.releases), range.replace(/,/g, " ")) ?? undefined;
}

/**
 * Why a stack's Flux version and operator version cannot work together, or undefined: the program and
 * `npm run check` both ask this one rule. The operator must be the one whose releases are vendored (no
 * other's are known), and the version or range must pick a Flux release it ships.
 */
export function fluxReleaseProblem(
    version: string,
    operatorVersion: string,
    apis: FluxServedApis,
): { key: "flux.operatorVersion" | "flux.version"; message: string } | undefined {
    const known = apis.operator.replace(/^v/, "");
    if (operatorVersion.replace(/^v/, "") !== known) {
        return {
            key: "flux.operatorVersion",
            message: `is ${operatorVersion}, but this project knows which Flux releases flux-operator ${known} ships, and no other's (schemas/flux-served-apis.json). Fix: use ${known}, or vendor ${operatorVersion}'s data with npm run schemas:update -- ${operatorVersion}`,
        };
    }
    if (!fluxReleaseFor(version, apis)) {
        const shipped = Object.keys(apis.releases).sort(semver.compare);
        return {
            key: "flux.version",
            message: `'${version}' matches no Flux release flux-operator ${apis.operator} ships (${shipped[0]} to ${shipped.at(-1)}). Fix: allow one of them`,
        };
    }
    return undefined;
}
