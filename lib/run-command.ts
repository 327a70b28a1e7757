// Running a command and collecting what it printed. Shared by the kind provider (which Pulumi
// serialises with this function, so it requires child_process inside it rather than capturing the
// module) and the sandbox tool.

export interface CommandResult {
    code: number;
    stdout: string;
    stderr: string;
}

/**
 * Runs a command; rejects only when it cannot start (e.g. ENOENT), resolves with its exit code
 * otherwise. A command still running after `timeoutMs` is killed and reported as failed, saying so.
 */
export type CommandRunner = (command: string, args: string[], stdin?: string, timeoutMs?: number) => Promise<CommandResult>;

/** Spawns a process, feeding it stdin; the default runner. @param timeoutMs default 10 minutes */
export function spawnCommand(command: string, args: string[], stdin?: string, timeoutMs = 600_000): Promise<CommandResult> {
    const childProcess = require("child_process") as typeof import("child_process");
    return new Promise((resolve, reject) => {
        const child = childProcess.spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
        }, timeoutMs);
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
        child.on("close", (code: number | null) => {
            clearTimeout(timer);
            if (timedOut) stderr += `\n${command} ${args.join(" ")} did not finish within ${Math.round(timeoutMs / 1000)}s and was stopped`;
            resolve({ code: timedOut ? 124 : (code ?? 1), stdout, stderr });
        });
        child.stdin.on("error", () => undefined); // the process may exit before reading stdin
        child.stdin.end(stdin ?? "");
    });
}
