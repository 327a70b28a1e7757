import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import * as ts from "typescript";
import { parse as parseYaml } from "yaml";

// Runs a Pulumi program the way `pulumi preview` / `pulumi up` does, minus the engine: the same cwd,
// arguments and environment the Node.js language host gives Pulumi's own `@pulumi/pulumi/cmd/run`, with
// Pulumi's mocks preloaded in place of the resource monitor. The Go half of the language host cannot
// run here, so `languageHostLaunch` restates it; each rule names the upstream code it follows.

const MOCK_ENGINE = path.join(__dirname, "mock-engine.js");

export interface Launch {
    /** The cwd the program gets (`--pwd`). */
    pwd: string;
    /** The program argument: "." (package.json decides) or a path relative to `pwd`. */
    entryPoint: string;
    /** Variables the language host adds to the program's environment. */
    env: Record<string, string>;
}

interface ProjectFile {
    name: string;
    main?: string;
    runtime: string | { name: string; options?: { typescript?: boolean; tsconfig?: string } };
}

/**
 * What the language host hands run.js for a project folder.
 * - pwd and entry point: pulumi/pulumi pkg/engine/project.go `getPwdMain`: no `main` → the project
 *   folder and "."; `main` naming a folder → that folder and "."; `main` naming a file → its folder
 *   and its base name.
 * - env: sdk/nodejs/cmd/pulumi-language-nodejs/main.go `parseOptions` + `execNodejs`: runtime option
 *   `typescript` (default true) → PULUMI_NODEJS_TYPESCRIPT=true; `tsconfig` → PULUMI_NODEJS_TSCONFIG_PATH.
 */
export function languageHostLaunch(projectDir: string): Launch {
    const project = parseYaml(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as ProjectFile;
    const options = typeof project.runtime === "string" ? {} : (project.runtime.options ?? {});
    let pwd = projectDir;
    let entryPoint = ".";
    if (project.main) {
        const main = path.join(projectDir, project.main);
        if (fs.statSync(main).isDirectory()) {
            pwd = main;
        } else {
            pwd = path.dirname(main);
            entryPoint = path.basename(main);
        }
    }
    const env: Record<string, string> = {};
    if (options.typescript !== false) env.PULUMI_NODEJS_TYPESCRIPT = "true";
    if (options.tsconfig) env.PULUMI_NODEJS_TSCONFIG_PATH = options.tsconfig;
    return { pwd, entryPoint, env };
}

/** What the mock engine saw of one program run (tools/engine/mock-engine.js writes it). */
export interface ProgramReport {
    code: number;
    cwd: string;
    resources: { type: string; name: string }[];
    /** Each dynamic resource type's serialised provider, the `__provider` text the engine would store. */
    providers: Record<string, string>;
    /** The installed packages the process loaded, as package-lock.json keys them (`node_modules/<name>`). */
    packages: string[];
    /** From loading the Pulumi SDK to exit, inside the program's process. */
    elapsedMs: number;
    maxRssMb: number;
    /** How run.js registered ts-node; null when it did not (a JavaScript program). */
    tsNode: { transpileOnly: boolean; swc: boolean; configFile: string | null; module: number; target: number } | null;
}

export interface ProgramRun {
    report: ProgramReport;
    /** Wall time of the whole process, spawn to exit. */
    wallMs: number;
    stdout: string;
    stderr: string;
}

export interface RunAsEngineOptions {
    projectDir: string;
    project: string;
    stack: string;
    /** Stack config as the CLI holds it: `<namespace>:<key>` → string. */
    config: Record<string, string>;
    /** Keys of `config` that are secret. */
    secretKeys?: string[];
    /** `pulumi preview` (true) or `pulumi up` (false). @default true */
    dryRun?: boolean;
    /** Extra environment, e.g. to simulate a user's shell. */
    env?: Record<string, string>;
    /** Extra Node.js flags, e.g. `--cpu-prof` to profile the program. */
    nodeArgs?: string[];
}

/** Runs the program through `@pulumi/pulumi/cmd/run` in a fresh Node.js process, as the language host does. */
export async function runAsEngine(options: RunAsEngineOptions): Promise<ProgramRun> {
    const launch = languageHostLaunch(options.projectDir);
    // pulumi-language-nodejs `locateModule`: the run script is resolved from the project folder.
    const runPath = require.resolve("@pulumi/pulumi/cmd/run", { paths: [options.projectDir] });
    const reportFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "gitops-engine-")), "report.json");
    // `constructConfig`: the host hands config over with keys in the legacy `<ns>:config:<key>` form.
    const legacy = Object.fromEntries(Object.entries(options.config).map(([k, v]) => [k.replace(/^([^:]+):/, "$1:config:"), v]));
    // `constructArguments`: monitor, project, stack, pwd, dry-run, then the entry point.
    const args = [
        ...(options.nodeArgs ?? []),
        "-r",
        MOCK_ENGINE,
        runPath,
        "--monitor",
        "mock",
        "--project",
        options.project,
        "--stack",
        options.stack,
        "--pwd",
        launch.pwd,
    ];
    if (options.dryRun ?? true) args.push("--dry-run");
    args.push(launch.entryPoint);
    const env: NodeJS.ProcessEnv = { ...process.env };
    // Settings a user's shell may carry would otherwise decide for the project.
    for (const key of Object.keys(env)) if (key.startsWith("PULUMI_") || key.startsWith("TS_NODE_")) delete env[key];
    Object.assign(env, launch.env, options.env, {
        PULUMI_CONFIG: JSON.stringify(legacy),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(options.secretKeys ?? []),
        REPORT_FILE: reportFile,
    });
    const start = performance.now();
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
        // The host starts the program from its own cwd; run.js moves to --pwd itself.
        const child = spawn(process.execPath, args, { cwd: os.tmpdir(), env, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString()));
        child.stderr.on("data", (c: Buffer) => (err += c.toString()));
        child.on("error", reject);
        child.on("close", () => resolve({ stdout: out, stderr: err }));
    });
    const wallMs = performance.now() - start;
    if (!fs.existsSync(reportFile)) throw new Error(`the program process wrote no report:\n${stderr}`);
    const report = JSON.parse(fs.readFileSync(reportFile, "utf8")) as ProgramReport;
    fs.rmSync(path.dirname(reportFile), { recursive: true, force: true });
    return { report, wallMs, stdout, stderr };
}

/** Compiler options after `extends`, as TypeScript (and so ts-node) resolves a tsconfig file. */
export function compilerOptionsOf(file: string): ts.CompilerOptions {
    const host = {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d: ts.Diagnostic) => {
            throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
        },
    };
    const parsed = ts.getParsedCommandLineOfConfigFile(file, {}, host);
    if (!parsed) throw new Error(`${file} could not be read`);
    return parsed.options;
}
