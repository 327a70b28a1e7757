// `npm run sandbox -- <command>`: fork a sandbox from a stack, list sandboxes, promote one back, delete one.
import { spawn } from "child_process";
import { Command, CommanderError } from "commander";
import { spawnCommand } from "../../lib/run-command";
import { expire, fork, list, promote, remove, SandboxContext } from "./sandbox";
import { SandboxError } from "./tree";
import { REPO_ROOT } from "../../lib/project";

function context(): SandboxContext {
    return {
        root: REPO_ROOT,
        now: new Date(),
        run: (command, args, options) =>
            options?.stream
                ? new Promise((resolve, reject) => {
                      const child = spawn(command, args, { stdio: "inherit" });
                      child.on("error", reject);
                      child.on("close", (code) => resolve({ code: code ?? 1, stdout: "", stderr: "" }));
                  })
                : spawnCommand(command, args),
        print: (line) => console.log(line),
    };
}

/**
 * The command line: each command accepts its own options and nothing else (commander refuses the rest),
 * and every failure is an error with one clear line. Returns the exit code.
 */
export async function main(argv: string[], ctx: SandboxContext): Promise<number> {
    const program = new Command("npm run sandbox --")
        .description("Short-lived stacks forked from a stack's config, promoted back by merge request, torn down safely.")
        .exitOverride()
        // Errors come back as one SandboxError line (printed by the caller), not through commander's output.
        .configureOutput({ writeOut: (text) => ctx.print(text.trimEnd()), writeErr: () => undefined });
    program
        .command("fork")
        .argument("<sandbox>", "name of the sandbox: a DNS label, also its environment and cluster folder")
        .requiredOption("--from <stack>", "the stack whose config the sandbox copies, e.g. development")
        .option("--branch <branch>", "branch the sandbox's root sync follows; needed for a Git-synced source")
        .option("--ttl <duration>", "how long it is meant to live, e.g. 8h or 3d (default 7d); `list` flags it after")
        .option("--keep-alerts", "keep the source's alerts (channel and webhook); by default a sandbox sends none")
        .option("--create-branch", "create the branch with git switch -c")
        .option("--allow-nested", "allow forking a sandbox")
        .description("Fork a sandbox stack: stacks/Pulumi.<sandbox>.yaml and clusters/<sandbox>, copied from the source and pointed at the sandbox's branch.")
        .action((sandbox: string, o: { from: string; branch?: string; ttl?: string; keepAlerts?: boolean; createBranch?: boolean; allowNested?: boolean }) =>
            fork(ctx, {
                sandbox,
                from: o.from,
                branch: o.branch,
                ttl: o.ttl,
                keepAlerts: o.keepAlerts,
                createBranch: o.createBranch,
                allowNested: o.allowNested,
            }),
        );
    program
        .command("list")
        .description("Sandboxes with their owner, source, branch, age and TTL, from the stack files and the Pulumi backend; expired ones are flagged.")
        .action(() => list(ctx));
    program
        .command("expire")
        .option("--yes", "destroy them; without it, only say which")
        .option("--backend <backend>", "only sandboxes on this backend: kind or eks (the pipeline expires eks ones)")
        .option("--keep-files", "keep their stack files and folders (the pipeline's checkout is thrown away anyway)")
        .description("Destroy every sandbox past its TTL, Flux objects first, then Flux, then the cluster, as delete does.")
        .action(async (o: { yes?: boolean; backend?: string; keepFiles?: boolean }) => {
            if (o.backend !== undefined && o.backend !== "kind" && o.backend !== "eks")
                throw new SandboxError(`--backend must be kind or eks, not '${o.backend}'`);
            await expire(ctx, { yes: o.yes, backend: o.backend as "kind" | "eks" | undefined, keepFiles: o.keepFiles });
        });
    program
        .command("promote")
        .argument("<sandbox>")
        .option("--yes", "write the change; without it, promote only shows it")
        .description(
            "Carry what the sandbox changed since its fork (its folder and stack config) back into its source, merged with what changed there meanwhile; shows it, and writes it with --yes.",
        )
        .option("--force", "with --yes: promote although the Pulumi backend cannot say whether the sandbox's stack is gone")
        .option("--also <stack...>", "carry the config change to another stack that syncs the same folder (the kind or EKS twin)")
        .action((sandbox: string, o: { yes?: boolean; force?: boolean; also?: string[] }) =>
            promote(ctx, sandbox, { yes: o.yes, force: o.force, also: o.also }),
        );
    program
        .command("delete")
        .argument("<sandbox>")
        .option("--keep-files", "keep stacks/ and clusters/ files, to promote them")
        .description("pulumi destroy (Flux objects first, then Flux, then the cluster), pulumi stack rm, then remove the sandbox's files.")
        .action((sandbox: string, o: { keepFiles?: boolean }) => remove(ctx, sandbox, { keepFiles: o.keepFiles }));

    if (argv.length === 0) {
        ctx.print(program.helpInformation().trimEnd());
        return 2;
    }
    try {
        await program.parseAsync(argv, { from: "user" });
        return 0;
    } catch (e) {
        if (e instanceof CommanderError) {
            if (e.code === "commander.helpDisplayed" || e.code === "commander.help") return 0;
            throw new SandboxError(`${e.message.replace(/^error: /, "")}. See npm run sandbox -- --help`);
        }
        throw e;
    }
}

if (require.main === module) {
    main(process.argv.slice(2), context()).then(
        (code) => process.exit(code),
        (e: Error) => {
            // Expected failures are one clear line; anything else keeps its stack for a bug report.
            console.error(e instanceof SandboxError || e.name === "SandboxError" ? `error: ${e.message}` : e);
            process.exit(1);
        },
    );
}
