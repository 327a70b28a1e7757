// `npm run -s ci -- <command>`: what the generated pipeline's jobs run.
//   preview <stack>      a merge request's preview of one stack, with its reports (tools/ci/preview.ts)
//   pulumi-token <org>   a Pulumi Cloud token for this job, from its PULUMI_ID_TOKEN (tools/ci/pulumi-token.ts)
//   report-drift <stack> opens or updates the stack's drift issue (tools/ci/drift-issue.ts)
//   mr-note <file>       puts the file into the merge request's one flux-diff note (tools/ci/mr-note.ts)
import { REPO_ROOT } from "../../lib/project";
import { spawnCommand } from "../../lib/run-command";
import { isStackName } from "../../lib/validators";
import { reportDrift } from "./drift-issue";
import * as fs from "fs";
import { upsertNote } from "./mr-note";
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
    if (command === "report-drift" && arg && isStackName(arg)) {
        const env = process.env;
        const missing = ["DRIFT_ISSUE_TOKEN", "CI_API_V4_URL", "CI_PROJECT_ID", "CI_JOB_URL"].filter((k) => !env[k]);
        if (missing.length > 0) throw new Error(`report-drift needs ${missing.join(", ")}`);
        const url = await reportDrift({
            apiUrl: env["CI_API_V4_URL"] ?? "",
            projectId: env["CI_PROJECT_ID"] ?? "",
            token: env["DRIFT_ISSUE_TOKEN"] ?? "",
            stack: arg,
            jobUrl: env["CI_JOB_URL"] ?? "",
        });
        console.log(`Drift reported: ${url}`);
        return 0;
    }
    if (command === "mr-note" && arg) {
        const env = process.env;
        const missing = ["DIFF_NOTE_TOKEN", "CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID"].filter((k) => !env[k]);
        if (missing.length > 0) throw new Error(`mr-note needs ${missing.join(", ")}`);
        const id = await upsertNote(
            {
                apiUrl: env["CI_API_V4_URL"] ?? "",
                projectId: env["CI_PROJECT_ID"] ?? "",
                mergeRequestIid: env["CI_MERGE_REQUEST_IID"] ?? "",
                token: env["DIFF_NOTE_TOKEN"] ?? "",
            },
            fs.readFileSync(arg, "utf8"),
        );
        console.log(`Merge request note ${id} is up to date.`);
        return 0;
    }
    console.error("usage: npm run -s ci -- preview <stack> | pulumi-token <org> | report-drift <stack> | mr-note <file>");
    return 2;
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
        console.error((e as Error).message);
        process.exit(1);
    },
);
