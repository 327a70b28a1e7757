import { afterAll, beforeEach, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as path from "path";
import { parseDocument } from "yaml";
import { REPO_ROOT } from "../../lib/project";
import { FakeCli, fakeCheckout, installFakes, recordedCalls, runnerWith } from "../../test/support/fake-cli";
import { main } from "./cli";
import { LOCAL_BACKEND_DIR } from "./local";

// `npm run local` against stand-ins for the Pulumi CLI (which the Automation API drives), kind, Docker
// and kubectl on PATH: what it checks before it starts, which commands it runs, and the summary it prints.

const GATE_FAILURE =
    "    error: Flux is not Ready: OCIRepository flux-system/platform: Ready=False (OCIArtifactPullFailed): no tag matches '>=1.0.0-0 <2.0.0'. Check the URL and ref it pulls.\n";

let root: string;
let bin: string;
let state: string;
let printed: string[];
const roots: string[] = [];

function tools(names: FakeCli[]): void {
    installFakes(bin, names);
}

const calls = (prefix?: string) => recordedCalls(state, prefix);

beforeEach(() => {
    ({ root, bin, state } = fakeCheckout("local"));
    roots.push(root);
    printed = [];
});
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

const run = (argv: string[], extra: NodeJS.ProcessEnv = { GITLAB_TOKEN: "not-a-real-token" }) => {
    const env = { PATH: bin, FAKE_STATE: state, ...extra };
    return main(argv, { root, env, run: runnerWith(env), print: (l) => printed.push(l), now: () => 0 });
};

describe("npm run local", () => {
    it("lists every missing prerequisite at once, each with its fix, and starts nothing", async () => {
        tools(["docker", "kind"]);
        fs.writeFileSync(path.join(state, "docker-down"), "");
        fs.writeFileSync(path.join(state, "kind-version"), "kind v0.29.0 go1.24.2 linux/amd64\n");
        expect(await run(["up", "development"], {})).toBe(1);
        expect(printed).toHaveLength(1);
        expect(printed[0]?.split("\n")).toEqual([
            "npm run local -- up cannot start:",
            "  - the Pulumi CLI is not installed. Fix: https://www.pulumi.com/docs/iac/download-install/",
            "  - Docker is not running (`docker info`: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?). Fix: start Docker",
            expect.stringMatching(
                /^ {2}- kind v0\.29\.0 is on PATH, but the default node image .* is the one published for kind v0\.31.*Fix: install kind v0\.31\.x/,
            ),
            "  - development has no token. Fix: export GITLAB_TOKEN=<token> (read_repository, read_registry), or pulumi config set --secret token <token> -s development",
        ]);
        expect(fs.existsSync(path.join(root, LOCAL_BACKEND_DIR))).toBe(false);
    });

    it("refuses two stacks that would publish the same host port, naming both, before any cluster exists", async () => {
        tools(["pulumi", "docker", "kind"]);
        for (const stack of ["development", "staging"]) {
            const file = path.join(root, "stacks", `Pulumi.${stack}.yaml`);
            const doc = parseDocument(fs.readFileSync(file, "utf8"));
            doc.setIn(["config", "gitops-platform:cluster", "portMappings"], [{ containerPort: 30080, hostPort: 8080 }]);
            fs.writeFileSync(file, doc.toString());
        }
        expect(await run(["up"])).toBe(1);
        expect(printed.join("\n")).toContain(
            "  - development and staging both publish host port 8080/TCP (0.0.0.0 and 0.0.0.0). Fix: give one of them another hostPort in stacks/Pulumi.staging.yaml, or run them one at a time",
        );
        expect(calls("pulumi up")).toEqual([]);
        expect(calls("kind create")).toEqual([]);
    });

    it("names a stack file that is not YAML, with the fix, instead of a stack trace", async () => {
        tools(["pulumi", "docker", "kind"]);
        fs.writeFileSync(path.join(root, "stacks", "Pulumi.staging.yaml"), "config:\n  gitops-platform:cluster: {backend: kind\n");
        expect(await run(["up"])).toBe(1);
        expect(printed.join("\n")).toMatch(/ {2}- stacks\/Pulumi\.staging\.yaml is not valid YAML \(.+\)\. Fix: repair the file/);
        expect(calls("pulumi up")).toEqual([]);
    });

    it("refuses an EKS stack and a stack without a file", async () => {
        tools(["pulumi", "docker", "kind"]);
        expect(await run(["up", "aws-staging", "nope"])).toBe(1);
        expect(printed.join("\n")).toContain("  - aws-staging runs on eks, and this command runs kind stacks only. Fix: pulumi up -s aws-staging");
        expect(printed.join("\n")).toMatch(/ {2}- nope has no stack file\. Fix: pick one of .*development/);
    });

    it("brings every kind stack up side by side in a git-ignored local backend, creating the stacks it lacks, and sums up", async () => {
        tools(["pulumi", "docker", "kind"]);
        fs.writeFileSync(path.join(state, "stack-development"), "");
        fs.writeFileSync(path.join(state, "fail-staging"), GATE_FAILURE);
        fs.writeFileSync(path.join(state, "slow-up"), "");
        expect(await run(["up"])).toBe(1);

        const backend = `backend=file://${path.join(root, LOCAL_BACKEND_DIR)} passphrase=set`;
        expect(calls("pulumi stack init").sort()).toEqual([
            `pulumi stack init production --non-interactive | ${backend}`,
            `pulumi stack init staging --non-interactive | ${backend}`,
        ]);
        const ups = calls("pulumi up");
        expect(ups).toHaveLength(3);
        for (const stack of ["development", "staging", "production"]) {
            expect(ups).toContainEqual(expect.stringMatching(new RegExp(`^pulumi up --yes --skip-preview .*--stack ${stack}( |$).* \\| ${backend}$`)));
        }
        // Side by side: every update started before the first one ended.
        const timeline = fs.readFileSync(path.join(state, "timeline"), "utf8").trim().split("\n");
        expect(timeline.slice(0, 3).every((l) => l.startsWith("start "))).toBe(true);
        expect(printed).toContain("[staging] Updating (staging):");
        expect(printed).toContain("[production]     + 14 created");
        expect(printed.slice(-4)).toEqual([
            "stack        kubectl context   took  Flux",
            "development  kind-development    0s  Ready",
            "staging      -                   0s  Flux is not Ready: OCIRepository flux-system/platform: Ready=False (OCIArtifactPullFailed): no tag matches '>=1.0.0-0 <2.0.0'. Check the URL and ref it pulls.",
            "production   kind-production     0s  Ready",
        ]);
        expect(fs.readFileSync(path.join(REPO_ROOT, ".gitignore"), "utf8").split("\n")).toContain(`${LOCAL_BACKEND_DIR}/`);
    });

    it("uses the backend the CLI is logged in to, and shows each stack's Flux without changing anything", async () => {
        tools(["pulumi", "kubectl"]);
        fs.writeFileSync(path.join(state, "logged-in"), "");
        for (const s of ["development", "staging"]) {
            fs.writeFileSync(path.join(state, `stack-${s}`), "");
            fs.writeFileSync(path.join(state, `up-${s}`), "");
        }
        expect(await run(["status"], {})).toBe(1);
        expect(calls().filter((c) => /^pulumi (up|destroy|stack init)/.test(c))).toEqual([]);
        expect(calls("pulumi stack select").every((c) => c.endsWith("| backend= passphrase="))).toBe(true);
        expect(printed.slice(-4)).toEqual([
            "stack        kubectl context   took  Flux",
            "development  kind-development     -  Ready",
            "staging      kind-staging         -  Ready=False (ReconciliationFailed): health check failed",
            "production   -                    -  no such stack: nothing to do",
        ]);
    });

    it("tears down only the stacks that exist", async () => {
        tools(["pulumi", "docker", "kind"]);
        fs.writeFileSync(path.join(state, "stack-development"), "");
        fs.writeFileSync(path.join(state, "up-development"), "");
        expect(await run(["down"], {})).toBe(0);
        expect(calls("pulumi destroy").map((c) => c.replace(/ \|.*/, ""))).toEqual([
            expect.stringMatching(/^pulumi destroy --yes --skip-preview .*--stack development/),
        ]);
        expect(printed).toContain("[development] Destroying (development):");
        expect(printed.slice(-4)).toEqual([
            "stack        kubectl context   took  Flux",
            "development  kind-development    0s  destroyed",
            "staging      -                    -  no such stack: nothing to do",
            "production   -                    -  no such stack: nothing to do",
        ]);
    });
});
