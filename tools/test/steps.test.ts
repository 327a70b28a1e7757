import { beforeAll, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as path from "path";
import { runStep, STATIC_STEPS, Step, SUITE } from "./steps";
import { REPO_ROOT } from "../../lib/project";

// npm test's gates, run on the program's entry file as it is and with one mistake planted in it.

const step = (name: string) => STATIC_STEPS.find((s) => s.name === name)!;

/** The step's command aimed at `target` instead of the whole repository. */
function aimedAt(s: Step, target: string): Step {
    const args = s.args.filter((a) => a !== "." && a !== "--quiet");
    return { ...s, args: [...args, target] };
}

/**
 * infra/index.ts, copied beside the repository's config with `plant` appended, in a folder of its own.
 * Not a dot-folder: both tools skip hidden folders. It exists only while this test runs.
 */
function plantedEntry(plant: string): { dir: string; file: string } {
    const dir = fs.mkdtempSync(path.join(REPO_ROOT, "planted-"));
    const entry = fs.readFileSync(path.join(REPO_ROOT, "infra", "index.ts"), "utf8").replace('from "./program"', 'from "../infra/program"');
    fs.writeFileSync(path.join(dir, "index.ts"), entry + plant);
    fs.writeFileSync(
        path.join(dir, "tsconfig.json"),
        JSON.stringify({ extends: "../tsconfig.json", include: ["index.ts"], compilerOptions: { rootDir: ".." } }),
    );
    return { dir, file: path.join(dir, "index.ts") };
}

async function gates(plant: string): Promise<Record<string, { code: number; output: string }>> {
    const { dir, file } = plantedEntry(plant);
    try {
        const [format, lint] = await Promise.all([runStep(aimedAt(step("format"), file)), runStep(aimedAt(step("lint + type-check"), dir))]);
        return { format: { code: format.code, output: format.output }, lint: { code: lint.code, output: lint.output } };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

describe("npm test", () => {
    it("runs the formatter, the linter with the type-check, the unused-code check and the GitOps tree check, then the suite", () => {
        const scripts = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
        expect(scripts.test).toBe("ts-node --swc tools/test/cli.ts");
        expect([...STATIC_STEPS, SUITE].map((s) => s.name)).toEqual(["format", "lint + type-check", "unused code", "GitOps tree", "jest"]);
        expect(step("lint + type-check").args).toEqual(expect.arrayContaining(["--type-aware", "--type-check", "--deny-warnings"]));
    });

    describe("with three mistakes planted in the program's entry file", () => {
        // One run for all three: each gate must name its own mistake, so none can pass for another's.
        const planted = [
            'export const replicas: number = "three";',
            "export function later(): void {",
            "    Promise.resolve(kubeconfig);",
            "}",
            "export const  badlyFormatted = {a:1};",
        ].join("\n");
        let result: Record<string, { code: number; output: string }>;
        beforeAll(async () => {
            result = await gates(`\n${planted}\n`);
        }, 30_000);

        it("fails the type-check on the type error", () => {
            expect(result.lint?.code).toBe(1);
            expect(result.lint?.output).toContain("Type 'string' is not assignable to type 'number'.");
        });

        it("fails the lint on the floating promise", () => {
            expect(result.lint?.output).toContain("no-floating-promises");
        });

        it("fails the format check on the misformatted line", () => {
            expect(result.format?.code).toBe(1);
            expect(result.format?.output).toMatch(/planted-\w+\/index\.ts/);
        });
    });
});
