import { fork, type SandboxContext } from "../../tools/sandbox/sandbox";

/** A fork of each kind from each source: a sandbox of every stack, as branches commit them. */
export const COMMITTED_SANDBOXES: { sandbox: string; from: string; branch?: string }[] = [
    // Sources that follow main through Git need a branch; the OCI-fed ones keep main.
    { sandbox: "sb-development", from: "development", branch: "feature/sb-development" },
    { sandbox: "sb-staging", from: "staging" },
    { sandbox: "sb-production", from: "production" },
    { sandbox: "sb-aws-development", from: "aws-development", branch: "feature/sb-aws-development" },
    { sandbox: "sb-aws-staging", from: "aws-staging" },
    { sandbox: "sb-aws-production", from: "aws-production" },
];

/** Forks every sandbox of `COMMITTED_SANDBOXES` into a copy of the repository, as `npm run sandbox -- fork` would without the CLI. */
export async function commitSandboxes(root: string): Promise<string[]> {
    const ctx: SandboxContext = {
        root,
        now: new Date("2026-11-24T18:00:00.000Z"),
        async run(command, args) {
            if (command === "git" && args[0] === "config") return { code: 0, stdout: "dev@example.com\n", stderr: "" };
            // No Pulumi CLI: the fork writes the stack file itself.
            throw Object.assign(new Error(`spawn ${command} ENOENT`), { code: "ENOENT" });
        },
        print: () => undefined,
    };
    for (const s of COMMITTED_SANDBOXES) await fork(ctx, s);
    return COMMITTED_SANDBOXES.map((s) => s.sandbox);
}
