// `npm run diff -- [--base <rev>] [--head <rev>] [--env <env>…] [--format text|markdown]`: what each
// environment will get from a change, and when (tools/diff/diff.ts). Exits 1 only when a side does not
// build: a change is not a failure.
import { parseArgs } from "util";
import { REPO_ROOT } from "../../lib/project";
import { diffEnvironments, formatDiff } from "./diff";

function main(): number {
    const { values } = parseArgs({
        options: { base: { type: "string" }, head: { type: "string" }, env: { type: "string", multiple: true }, format: { type: "string" } },
    });
    const format = values.format === "markdown" ? "markdown" : "text";
    const diffs = diffEnvironments({ root: REPO_ROOT, base: values.base, head: values.head, envs: values.env });
    process.stdout.write(formatDiff(diffs, format));
    return diffs.some((d) => d.errors.length > 0) ? 1 : 0;
}

try {
    process.exit(main());
} catch (e) {
    console.error((e as Error).message);
    process.exit(2);
}
