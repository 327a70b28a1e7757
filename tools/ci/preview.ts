import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { configString, readStackDocument } from "../../lib/stack-files";
import { CommandResult, CommandRunner } from "../../lib/run-command";
import { PRODUCTION_OVERRIDE_LABEL } from "./pipeline";

// One merge request's preview of one stack (`npm run -s ci -- preview <stack>`): honest about the
// backend, visible in the merge request, and a gate on what production must not lose by accident.

/** A step of `pulumi preview --json` (the CLI's PreviewDigest, sdk/go/common/display/json.go). */
interface PreviewStep {
    op: string;
    urn: string;
    diffReasons?: string[];
    replaceReasons?: string[];
    /** Per property path, how it changes ("add", "update", "delete", each with a "-replace" form). */
    detailedDiff?: Record<string, { kind: string }> | null;
}

interface PreviewDigest {
    steps?: PreviewStep[];
    diagnostics?: { message?: string; severity?: string; urn?: string }[];
}

/** What GitLab's merge-request widget reads from `artifacts:reports:terraform`. */
export interface TerraformReport {
    create: number;
    update: number;
    delete: number;
}

/** Resources whose replacement or deletion in production takes the platform down with it. */
const CRITICAL_TYPES = [
    "eks:index:Cluster",
    "aws:eks/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "eks:index:ManagedNodeGroup",
    "kubernetes:fluxcd.controlplane.io/v1:FluxInstance",
    "pulumi-nodejs:dynamic/kind:Cluster",
];

/** Steps that remove the existing resource. */
const DESTROYING = ["delete", "replace", "delete-replaced", "create-replacement", "discard"];

const typeOf = (urn: string) => (urn.split("::")[2] ?? "").split("$").pop() ?? "";
const nameOf = (urn: string) => urn.split("::")[3] ?? urn;

/** Counts for the widget: a replacement is one resource added and one deleted. */
export function terraformReport(steps: PreviewStep[]): TerraformReport {
    const count = (ops: string[]) => steps.filter((s) => ops.includes(s.op)).length;
    return { create: count(["create", "replace", "import"]), update: count(["update"]), delete: count(["delete", "replace", "discard"]) };
}

/** The replacements and deletions a reviewer must see, one line each. */
export function destructiveSteps(steps: PreviewStep[]): string[] {
    return steps
        .filter((s) => ["delete", "replace", "discard"].includes(s.op))
        .map((s) => `${s.op} ${typeOf(s.urn)} ${nameOf(s.urn)}${s.replaceReasons?.length ? ` (replaced because of ${s.replaceReasons.join(", ")})` : ""}`);
}

/** What production would lose: its cluster, node groups or FluxInstance replaced or deleted. */
export function criticalLosses(steps: PreviewStep[]): string[] {
    return steps
        .filter((s) => DESTROYING.includes(s.op) && s.op !== "create-replacement" && CRITICAL_TYPES.includes(typeOf(s.urn)))
        .map((s) => `${s.op} ${typeOf(s.urn)} ${nameOf(s.urn)}`);
}

export interface PreviewContext {
    root: string;
    env: NodeJS.ProcessEnv;
    run: CommandRunner;
    print: (line: string) => void;
}

/** Whether a stack is production's, from the environment its stack file names, read as the other tools read it. */
function isProduction(root: string, stack: string): boolean {
    return configString(readStackDocument(root, stack), "environment") === "production";
}

