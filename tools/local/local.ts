import * as fs from "fs";
import * as path from "path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { kindReleaseProblem } from "../../components/kind-provider";
import { judge } from "../../components/flux-ready-provider";
import { durationSeconds } from "../../lib/validators";
import { hostPortClashes } from "../../lib/host-ports";
import { ENVIRONMENTS, KIND_RELEASE, TOKEN_ENV_VAR } from "../../lib/project";
import { CommandRunner } from "../../lib/run-command";
import { configString, configValue, listStacks, readStackDocument, stackFileProblem } from "../../lib/stack-files";
import { definedEnv, firstError, prefixed, probeTools, pulumiOnPath, seconds } from "./workspace";

// The design story's `task create` / `task delete`: every local environment on kind with one command,
// through the Pulumi Automation API (which drives the Pulumi CLI), side by side.

/** The git-ignored folder holding the state of local stacks when the CLI is logged in nowhere else. */
export const LOCAL_BACKEND_DIR = ".pulumi-local";
/**
 * The passphrase of stacks in that folder when PULUMI_CONFIG_PASSPHRASE is not set. Documented in the
 * README: it keeps secrets out of the state file as plain text, and protects nothing on a shared machine.
 */
export const LOCAL_PASSPHRASE = "gitops-platform-local";

export interface LocalContext {
    /** The repository: stack files, Pulumi.yaml and the local backend folder. */
    root: string;
    env: NodeJS.ProcessEnv;
    /** Runs the prerequisite probes (docker, kind, pulumi, kubectl). */
    run: CommandRunner;
    print: (line: string) => void;
    now?: () => number;
}

export class LocalError extends Error {}

interface Row {
    stack: string;
    context: string;
    flux: string;
    took: string;
    ok: boolean;
}

