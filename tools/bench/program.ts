import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";
import { cliConfig, listStacks } from "../../lib/stack-files";
import { runAsEngine } from "../engine/language-host";
import { REPO_ROOT } from "../../lib/project";
import { median } from "./stats";

// Program evaluation the way `pulumi preview` runs it: each stack's program through Pulumi's own
// cmd/run from the cwd and with the tsconfig the language host picks, in a fresh process, against a
// floor measured in the same run: the same loader running the smallest program of this design, one
// Kubernetes resource and one dynamic resource (whose provider Pulumi serialises, as it does ours).

const PROJECT = "gitops-platform";

export interface Sample {
    wallMs: number;
    maxRssMb: number;
    resources: number;
    transpileOnly: boolean;
}

/** The standing targets (DEVELOPERS.md): ratios to the floor, and peak memory. */
export const TARGETS = { kind: { ratio: 1.3, rssMb: 250 }, eks: { ratio: 1.6, rssMb: 300 } } as const;

function summarise(samples: Sample[]): Sample {
    return {
        wallMs: median(samples.map((s) => s.wallMs)),
        maxRssMb: median(samples.map((s) => s.maxRssMb)),
        resources: samples[0]?.resources ?? 0,
        transpileOnly: samples.every((s) => s.transpileOnly),
    };
}

/**
 * A project beside the real one (so it resolves the same node_modules) declaring one Namespace and one
 * dynamic resource.
 * `loader: "default"` is the floor the targets are stated against: Pulumi's default TypeScript loader
 * (ts-node, transpile-only through `noCheck`). `loader: "program"` uses this project's own loader
 * settings (tsconfig.pulumi.json, swc) and is printed for comparison.
 */
function floorProject(loader: "default" | "program"): string {
    const dir = fs.mkdtempSync(path.join(REPO_ROOT, ".bench-floor-"));
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: floor\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n");
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "floor", private: true, main: "index.ts" }));
    const ours = ts.parseConfigFileTextToJson("tsconfig.pulumi.json", fs.readFileSync(path.join(REPO_ROOT, "tsconfig.pulumi.json"), "utf8")).config as Record<
        string,
        object
    >;
    const tsconfig = loader === "program" ? { compilerOptions: ours.compilerOptions, "ts-node": ours["ts-node"] } : { compilerOptions: { noCheck: true } };
    fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
    fs.writeFileSync(
        path.join(dir, "index.ts"),
        [
            'import * as k8s from "@pulumi/kubernetes";',
            'import * as pulumi from "@pulumi/pulumi";',
            "",
            "const provider: pulumi.dynamic.ResourceProvider = {",
            '    async create(inputs: Record<string, unknown>) { return { id: "floor", outs: inputs }; },',
            "};",
            "class Floor extends pulumi.dynamic.Resource {",
            "    constructor(name: string) { super(provider, name, { value: name }, {}); }",
            "}",
            "",
            'export const name = new k8s.core.v1.Namespace("floor").metadata.name;',
            'export const dynamic = new Floor("floor").id;',
            "",
        ].join("\n"),
    );
    return dir;
}

async function sample(projectDir: string, project: string, stack: string, config: Record<string, string>, secretKeys: string[]): Promise<Sample> {
    const run = await runAsEngine({ projectDir, project, stack, config, secretKeys });
    if (run.report.code !== 0) throw new Error(`${project}/${stack} failed under the mock engine:\n${run.stderr}`);
    return {
        wallMs: run.wallMs,
        maxRssMb: run.report.maxRssMb,
        resources: run.report.resources.length,
        transpileOnly: run.report.tsNode?.transpileOnly ?? false,
    };
}

export interface ProgramBench {
    /** One Namespace and one dynamic resource on Pulumi's default loader, transpile-only: what the ratios divide by. */
    floor: Sample;
    /** The same program on this project's loader settings (swc). */
    floorOwnLoader: Sample;
    stacks: { stack: string; backend: "kind" | "eks"; sample: Sample; ratio: number; withinTarget: boolean }[];
}

export async function benchPrograms(runs = 5): Promise<ProgramBench> {
    const floorDir = floorProject("default");
    const ownLoaderDir = floorProject("program");
    const floorSamples: Sample[] = [];
    const ownLoaderSamples: Sample[] = [];
    const stacks: ProgramBench["stacks"] = [];
    try {
        // Interleaved, so a machine that slows down mid-run slows floor and stacks alike.
        const perStack = new Map<string, Sample[]>();
        for (let i = 0; i < runs; i++) {
            floorSamples.push(await sample(floorDir, "floor", "floor", {}, []));
            ownLoaderSamples.push(await sample(ownLoaderDir, "floor", "floor", {}, []));
            for (const stack of listStacks(REPO_ROOT)) {
                const config = { ...cliConfig(REPO_ROOT, stack), [`${PROJECT}:token`]: "bench-token" };
                const s = await sample(REPO_ROOT, PROJECT, stack, config, [`${PROJECT}:token`]);
                perStack.set(stack, [...(perStack.get(stack) ?? []), s]);
            }
        }
        const floor = summarise(floorSamples);
        for (const [stack, samples] of perStack) {
            const s = summarise(samples);
            const backend = (JSON.parse(cliConfig(REPO_ROOT, stack)[`${PROJECT}:cluster`] ?? "{}") as { backend: "kind" | "eks" }).backend;
            const ratio = s.wallMs / floor.wallMs;
            const target = TARGETS[backend];
            stacks.push({ stack, backend, sample: s, ratio, withinTarget: s.transpileOnly && ratio <= target.ratio && s.maxRssMb <= target.rssMb });
        }
        return { floor, floorOwnLoader: summarise(ownLoaderSamples), stacks };
    } finally {
        fs.rmSync(floorDir, { recursive: true, force: true });
        fs.rmSync(ownLoaderDir, { recursive: true, force: true });
    }
}

export function programTable(bench: ProgramBench): string {
    const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
    const lines = [
        row(["stack", "resources", "wall", "peak RSS", "÷ floor", "target", ""]),
        row(["---", "---:", "---:", "---:", "---:", "---", "---"]),
        row([
            "floor: 1 Namespace + 1 dynamic resource, default loader",
            String(bench.floor.resources),
            `${(bench.floor.wallMs / 1000).toFixed(2)} s`,
            `${bench.floor.maxRssMb.toFixed(0)} MB`,
            "1.00×",
            "",
            "",
        ]),
        row([
            "floor: the same, our loader (swc)",
            String(bench.floorOwnLoader.resources),
            `${(bench.floorOwnLoader.wallMs / 1000).toFixed(2)} s`,
            `${bench.floorOwnLoader.maxRssMb.toFixed(0)} MB`,
            `${(bench.floorOwnLoader.wallMs / bench.floor.wallMs).toFixed(2)}×`,
            "",
            "",
        ]),
    ];
    for (const s of bench.stacks) {
        const t = TARGETS[s.backend];
        lines.push(
            row([
                s.stack,
                String(s.sample.resources),
                `${(s.sample.wallMs / 1000).toFixed(2)} s`,
                `${s.sample.maxRssMb.toFixed(0)} MB`,
                `${s.ratio.toFixed(2)}×`,
                `≤ ${t.ratio}×, ≤ ${t.rssMb} MB`,
                s.withinTarget ? "ok" : "OVER",
            ]),
        );
    }
    return lines.join("\n");
}
