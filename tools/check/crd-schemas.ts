import Ajv from "ajv";
import * as fs from "fs";
import * as path from "path";
import { parseAllDocuments } from "yaml";
import type { Manifest } from "../../lib/gitops-tree";

// `npm run check -- --schemas <dir>`: a team's own CRDs (cert-manager's, a vendor's), so their objects are
// validated rather than counted as "not validated". Each CustomResourceDefinition's openAPIV3Schema per
// served version, as the API server validates with it (structural schema: unknown fields are pruned unless
// `x-kubernetes-preserve-unknown-fields`, so here they are errors).

interface CrdVersion {
    name: string;
    served?: boolean;
    schema?: { openAPIV3Schema?: Schema };
}

interface Schema {
    type?: string;
    properties?: Record<string, Schema>;
    items?: Schema;
    additionalProperties?: boolean | Schema;
    "x-kubernetes-preserve-unknown-fields"?: boolean;
    "x-kubernetes-int-or-string"?: boolean;
}

/** What a CRD schema says of an object: its problems, or undefined when no CRD of the folder covers it. */
export type CrdValidator = (m: Manifest) => { field: string; message: string }[] | undefined;

/** The fields of `value` a structural schema does not have, as dotted paths, `status` aside. */
function unknownFields(value: unknown, schema: Schema | undefined, at: string): string[] {
    if (!schema || schema["x-kubernetes-preserve-unknown-fields"] || value === null || typeof value !== "object") return [];
    if (Array.isArray(value)) return value.flatMap((v, i) => unknownFields(v, schema.items, `${at}[${i}]`));
    if (!schema.properties) return [];
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
        const here = at ? `${at}.${k}` : k;
        if (!at && ["apiVersion", "kind", "metadata", "status"].includes(k)) return [];
        const sub = schema.properties?.[k];
        if (sub) return unknownFields(v, sub, here);
        return schema.additionalProperties ? [] : [here];
    });
}

/** Reads every CustomResourceDefinition in the YAML files of `dir`. */
export function loadCrdSchemas(dir: string): CrdValidator {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const byKind = new Map<string, { validate: ReturnType<Ajv["compile"]>; schema: Schema }>();
    for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
        for (const doc of parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8"))) {
            const crd = doc.toJS() as { kind?: string; spec?: { group?: string; names?: { kind?: string }; versions?: CrdVersion[] } } | null;
            if (crd?.kind !== "CustomResourceDefinition" || !crd.spec?.group || !crd.spec.names?.kind) continue;
            for (const v of crd.spec.versions ?? []) {
                const schema = v.schema?.openAPIV3Schema;
                if (!schema || v.served === false) continue;
                byKind.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, { validate: ajv.compile(schema), schema });
            }
        }
    }
    return (m) => {
        const entry = byKind.get(`${m.apiVersion}/${m.kind}`);
        if (!entry) return undefined;
        const problems = entry.validate(m)
            ? []
            : (entry.validate.errors ?? []).map((e) => ({
                  field: e.instancePath
                      .split("/")
                      .filter(Boolean)
                      .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), ""),
                  message: e.message ?? "is invalid",
              }));
        return [
            ...problems,
            ...unknownFields(m, entry.schema, "").map((field) => ({
                field,
                message: `is not a field of ${m.kind} ${m.apiVersion ?? ""}: the API server would drop it without a word. Fix: check the spelling`,
            })),
        ];
    };
}
