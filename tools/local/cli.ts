// `npm run local -- up|down|status [stack…]`: the local environments on kind, side by side, in one command.
import { Command, CommanderError } from "commander";
import { REPO_ROOT } from "../../lib/project";
import { spawnCommand } from "../../lib/run-command";
import { local, LocalContext, LocalError } from "./local";

/** The command line; returns the exit code. */
export async function main(argv: string[], ctx: LocalContext): Promise<number> {
    let code = 0;
    const program = new Command("npm run local --")
        .description("Bring the kind stacks up, tear them down, or show how they are (default: development, staging, production).")
        .exitOverride()
        .configureOutput({ writeOut: (text) => ctx.print(text.trimEnd()), writeErr: (text) => ctx.print(text.trimEnd()) });
    for (const [name, description] of [
        ["up", "create or update each stack with `pulumi up`, concurrently, and wait for Flux"],
        ["down", "destroy each stack (Flux objects first, then Flux, then the cluster)"],
        ["status", "each stack's kubectl context and whether Flux is Ready, changing nothing"],
    ] as const) {
        program
            .command(name)
            .argument("[stacks...]", "kind stacks from stacks/")
            .description(description)
            .action(async (stacks: string[]) => {
                code = await local(name, stacks, ctx);
            });
    }
    try {
        await program.parseAsync(argv, { from: "user" });
        return code;
    } catch (e) {
        if (e instanceof CommanderError) return e.exitCode;
        if (e instanceof LocalError) {
            ctx.print(e.message);
            return 1;
        }
        throw e;
    }
}

if (require.main === module) {
    main(process.argv.slice(2), { root: REPO_ROOT, env: process.env, run: (c, a) => spawnCommand(c, a, undefined, 60_000), print: (l) => console.log(l) }).then(
        (code) => process.exit(code),
        (e: unknown) => {
            console.error(e instanceof Error ? e.message : String(e));
            process.exit(1);
        },
    );
}
