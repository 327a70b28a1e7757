import { describe, expect, it, jest } from "@jest/globals";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type * as KnownFields from "./known-fields";

// The fields of each kind are read from the models' declarations with a TypeScript program, about a
// second; a tree read once is kept on disk by the model package's version, and must read back the same.

const KINDS = [
    { specifier: "@kubernetes-models/flux-cd/kustomize.toolkit.fluxcd.io/v1", kind: "Kustomization" },
    { specifier: "kubernetes-models/apps/v1", kind: "Deployment" },
];

/** A fresh copy of the module, with nothing in its per-process memory. */
function freshModule(): typeof KnownFields {
    let module: typeof KnownFields | undefined;
    jest.isolateModules(() => {
        module = jest.requireActual<typeof KnownFields>("./known-fields");
    });
    return module!;
}

/** A tree as plain nested objects, to a depth (types refer to themselves). */
function shape(tree: KnownFields.FieldTree, depth: number): unknown {
    if (tree === "open") return "open";
    if (depth === 0) return [...tree.fields.keys()].sort();
    return Object.fromEntries([...tree.fields.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, shape(v, depth - 1)]));
}

describe("the fields each kind has", () => {
    it("read back from disk, are the fields read from the declarations, and still call a misspelt field unknown", () => {
        const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-known-fields-"));
        try {
            const read = freshModule().knownFields(KINDS, { cacheDir });
            expect(fs.readdirSync(cacheDir)).toHaveLength(2);
            const reloaded = freshModule();
            const stored = reloaded.knownFields(KINDS, { cacheDir });
            for (const k of KINDS) {
                const id = `${k.specifier}/${k.kind}`;
                expect(shape(stored.get(id)!, 5)).toEqual(shape(read.get(id)!, 5));
            }
            const kustomization = stored.get(`${KINDS[0]!.specifier}/Kustomization`)!;
            expect(
                reloaded.unknownFields(
                    {
                        apiVersion: "kustomize.toolkit.fluxcd.io/v1",
                        kind: "Kustomization",
                        metadata: { name: "apps" },
                        spec: { dependOn: [{ name: "infra" }], interval: "10m" },
                    },
                    kustomization,
                ),
            ).toEqual(["spec.dependOn"]);
        } finally {
            fs.rmSync(cacheDir, { recursive: true, force: true });
        }
    });
});
