import * as fs from "fs";
import * as path from "path";
import { PulumiCommand } from "@pulumi/pulumi/automation";
import type { CommandResult, CommandRunner } from "../../lib/run-command";

// What the tools that drive the Pulumi CLI through the Automation API share (npm run local, npm run e2e).

/** An environment without its unset variables, as the Automation API takes it. */
export function definedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
    return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/**
 * The Pulumi CLI this context's PATH finds, for the Automation API, which otherwise looks on the PATH
 * of this process. It takes an installation root (the folder above `bin/pulumi`), as the installer,
 * Homebrew (once the symlink is followed) and package managers lay it out.
 */
export async function pulumiOnPath(env: NodeJS.ProcessEnv): Promise<PulumiCommand> {
    for (const dir of (env["PATH"] ?? "").split(path.delimiter).filter(Boolean)) {
        const candidate = path.join(dir, "pulumi");
        try {
            fs.accessSync(candidate, fs.constants.X_OK);
        } catch {
            continue;
        }
        const real = fs.realpathSync(candidate);
        if (path.basename(path.dirname(real)) === "bin") return PulumiCommand.get({ root: path.dirname(path.dirname(real)) });
        break;
    }
    return PulumiCommand.get();
}

/** Output of one stack, a line at a time, each prefixed with the stack's name. */
export function prefixed(stack: string, print: (line: string) => void): (chunk: string) => void {
    let pending = "";
    return (chunk) => {
        pending += chunk;
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) if (line.trim()) print(`[${stack}] ${line}`);
    };
}

export function seconds(ms: number): string {
    const s = Math.round(ms / 1000);
    return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** The line of a failed Pulumi command worth showing: the readiness gate's verdict, else the first error. */
export function firstError(e: unknown): string {
    const text = String((e as Error)?.message ?? e);
    const lines = text.split("\n").map((l) => l.trim());
    const flux = lines.find((l) => /Flux (is|was) not Ready/.test(l));
    if (flux) return flux.slice(flux.search(/Flux (is|was) not Ready/));
    const error = lines.find((l) => l.startsWith("error: ") && !l.endsWith("update failed"));
    return (error ?? lines.find((l) => l.length > 0) ?? "failed").replace(/^error: /, "");
}

export type Tool = "pulumi" | "docker" | "kind" | "kubectl";

/** How each tool is asked whether it is there (and, for Docker, whether its engine answers). */
const PROBES: Record<Tool, string[]> = {
    pulumi: ["version"],
    docker: ["info", "--format", "{{.ServerVersion}}"],
    kind: ["version"],
    kubectl: ["version", "--client"],
};

/** What each tool answered; undefined for a tool that is not installed. */
export async function probeTools(run: CommandRunner, tools: Tool[]): Promise<Partial<Record<Tool, CommandResult>>> {
    const answers: Partial<Record<Tool, CommandResult>> = {};
    for (const tool of tools) {
        const answer = await run(tool, PROBES[tool]).catch(() => undefined);
        if (answer) answers[tool] = answer;
    }
    return answers;
}
