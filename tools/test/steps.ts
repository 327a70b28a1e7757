import { spawn } from "child_process";
import * as path from "path";
import { performance } from "perf_hooks";
import { REPO_ROOT } from "../../lib/project";

// `npm test`: every gate a change must pass, the static ones side by side, then the suite. Each step
// is an ordinary command (also an npm script of its own); this only orders them and times them.

const bin = (tool: string) => path.join(REPO_ROOT, "node_modules", ".bin", tool);

export interface Step {
    name: string;
    command: string;
    args: string[];
}

/**
 * The gates in the order a failure is reported; they need no build and run side by side. oxlint's
 * type-aware mode builds the program with TypeScript 7 (typescript-go) once, for the lint rules that
 * need types and for the full type-check (`--type-check`: every compiler diagnostic under
 * tsconfig.json's strict options), so the program is not built twice. `npm run typecheck` runs the
 * TypeScript 7 compiler alone.
 */
export const STATIC_STEPS: Step[] = [
    // The cache (node_modules/.cache/prettier) is keyed by file content and config: only changed files are read.
    { name: "format", command: bin("prettier"), args: ["--check", "--cache", "--cache-strategy", "content", "--log-level", "warn", "."] },
    { name: "lint + type-check", command: bin("oxlint"), args: ["--type-aware", "--type-check", "--deny-warnings", "--quiet"] },
    // Files, exports and dependencies nothing uses (knip.json names the entry points).
    { name: "unused code", command: bin("knip"), args: ["--no-progress"] },
    // The checkout's own tree, whoever wrote it: the suite's tests run on trees of their own (test/fixtures).
    { name: "GitOps tree", command: bin("ts-node"), args: ["--swc", path.join("tools", "check", "cli.ts")] },
];
/** The suite: the program, the tools and the checks, each on inputs of its own. */
export const SUITE: Step = { name: "jest", command: bin("jest"), args: [] };

export interface StepResult {
    name: string;
    code: number;
    ms: number;
    output: string;
}

export function runStep(step: Step, options: { stream?: boolean } = {}): Promise<StepResult> {
    const start = performance.now();
    return new Promise((resolve) => {
        const child = spawn(step.command, step.args, {
            cwd: REPO_ROOT,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, FORCE_COLOR: process.stdout.isTTY ? "1" : "0" },
        });
        let output = "";
        const take = (chunk: Buffer) => {
            output += chunk.toString();
            if (options.stream) process.stdout.write(chunk);
        };
        child.stdout.on("data", take);
        child.stderr.on("data", take);
        child.on("error", (e) => resolve({ name: step.name, code: 127, ms: performance.now() - start, output: `${output}${e.message}\n` }));
        child.on("close", (code) => resolve({ name: step.name, code: code ?? 1, ms: performance.now() - start, output }));
    });
}

/**
 * Runs the static gates side by side, then the suite: on two cores the suite wants both, and a change
 * that does not even type-check gets its answer in seconds. Every static failure is reported, not only
 * the first.
 */
export async function runAll(options: { streamSuite?: boolean } = { streamSuite: true }): Promise<{ results: StepResult[]; wallMs: number }> {
    const start = performance.now();
    const results = await Promise.all(STATIC_STEPS.map((s) => runStep(s)));
    for (const r of results) if (r.code !== 0) process.stdout.write(`\n✗ ${r.name} failed:\n${r.output}`);
    if (results.every((r) => r.code === 0)) results.push(await runStep(SUITE, { stream: options.streamSuite }));
    return { results, wallMs: performance.now() - start };
}

export function timings(results: StepResult[], wallMs: number): string {
    const parts = results.map((r) => `${r.name} ${(r.ms / 1000).toFixed(1)} s${r.code === 0 ? "" : " (failed)"}`);
    return `npm test: ${(wallMs / 1000).toFixed(1)} s wall — ${parts.join(", ")}`;
}
