// `npm run check [-- --schemas <dir>]`: the offline check of what Flux builds for each cluster folder and
// each stack's root sync path. --schemas: a folder of CustomResourceDefinitions to validate objects of other
// API groups with (cert-manager's, a vendor's).
import { parseArgs } from "util";
import { checkTree, formatFinding, loadSchemaValidator } from "./tree-check";
import { REPO_ROOT } from "../../lib/project";

async function main(): Promise<number> {
    const { values } = parseArgs({ options: { root: { type: "string", multiple: true }, json: { type: "boolean" }, schemas: { type: "string" } } });
    const roots = values.root ?? [REPO_ROOT];
    const results: Record<string, ReturnType<typeof checkTree>> = {};
    for (const root of roots) results[root] = checkTree(root, await loadSchemaValidator(root, { schemas: values.schemas }));
    if (values.json) {
        console.log(JSON.stringify(results));
        return 0;
    }
    let errors = 0;
    for (const { findings, files, manifests, unvalidated, notValidated } of Object.values(results)) {
        for (const f of findings) console.log(formatFinding(f));
        for (const o of notValidated) console.log(`not validated (no schema for its API group; add one with --schemas <dir>): ${o}`);
        const e = findings.filter((f) => f.severity === "error").length;
        errors += e;
        console.log(
            `GitOps tree: ${e} error${e === 1 ? "" : "s"}, ${findings.length - e} warning${findings.length - e === 1 ? "" : "s"} in ${manifests} manifests (${files} files)` +
                (unvalidated > 0 ? `; ${unvalidated} of an API group no schema here knows, so not validated.` : "."),
        );
    }
    return errors > 0 ? 1 : 0;
}

main().then(
    (code) => process.exit(code),
    (e: Error) => {
        console.error(e);
        process.exit(2);
    },
);
