import { afterAll, describe, expect, it } from "@jest/globals";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as ts from "typescript";
import { compilerOptionsOf, languageHostLaunch } from "./language-host";
import { REPO_ROOT } from "../../lib/project";

/** A folder holding a copy of Pulumi.yaml with `main` set, and the folders `main` may name. */
const projects: string[] = [];
afterAll(() => {
    for (const dir of projects) fs.rmSync(dir, { recursive: true, force: true });
});

function projectWithMain(main: string | undefined): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-launch-"));
    projects.push(dir);
    fs.mkdirSync(path.join(dir, "infra"));
    fs.writeFileSync(path.join(dir, "infra", "index.ts"), "export {};\n");
    const lines = ["name: p", "runtime:", "  name: nodejs", "  options:", "    typescript: true"];
    if (main) lines.push(`main: ${main}`);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), lines.join("\n") + "\n");
    return dir;
}

describe("the language host's launch (restated from pulumi-language-nodejs, which cannot run here)", () => {
    it("starts a project without `main` in the project folder and lets package.json name the entry", () => {
        const dir = projectWithMain(undefined);
        expect(languageHostLaunch(dir)).toEqual({ pwd: dir, entryPoint: ".", env: { PULUMI_NODEJS_TYPESCRIPT: "true" } });
    });

    it("starts a project whose `main` names a file in that file's folder, where no tsconfig is looked for above", () => {
        const dir = projectWithMain("infra/index.ts");
        expect(languageHostLaunch(dir)).toMatchObject({ pwd: path.join(dir, "infra"), entryPoint: "index.ts" });
    });

    it("starts a project whose `main` names a folder in that folder", () => {
        const dir = projectWithMain("infra");
        expect(languageHostLaunch(dir)).toMatchObject({ pwd: path.join(dir, "infra"), entryPoint: "." });
    });

    it("hands this project's runtime option `tsconfig` to run.js", () => {
        expect(languageHostLaunch(REPO_ROOT)).toEqual({
            pwd: REPO_ROOT,
            entryPoint: ".",
            env: { PULUMI_NODEJS_TYPESCRIPT: "true", PULUMI_NODEJS_TSCONFIG_PATH: "tsconfig.pulumi.json" },
        });
    });
});

/** The compiler `npm run typecheck` runs: TypeScript 7 (native), installed as `typescript-native`. */
const TYPECHECKER = path.join(REPO_ROOT, "node_modules", "typescript-native", "bin", "tsc");

describe("type-checking", () => {
    it("runs TypeScript 7 in npm test, while Pulumi's language host keeps loading TypeScript 5", () => {
        expect(
            (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "node_modules", "typescript-native", "package.json"), "utf8")) as { version: string }).version,
        ).toMatch(/^7\./);
        // @pulumi/pulumi declares typescript < 7 and run.js loads it through ts-node.
        expect((require("typescript/package.json") as { version: string }).version).toMatch(/^5\./);
    });

    const emitShaping: (keyof ts.CompilerOptions)[] = [
        "target",
        "module",
        "moduleResolution",
        "esModuleInterop",
        "useDefineForClassFields",
        "isolatedModules",
        "experimentalDecorators",
        "jsx",
    ];

    it("Pulumi's tsconfig differs from the checked one in noCheck only, among the options that shape emitted code", () => {
        const checked = compilerOptionsOf(path.join(REPO_ROOT, "tsconfig.json"));
        const pulumi = compilerOptionsOf(path.join(REPO_ROOT, "tsconfig.pulumi.json"));
        expect(pulumi.noCheck).toBe(true);
        expect(checked.noCheck).toBeUndefined();
        for (const key of emitShaping) expect([key, pulumi[key]]).toEqual([key, checked[key]]);
    });

    it("npm test's type-check fails on a planted type error that Pulumi's transpile-only run lets through", async () => {
        const dir = fs.mkdtempSync(path.join(REPO_ROOT, ".typecheck-"));
        try {
            fs.writeFileSync(path.join(dir, "planted.ts"), 'export const replicas: number = "three";\n');
            const tsc = (extend: string) => {
                const project = path.join(dir, `check-with-${extend}`);
                fs.writeFileSync(project, JSON.stringify({ extends: `../${extend}`, include: ["planted.ts"], compilerOptions: { types: ["node"] } }));
                return new Promise<{ code: number; out: string }>((resolve) =>
                    execFile(process.execPath, [TYPECHECKER, "--noEmit", "--pretty", "false", "-p", project], (e, stdout) =>
                        resolve({ code: e ? Number(e.code) : 0, out: stdout }),
                    ),
                );
            };
            const [checked, pulumi] = await Promise.all([tsc("tsconfig.json"), tsc("tsconfig.pulumi.json")]);
            expect(checked.code).not.toBe(0);
            expect(checked.out).toContain("planted.ts(1,14): error TS2322: Type 'string' is not assignable to type 'number'.");
            expect(pulumi).toEqual({ code: 0, out: "" });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }, 30_000);
});
