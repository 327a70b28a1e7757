import { parseAllDocuments } from "yaml";

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
