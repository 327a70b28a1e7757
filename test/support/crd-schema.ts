import * as fs from "fs";
import * as path from "path";
import Ajv, { ValidateFunction } from "ajv";
import { parse } from "yaml";
import { SCHEMAS_DIR } from "../../tools/schemas/vendored";

type Schema = { [key: string]: unknown };

/**
 * The API server prunes fields a structural schema does not declare, silently: a misspelt field would
 * vanish without an error. Forbidding undeclared fields turns that silent loss into a failed test.
 */
function closeObjects(schema: unknown): unknown {
    if (Array.isArray(schema)) return schema.map(closeObjects);
    if (schema === null || typeof schema !== "object") return schema;
    const s: Schema = {};
    for (const [k, v] of Object.entries(schema)) s[k] = k === "properties" ? mapValues(v as Schema, closeObjects) : closeObjects(v);
    if (s.properties && s.additionalProperties === undefined && s["x-kubernetes-preserve-unknown-fields"] !== true) {
        s.additionalProperties = false;
    }
    return s;
}

function mapValues(o: Schema, f: (v: unknown) => unknown): Schema {
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}

/** A validator for one served version of a CRD vendored in schemas/. */
export function crdValidator(file: string, version: string): ValidateFunction {
    const full = path.join(SCHEMAS_DIR, file);
    const crd = parse(fs.readFileSync(full, "utf8")) as {
        spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
    };
    const served = crd.spec.versions.find((v) => v.name === version);
    if (!served) throw new Error(`${file} has no version ${version}`);
    const schema = closeObjects(served.schema.openAPIV3Schema) as Schema;
    // metadata is validated by the API server itself, not by the CRD schema.
    (schema.properties as Schema).metadata = { type: "object" };
    return new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);
}