/** Runs the preview; returns the job's exit code. Writes preview-<stack>.json and preview-<stack>.md. */
export async function previewStack(stack: string, ctx: PreviewContext): Promise<number> {
    const pulumi = (args: string[], env: Record<string, string> = {}) =>
        Object.keys(env).length === 0
            ? ctx.run("pulumi", [...args, "--non-interactive"])
            : ctx.run("/usr/bin/env", [...Object.entries(env).map(([k, v]) => `${k}=${v}`), "pulumi", ...args, "--non-interactive"]);
    const selected = await pulumi(["stack", "select", stack]);
    if (selected.code === 0) return report(stack, await pulumi(["preview", "--json", "--stack", stack, "--policy-pack", "policy"]), ctx);
    if (!/no stack named/.test(selected.stderr + selected.stdout)) {
        // A missing token, a wrong backend, no network: the preview did not happen, so the job fails.
        ctx.print(`Could not select stack ${stack}; nothing was previewed:\n${(selected.stderr || selected.stdout).trim()}`);
        return 1;
    }
    // New in this merge request: there is no state to read, so it is previewed against an empty one in a
    // backend of this job's own. The real backend is never written (the preview role may only read it).
    ctx.print(`${stack} has no state yet: previewing it as a new stack, in a throw-away local backend.`);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "preview-state-"));
    const local = { PULUMI_BACKEND_URL: `file://${scratch}`, PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex") };
    try {
        const init = await pulumi(["stack", "init", stack], local);
        if (init.code !== 0) {
            ctx.print(`Could not create stack ${stack} for its preview:\n${init.stderr.trim()}`);
            return 1;
        }
        return report(stack, await pulumi(["preview", "--json", "--stack", stack, "--policy-pack", "policy"], local), ctx);
    } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
    }
}

function report(stack: string, preview: CommandResult, ctx: PreviewContext): number {
    let digest: PreviewDigest;
    try {
        digest = JSON.parse(preview.stdout) as PreviewDigest;
    } catch {
        ctx.print(`pulumi preview of ${stack} failed (exit ${preview.code}):\n${(preview.stderr || preview.stdout).trim()}`);
        return 1;
    }
    const steps = (digest.steps ?? []).filter((s) => s.op !== "same");
    const counts = terraformReport(steps);
    fs.writeFileSync(path.join(ctx.root, `preview-${stack}.json`), JSON.stringify(counts) + "\n");
    const destructive = destructiveSteps(steps);
    const errors = (digest.diagnostics ?? [])
        .filter((d) => d.severity === "error")
        .map((d) => `${d.urn ? `${nameOf(d.urn)}: ` : ""}${(d.message ?? "").trim()}`);
    const lines = [
        `## ${stack}: ${counts.create} to add, ${counts.update} to change, ${counts.delete} to delete`,
        "",
        ...(destructive.length > 0 ? ["Replaced or deleted:", ...destructive.map((d) => `- ${d}`)] : ["Nothing is replaced or deleted."]),
        ...(errors.length > 0 ? ["", "Errors:", ...errors.map((e) => `- ${e}`)] : []),
    ];
    fs.writeFileSync(path.join(ctx.root, `preview-${stack}.md`), lines.join("\n") + "\n");
    // What `--diff` would show, but values: a secret never reaches the job log this way.
    const sign: Record<string, string> = { add: "+", update: "~", delete: "-" };
    for (const s of steps) {
        ctx.print(`${s.op.padEnd(18)} ${typeOf(s.urn)} ${nameOf(s.urn)}`);
        const paths = Object.entries(s.detailedDiff ?? {});
        for (const [p, d] of paths)
            ctx.print(`    ${sign[d.kind.replace(/-replace$/, "")] ?? "~"} ${p}${d.kind.endsWith("-replace") ? " (forces replacement)" : ""}`);
        if (paths.length === 0 && s.diffReasons?.length) ctx.print(`    ~ ${s.diffReasons.join(", ")}`);
    }
    for (const line of lines) ctx.print(line);
    if (preview.code !== 0) return 1;

    const losses = isProduction(ctx.root, stack) ? criticalLosses(steps) : [];
    if (losses.length > 0) {
        const labels = (ctx.env["MERGE_REQUEST_LABELS"] ?? ctx.env["CI_MERGE_REQUEST_LABELS"] ?? "").split(",").map((l) => l.trim());
        if (!labels.includes(PRODUCTION_OVERRIDE_LABEL)) {
            ctx.print(
                `This change would ${losses.join("; ")} in production. If that is intended, add the label ` +
                    `'${PRODUCTION_OVERRIDE_LABEL}' to the merge request and run the pipeline again.`,
            );
            return 1;
        }
        ctx.print(`Production loses ${losses.join("; ")}: allowed by the label '${PRODUCTION_OVERRIDE_LABEL}'.`);
    }
    return 0;
}
