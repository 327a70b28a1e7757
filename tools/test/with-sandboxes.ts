// `npm run test:sandboxes`: the whole `npm test` over a copy of this checkout into which a sandbox of
// every stack (kind and EKS, Git- and OCI-fed) has been forked and left, as a branch would commit them:
// proof that committed sandboxes never turn the pipeline red. The pipeline runs it; it takes as long as
// `npm test` itself, so `npm test` runs only the per-sandbox part (tools/sandbox/committed.test.ts).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../../lib/project";
import { commitSandboxes } from "../../test/support/sandboxes";

async function main(): Promise<number> {
    const listed = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO_ROOT, encoding: "utf8" });
    if (listed.status !== 0) {
        console.error(`git ls-files failed: ${listed.stderr.trim()}`);
        return 2;
    }
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-with-sandboxes-"));
    try {
        for (const file of listed.stdout.split("\0").filter(Boolean)) {
            if (!fs.existsSync(path.join(REPO_ROOT, file))) continue; // deleted in the work tree
            fs.mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
            fs.copyFileSync(path.join(REPO_ROOT, file), path.join(copy, file));
        }
        fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(copy, "node_modules"), "dir");
        const forked = await commitSandboxes(copy);
        console.log(`Forked ${forked.join(", ")} into ${copy}; running npm test there.`);
        const run = spawnSync("npm", ["test"], { cwd: copy, stdio: "inherit" });
        return run.status ?? 1;
    } finally {
        fs.rmSync(copy, { recursive: true, force: true });
    }
}

main().then(
    (code) => process.exit(code),
    (e: unknown) => {
        console.error(e instanceof Error ? e.message : String(e));
        process.exit(2);
    },
);
