// Running a command and collecting what it printed. Shared by the kind provider (which Pulumi
// serialises with this function, so it requires child_process inside it rather than capturing the
// module) and the sandbox tool.

export interface CommandResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs a command; rejects only when it cannot start (e.g. ENOENT), resolves with its exit code otherwise. */
export type CommandRunner = (command: string, args: string[], stdin?: string) => Promise<CommandResult>;

/** Spawns a process, feeding it stdin; the default runner. */
export function spawnCommand(command: string, args: string[], stdin?: string): Promise<CommandResult> {
    const childProcess = require("child_process") as typeof import("child_process");
    return new Promise((resolve, reject) => {
        const child = childProcess.spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("error", reject);
        child.on("close", (code: number | null) => resolve({ code: code ?? 1, stdout, stderr }));
        child.stdin.on("error", () => undefined); // the process may exit before reading stdin
        child.stdin.end(stdin ?? "");
    });
}
