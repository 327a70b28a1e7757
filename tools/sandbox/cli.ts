// `npm run sandbox -- <command>`: fork a sandbox from a stack, list sandboxes, promote one back, delete one.
import { spawn } from "child_process";
import { parseArgs } from "util";
import { spawnCommand } from "../../lib/run-command";
import { fork, list, promote, remove, SandboxContext } from "./sandbox";
import { SandboxError } from "./tree";
import { REPO_ROOT } from "../../lib/project";

const HELP = `Usage: npm run sandbox -- <command> [options]

Commands:
  fork <sandbox> --from <stack> [--branch <b>] [--ttl <8h|3d>] [--create-branch] [--allow-nested]
        Fork a sandbox stack from a stack's config: stacks/Pulumi.<sandbox>.yaml and clusters/<sandbox>,
        copied from the source and pointed at the sandbox's branch. A sandbox of a Git-synced environment
        (development) needs --branch; one of staging or production may keep the source's branch.
  list  Sandboxes with their source, branch, age and TTL; expired ones are flagged.
  promote <sandbox> [--dry-run]
        Copy clusters/<sandbox> back over its source's folder, keeping the source's own platform ref,
        then remove the sandbox's files. Shows what changes first. Destroy the sandbox's cluster before.
  delete <sandbox> [--keep-files]
        pulumi destroy (Flux objects first, then Flux, then the cluster), pulumi stack rm, then remove the
        sandbox's files (kept with --keep-files, to promote them). Refuses anything that is not a sandbox.
`;

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

export async function main(argv: string[], ctx: SandboxContext): Promise<number> {
    const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
            from: { type: "string" },
            branch: { type: "string" },
            ttl: { type: "string" },
            "create-branch": { type: "boolean" },
            "allow-nested": { type: "boolean" },
            "dry-run": { type: "boolean" },
            "keep-files": { type: "boolean" },
            help: { type: "boolean", short: "h" },
        },
    });
    const [command, name, ...extra] = positionals;
    if (values.help || !command) {
        ctx.print(HELP);
        return command || values.help ? 0 : 2;
    }
    if (extra.length > 0) throw new SandboxError(`Unexpected argument '${extra[0]}'. See npm run sandbox -- --help`);
    const needName = () => {
        if (!name) throw new SandboxError(`'${command}' needs a sandbox name. See npm run sandbox -- --help`);
        return name;
    };
    switch (command) {
        case "fork":
            if (!values.from) throw new SandboxError("fork needs --from <stack>, e.g. --from development");
            await fork(ctx, {
                sandbox: needName(),
                from: values.from,
                branch: values.branch,
                ttl: values.ttl,
                createBranch: values["create-branch"],
                allowNested: values["allow-nested"],
            });
            return 0;
        case "list":
            list(ctx);
            return 0;
        case "promote":
            await promote(ctx, needName(), { dryRun: values["dry-run"] });
            return 0;
        case "delete":
            await remove(ctx, needName(), { keepFiles: values["keep-files"] });
            return 0;
        default:
            throw new SandboxError(`Unknown command '${command}'. Commands: fork, list, promote, delete.`);
    }
}

if (require.main === module) {
    main(process.argv.slice(2), context()).then(
        (code) => process.exit(code),
        (e: Error) => {
            // Expected failures are one clear line; anything else keeps its stack for a bug report.
            console.error(
                e instanceof SandboxError || e.name === "SandboxError" || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
                    ? `error: ${e.message}`
                    : e,
            );
            process.exit(1);
        },
    );
}
