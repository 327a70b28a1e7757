// `npm run e2e`: the development environment for real on kind, then torn down. Needs Docker, kind, the
// Pulumi CLI, kubectl, and the repository, branch and token to sync (see the README).
import { REPO_ROOT } from "../../lib/project";
import { spawnCommand } from "../../lib/run-command";
import { e2e, e2ePlan, formatPlan } from "./e2e";

// --plan: what the run would wait for, from the tree, with kubectl alone (kustomize builds): no Docker, kind or Pulumi.
if (process.argv.includes("--plan")) {
    const plan = e2ePlan(REPO_ROOT);
    for (const line of formatPlan(plan)) console.log(line);
    process.exit(plan.errors.length > 0 ? 1 : 0);
}

e2e({ root: REPO_ROOT, env: process.env, run: (c, a) => spawnCommand(c, a, undefined, 900_000), print: (l) => console.log(l) }).then(
    (code) => process.exit(code),
    (e: unknown) => {
        console.error(e instanceof Error ? e.message : String(e));
        process.exit(1);
    },
);
