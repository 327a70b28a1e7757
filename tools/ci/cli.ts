// `npm run -s ci -- <command>`: what the generated pipeline's jobs run.
//   preview <stack>      a merge request's preview of one stack, with its reports (tools/ci/preview.ts)
//   pulumi-token <org>   a Pulumi Cloud token for this job, from its PULUMI_ID_TOKEN (tools/ci/pulumi-token.ts)
import { REPO_ROOT } from "../../lib/project";
import { spawnCommand } from "../../lib/run-command";
import { isStackName } from "../../lib/validators";
import { previewStack } from "./preview";
import { pulumiAccessToken } from "./pulumi-token";

async function main(argv: string[]): Promise<number> {
    const [command, arg] = argv;
    if (command === "preview" && arg && isStackName(arg)) {
        return previewStack(arg, { root: REPO_ROOT, env: process.env, run: (c, a) => spawnCommand(c, a, undefined, 3_600_000), print: (l) => console.log(l) });
    }
    if (command === "pulumi-token" && arg) {
        const idToken = process.env["PULUMI_ID_TOKEN"];
        if (!idToken) throw new Error("PULUMI_ID_TOKEN is not set: give the job an id_token with aud urn:pulumi:org:<org>");
        process.stdout.write(await pulumiAccessToken({ org: arg, idToken, apiUrl: process.env["PULUMI_API"] }));
        return 0;
    }
    console.error("usage: npm run -s ci -- preview <stack> | pulumi-token <org>");
    return 2;
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
        console.error((e as Error).message);
        process.exit(1);
    },
);
