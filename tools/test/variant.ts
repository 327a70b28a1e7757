// The whole `npm test` over a copy of this checkout changed the way a team's repository is changed,
// proof that such a change never turns the pipeline red. Each takes as long as `npm test` itself, so
// the pipeline runs them as jobs of their own:
//   npm run test:sandboxes  a sandbox of every stack (kind and EKS, Git- and OCI-fed) forked and left, as
//                           a branch would commit them (`npm test` runs the per-sandbox part itself,
//                           tools/sandbox/committed.test.ts);
//   npm run test:own-tree   the sample's clusters/ and platform/ replaced by a team's own tree
//                           (test/fixtures/own-tree), with no test edited.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ENVIRONMENTS, REPO_ROOT } from "../../lib/project";
import { commitSandboxes } from "../../test/support/sandboxes";

const VARIANTS: Record<string, (copy: string) => Promise<string>> = {
    async sandboxes(copy) {
        const forked = await commitSandboxes(copy);
        return `forked ${forked.join(", ")}`;
    },
    async "own-tree"(copy) {
        const own = path.join(REPO_ROOT, "test", "fixtures", "own-tree");
        fs.rmSync(path.join(copy, "platform"), { recursive: true, force: true });
        for (const env of ENVIRONMENTS) fs.rmSync(path.join(copy, "clusters", env), { recursive: true, force: true });
        fs.cpSync(path.join(own, "platform"), path.join(copy, "platform"), { recursive: true });
        fs.cpSync(path.join(own, "clusters"), path.join(copy, "clusters"), { recursive: true });
        return "put test/fixtures/own-tree in place of clusters/ and platform/";
    },
};

async function main(variant: string | undefined): Promise<number> {
    const change = variant ? VARIANTS[variant] : undefined;
    if (!change) {
        console.error(`usage: variant.ts ${Object.keys(VARIANTS).join("|")}`);
        return 2;
    }
    const listed = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO_ROOT, encoding: "utf8" });
    if (listed.status !== 0) {
        console.error(`git ls-files failed: ${listed.stderr.trim()}`);
        return 2;
    }
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), `gitops-with-${variant}-`));
    try {
        for (const file of listed.stdout.split("\0").filter(Boolean)) {
            if (!fs.existsSync(path.join(REPO_ROOT, file))) continue; // deleted in the work tree
            fs.mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
            fs.copyFileSync(path.join(REPO_ROOT, file), path.join(copy, file));
        }
        fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(copy, "node_modules"), "dir");
        console.log(`${await change(copy)} in ${copy}; running npm test there.`);
        const run = spawnSync("npm", ["test"], { cwd: copy, stdio: "inherit" });
        return run.status ?? 1;
    } finally {
        fs.rmSync(copy, { recursive: true, force: true });
    }
}

main(process.argv[2]).then(
    (code) => process.exit(code),
    (e: unknown) => {
        console.error(e instanceof Error ? e.message : String(e));
        process.exit(2);
    },
);