/** `up [stack…]`, `down [stack…]` or `status [stack…]`; returns the exit code. */
export async function local(command: "up" | "down" | "status", requested: string[], ctx: LocalContext): Promise<number> {
    const stacks = requested.length > 0 ? requested : [...ENVIRONMENTS];
    const backend = await backendFor(ctx);
    const problems = [...stackProblems(stacks, ctx), ...(await prerequisiteProblems(command, stacks, backend, ctx))];
    if (command === "up") problems.push(...hostPortClashes(ctx.root, stacks));
    if (problems.length > 0) {
        throw new LocalError(`npm run local -- ${command} cannot start:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    }
    if (backend.local) {
        fs.mkdirSync(path.join(ctx.root, LOCAL_BACKEND_DIR), { recursive: true });
        ctx.print(`state: ${backend.url} (not logged in to another backend)`);
    }
    const workspace = await LocalWorkspace.create({
        workDir: ctx.root,
        envVars: { ...definedEnv(ctx.env), ...backend.env },
        pulumiCommand: await pulumiOnPath(ctx.env),
    });
    const rows = await Promise.all(stacks.map((stack) => one(command, stack, workspace, ctx)));
    table(rows, ctx.print);
    return rows.every((r) => r.ok) ? 0 : 1;
}

async function one(command: "up" | "down" | "status", name: string, workspace: LocalWorkspace, ctx: LocalContext): Promise<Row> {
    const now = ctx.now ?? Date.now;
    const started = now();
    const took = () => seconds(now() - started);
    const out = prefixed(name, ctx.print);
    let stack: Stack;
    try {
        stack = command === "up" ? await Stack.createOrSelect(name, workspace) : await Stack.select(name, workspace);
    } catch (e) {
        if (/no stack named/.test(String((e as Error).message)))
            return { stack: name, context: "-", flux: "no such stack: nothing to do", took: "-", ok: true };
        return { stack: name, context: "-", flux: firstError(e), took: took(), ok: false };
    }
    const contextOf = async () => {
        const outputs = await stack.outputs();
        return typeof outputs["kubeContext"]?.value === "string" ? (outputs["kubeContext"].value as string) : "-";
    };
    try {
        if (command === "up") {
            const result = await stack.up({ onOutput: out, color: "never" });
            const context = typeof result.outputs["kubeContext"]?.value === "string" ? (result.outputs["kubeContext"].value as string) : "-";
            return { stack: name, context, flux: waitsForFlux(ctx.root, name) ? "Ready" : "not waited for (flux.readyTimeout 0s)", took: took(), ok: true };
        }
        if (command === "down") {
            const context = await contextOf();
            await stack.destroy({ onOutput: out, color: "never" });
            return { stack: name, context, flux: "destroyed", took: took(), ok: true };
        }
        const context = await contextOf();
        return { stack: name, context, ...(await fluxStatus(context, ctx)), took: "-" };
    } catch (e) {
        return { stack: name, context: "-", flux: firstError(e), took: took(), ok: false };
    }
}

/** What the FluxInstance of a running cluster says, read with kubectl through the stack's context. */
async function fluxStatus(context: string, ctx: LocalContext): Promise<{ flux: string; ok: boolean }> {
    if (context === "-") return { flux: "not deployed", ok: true };
    const read = await ctx.run("kubectl", ["--context", context, "-n", "flux-system", "get", "fluxinstance", "flux", "-o", "json", "--request-timeout=10s"]);
    if (read.code !== 0) return { flux: `cannot read the FluxInstance: ${read.stderr.trim().split("\n")[0] ?? ""}`, ok: false };
    const verdict = judge(
        { apiVersion: "fluxcd.controlplane.io/v1", kind: "FluxInstance", namespace: "flux-system", name: "flux" },
        JSON.parse(read.stdout) as object,
    );
    if (verdict.state === "ready") return { flux: "Ready", ok: true };
    return { flux: verdict.state === "missing" ? "no FluxInstance" : verdict.why, ok: false };
}

/** Whether `pulumi up` of this stack waits for Flux (flux.readyTimeout is not 0s). */
function waitsForFlux(root: string, stack: string): boolean {
    const timeout = configString(readStackDocument(root, stack), "flux.readyTimeout");
    return timeout === undefined || durationSeconds(timeout) > 0;
}

interface Backend {
    url: string;
    local: boolean;
    env: Record<string, string>;
}

/** The user's backend when the CLI is logged in (or PULUMI_BACKEND_URL says one), else the repository's own folder. */
async function backendFor(ctx: LocalContext): Promise<Backend> {
    if (ctx.env["PULUMI_BACKEND_URL"]) return { url: ctx.env["PULUMI_BACKEND_URL"], local: false, env: {} };
    const whoami = await ctx.run("pulumi", ["whoami", "--json"]).catch(() => undefined);
    if (whoami?.code === 0) {
        let url = "the logged-in backend";
        try {
            url = (JSON.parse(whoami.stdout) as { url?: string }).url ?? url;
        } catch {
            // an older CLI without --json: still logged in
        }
        return { url, local: false, env: {} };
    }
    const url = `file://${path.join(ctx.root, LOCAL_BACKEND_DIR)}`;
    const env: Record<string, string> = { PULUMI_BACKEND_URL: url };
    if (ctx.env["PULUMI_CONFIG_PASSPHRASE"] === undefined && !ctx.env["PULUMI_CONFIG_PASSPHRASE_FILE"]) env["PULUMI_CONFIG_PASSPHRASE"] = LOCAL_PASSPHRASE;
    return { url, local: true, env };
}

function stackProblems(stacks: string[], ctx: LocalContext): string[] {
    const known = listStacks(ctx.root);
    return stacks.flatMap((stack) => {
        if (!known.includes(stack)) return [`${stack} has no stack file. Fix: pick one of ${known.join(", ")}`];
        const problem = stackFileProblem(ctx.root, stack);
        if (problem) return [problem];
        const backend = configString(readStackDocument(ctx.root, stack), "cluster.backend");
        return backend === "kind" ? [] : [`${stack} runs on ${backend}, and this command runs kind stacks only. Fix: pulumi up -s ${stack}`];
    });
}

/** Every missing tool or setting at once, each with its fix. */
async function prerequisiteProblems(command: string, stacks: string[], backend: Backend, ctx: LocalContext): Promise<string[]> {
    const problems: string[] = [];
    const tools = await probeTools(ctx.run, command === "status" ? ["pulumi"] : ["pulumi", "docker", "kind"]);
    if (!tools.pulumi) problems.push("the Pulumi CLI is not installed. Fix: https://www.pulumi.com/docs/iac/download-install/");
    if (command === "status") return problems; // reads state and clusters; creates nothing

    if (!tools.docker) problems.push("Docker is not installed. Fix: install Docker Desktop or Docker Engine");
    else if (tools.docker.code !== 0) {
        problems.push(`Docker is not running (\`docker info\`: ${tools.docker.stderr.trim().split("\n")[0] ?? ""}). Fix: start Docker`);
    }
    // The stacks whose files read: stackProblems names the others.
    const known = listStacks(ctx.root);
    const docs = stacks.filter((s) => known.includes(s) && !stackFileProblem(ctx.root, s)).map((s) => ({ stack: s, doc: readStackDocument(ctx.root, s) }));
    if (!tools.kind) problems.push(`kind is not installed. Fix: install kind ${KIND_RELEASE}.x (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)`);
    else if (command === "up" && docs.some(({ doc }) => configValue(doc, "cluster.nodeImage") === undefined)) {
        const problem = kindReleaseProblem(tools.kind.stdout);
        if (problem) problems.push(problem);
    }
    if (command === "up") {
        for (const { stack, doc } of docs) {
            if (!ctx.env[TOKEN_ENV_VAR] && configValue(doc, "token") === undefined) {
                problems.push(
                    `${stack} has no token. Fix: export ${TOKEN_ENV_VAR}=<token> (read_repository, read_registry), or pulumi config set --secret token <token> -s ${stack}`,
                );
            }
        }
    }
    if (!backend.local && backend.url.startsWith("file://") && ctx.env["PULUMI_CONFIG_PASSPHRASE"] === undefined && !ctx.env["PULUMI_CONFIG_PASSPHRASE_FILE"]) {
        problems.push(`the backend ${backend.url} keeps secrets with a passphrase, and none is set. Fix: export PULUMI_CONFIG_PASSPHRASE=<passphrase>`);
    }
    return problems;
}

function table(rows: Row[], print: (line: string) => void): void {
    const header: Row = { stack: "stack", context: "kubectl context", flux: "Flux", took: "took", ok: true };
    const all = [header, ...rows];
    const width = (k: "stack" | "context" | "took") => Math.max(...all.map((r) => r[k].length));
    print("");
    for (const r of all) print(`${r.stack.padEnd(width("stack"))}  ${r.context.padEnd(width("context"))}  ${r.took.padStart(width("took"))}  ${r.flux}`);
}
