import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, parseAllDocuments, parseDocument } from "yaml";
import { main } from "./cli";
import { expire, fork, list, listSandboxes, promote, remove, SandboxContext } from "./sandbox";
import { hostPortClashes } from "../../lib/host-ports";
import { REPO_ROOT } from "../../lib/project";
import { copyOfRepo } from "../../test/support/temp-repo";

const NOW = new Date("2026-11-24T18:00:00.000Z");

interface Call {
    command: string;
    args: string[];
}

/** A throwaway copy of the parts of the repository the commands touch. */

/**
 * A context whose commands are answered by `answer`; by default no pulumi CLI exists (ENOENT) and
 * every other command succeeds.
 */
function context(root: string, answer?: (c: Call) => { code: number; stdout?: string; stderr?: string } | "missing") {
    const calls: Call[] = [];
    const printed: string[] = [];
    const ctx: SandboxContext = {
        root,
        now: NOW,
        async run(command, args) {
            calls.push({ command, args });
            // Who forks: git's user.email, unless a test answers otherwise.
            if (command === "git" && args.join(" ") === "config user.email" && !answer) return { code: 0, stdout: "alice@example.com\n", stderr: "" };
            const a = answer ? answer({ command, args }) : command === "pulumi" ? "missing" : { code: 0 };
            if (a === "missing") throw Object.assign(new Error(`spawn ${command} ENOENT`), { code: "ENOENT" });
            return { code: a.code, stdout: a.stdout ?? "", stderr: a.stderr ?? "" };
        },
        print: (line) => printed.push(line),
    };
    return { ctx, calls, printed };
}

/** A context whose Pulumi backend answers and holds no stack: the sandbox's cluster was destroyed. */
const stackGone = (root: string) =>
    context(root, (c) => (c.command === "pulumi" && c.args.join(" ") === "stack ls --json" ? { code: 0, stdout: "[]" } : { code: 0 }));

/** A digest of every file under the root, to prove a refused command changed nothing. */
function treeDigest(root: string): string {
    const hash = createHash("sha256");
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            const full = path.join(dir, e.name);
            hash.update(path.relative(root, full));
            if (e.isDirectory()) walk(full);
            else hash.update(fs.readFileSync(full));
        }
    };
    walk(root);
    return hash.digest("hex");
}

const stackConfig = (root: string, stack: string) =>
    (parse(fs.readFileSync(path.join(root, "stacks", `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> }).config;

const manifests = (root: string, dir: string) =>
    parseAllDocuments(fs.readFileSync(path.join(root, dir, "platform.yaml"), "utf8")).map((d) => d.toJS() as Record<string, unknown>);

const platformRef = (root: string, dir: string) =>
    (manifests(root, dir).find((m) => (m.metadata as { name: string }).name === "platform")!.spec as { ref: unknown }).ref;

const clusterEnv = (root: string, dir: string) =>
    (
        manifests(root, dir).find((m) => (m.metadata as { name: string }).name === "platform-configs")!.spec as {
            postBuild: { substitute: { cluster_env: string } };
        }
    ).postBuild.substitute.cluster_env;

describe("fork", () => {
    let root: string;
    beforeEach(() => {
        root = copyOfRepo("sandbox");
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("moves every source of this repository to the sandbox's branch, and names the sources of other repositories it leaves alone", async () => {
        const sources = [
            // The same repository, spelled the other way Git accepts: it must follow the sandbox too.
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 5m\n  url: https://GitLab.com/gitops-platform/gitops-platform/\n  ref:\n    branch: main\n",
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: charts\n  namespace: flux-system\nspec:\n  interval: 5m\n  url: https://github.com/example/charts\n  ref:\n    tag: v1.2.0\n",
        ];
        fs.writeFileSync(path.join(root, "clusters", "development", "sources.yaml"), sources.join("---\n"));
        const { ctx, printed } = context(root);
        await fork(ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" });
        const forked = parseAllDocuments(fs.readFileSync(path.join(root, "clusters", "sandbox-a", "sources.yaml"), "utf8")).map(
            (d) => (d.toJS() as { spec: { ref: unknown } }).spec.ref,
        );
        expect(forked).toEqual([{ branch: "feature/a" }, { tag: "v1.2.0" }]);
        expect(platformRef(root, "clusters/sandbox-a")).toEqual({ branch: "feature/a" });
        expect(printed).toContain("Left alone (another repository, not this branch): GitRepository flux-system/charts (https://github.com/example/charts)");

        // And promote gives each its source's ref back.
        await promote(stackGone(root).ctx, "sandbox-a", { yes: true });
        const promoted = parseAllDocuments(fs.readFileSync(path.join(root, "clusters", "development", "sources.yaml"), "utf8")).map(
            (d) => (d.toJS() as { spec: { ref: unknown } }).spec.ref,
        );
        expect(promoted).toEqual([{ branch: "main" }, { tag: "v1.2.0" }]);
    });

    it("a sandbox of development gets its own stack file and cluster folder, tracking its own branch", async () => {
        const { ctx, printed } = context(root);
        await fork(ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/sandbox-a", ttl: "3d" });

        expect(stackConfig(root, "sandbox-a")).toEqual({
            "gitops-platform:environment": "sandbox-a",
            "gitops-platform:cluster": { backend: "kind", workers: 1, name: "sandbox-a" },
            "gitops-platform:flux": { version: "2.x" },
            "gitops-platform:sync": {
                url: "https://gitlab.com/gitops-platform/gitops-platform.git",
                branch: "feature/sandbox-a",
                path: "clusters/sandbox-a",
            },
            "gitops-platform:platformRepository": { type: "git", url: "https://gitlab.com/gitops-platform/gitops-platform.git" },
            "gitops-platform:protect": false,
            "gitops-platform:sandbox": { source: "development", createdAt: "2026-11-24T18:00:00.000Z", ttl: "3d", owner: "alice@example.com" },
        });
        expect(platformRef(root, "clusters/sandbox-a")).toEqual({ branch: "feature/sandbox-a" });
        expect(clusterEnv(root, "clusters/sandbox-a")).toBe("sandbox-a");
        // Everything else in the folder is the source's, object for object.
        const strip = (ms: Record<string, unknown>[]) =>
            JSON.stringify(ms)
                .replace(/feature\/sandbox-a|sandbox-a/g, "X")
                .replace(/"branch":"main"|development/g, (m) => (m.includes("branch") ? '"branch":"X"' : "X"));
        expect(strip(manifests(root, "clusters/sandbox-a"))).toBe(strip(manifests(root, "clusters/development")));
        // ...plus the fork point promote merges from.
        expect(fs.readdirSync(path.join(root, "clusters/sandbox-a")).sort()).toEqual([
            ".fork-point.json",
            ...fs.readdirSync(path.join(root, "clusters/development")).sort(),
        ]);
        expect(printed).toContain("  pulumi stack init sandbox-a");
        expect(fs.readdirSync(root).filter((f) => f.startsWith(".sandbox-staging"))).toEqual([]);
    });

    it("a performance clone of staging keeps the source's branch and its semver range", async () => {
        const { ctx } = context(root);
        await fork(ctx, { sandbox: "perf-1", from: "staging" });
        expect(stackConfig(root, "perf-1")["gitops-platform:sync"]).toMatchObject({ branch: "main", path: "clusters/perf-1" });
        expect(platformRef(root, "clusters/perf-1")).toEqual({ semver: "0.0.x" });
    });

    it("a clone of production is unprotected and keeps the pinned artifact", async () => {
        const { ctx } = context(root);
        const pinned = platformRef(root, "clusters/production");
        await fork(ctx, { sandbox: "prod-copy", from: "production" });
        expect(stackConfig(root, "prod-copy")["gitops-platform:protect"]).toBe(false);
        expect(platformRef(root, "clusters/prod-copy")).toEqual(pinned);
        expect(pinned).not.toHaveProperty("branch");
    });

    it("a clone of EKS production drops the production-only NAT layout", async () => {
        const { ctx } = context(root);
        await fork(ctx, { sandbox: "aws-prod-copy", from: "aws-production" });
        expect(stackConfig(root, "aws-prod-copy")["gitops-platform:cluster"]).toMatchObject({ natGateways: "single", name: "aws-prod-copy" });
        expect(stackConfig(root, "aws-prod-copy")["gitops-platform:protect"]).toBe(false);
    });

    it("never copies encrypted values: they only decrypt in the stack that wrote them", async () => {
        const file = path.join(root, "stacks", "Pulumi.development.yaml");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8") + "  gitops-platform:token:\n    secure: v1:AAAA\nencryptionsalt: v1:BBBB\n");
        const { ctx, printed } = context(root);
        await fork(ctx, { sandbox: "sandbox-s", from: "development", branch: "s" });
        const text = fs.readFileSync(path.join(root, "stacks", "Pulumi.sandbox-s.yaml"), "utf8");
        expect(text).not.toContain("secure");
        expect(text).not.toContain("encryptionsalt");
        expect(printed).toContain("  pulumi config set --secret token <value> --stack sandbox-s");
    });

    describe("alerts stay with the source", () => {
        const withAlerts = () => {
            const file = path.join(root, "stacks", "Pulumi.staging.yaml");
            fs.writeFileSync(
                file,
                fs.readFileSync(file, "utf8") +
                    "  gitops-platform:alerts:\n    type: slack\n    channel: '#platform-alerts'\n  gitops-platform:alertWebhookUrl:\n    secure: v1:CCCC\n",
            );
        };

        it("a fork sends none of the source's alerts", async () => {
            withAlerts();
            await fork(context(root).ctx, { sandbox: "perf-a", from: "staging" });
            expect(stackConfig(root, "perf-a")["gitops-platform:alerts"]).toBeUndefined();
            expect(stackConfig(root, "perf-a")["gitops-platform:alertWebhookUrl"]).toBeUndefined();
        });

        it("through the CLI too, which copied them with the rest of the config", async () => {
            withAlerts();
            await fork(context(root, cliCopying).ctx, { sandbox: "perf-b", from: "staging" });
            expect(stackConfig(root, "perf-b")["gitops-platform:alerts"]).toBeUndefined();
            expect(stackConfig(root, "perf-b")["gitops-platform:alertWebhookUrl"]).toBeUndefined();
        });

        it("unless asked to keep them", async () => {
            withAlerts();
            await fork(context(root).ctx, { sandbox: "perf-c", from: "staging", keepAlerts: true });
            expect(stackConfig(root, "perf-c")["gitops-platform:alerts"]).toEqual({ type: "slack", channel: "#platform-alerts" });
        });
    });

    /** A pulumi CLI whose `stack init --copy-config-from` writes the new stack file, as the real one does. */
    const cliCopying = (c: Call): { code: number; stdout?: string; stderr?: string } => {
        if (c.command === "git" && c.args[0] === "config") return { code: 0, stdout: "alice@example.com\n" };
        if (c.command === "pulumi" && c.args[0] === "stack" && c.args[1] === "init") {
            const from = c.args[c.args.indexOf("--copy-config-from") + 1] ?? "";
            fs.copyFileSync(path.join(root, "stacks", `Pulumi.${from}.yaml`), path.join(root, "stacks", `Pulumi.${c.args[2]}.yaml`));
        }
        return { code: 0 };
    };

    it("with the pulumi CLI, creates the stack by copying the source's config (secrets re-encrypted), then writes the sandbox's settings into it", async () => {
        const { ctx, calls } = context(root, cliCopying);
        await fork(ctx, { sandbox: "sandbox-c", from: "development", branch: "feature/c" });
        expect(calls.filter((c) => c.command === "pulumi").map((c) => c.args.join(" "))).toEqual([
            "version",
            "stack init sandbox-c --copy-config-from development",
            // In the backend too, so expire finds it from a checkout of another branch.
            "stack tag set gitops-platform:sandbox-source development --stack sandbox-c",
            "stack tag set gitops-platform:sandbox-owner alice@example.com --stack sandbox-c",
            "stack tag set gitops-platform:sandbox-created-at 2026-11-24T18:00:00.000Z --stack sandbox-c",
            "stack tag set gitops-platform:sandbox-ttl 7d --stack sandbox-c",
            "stack tag set gitops-platform:sandbox-backend kind --stack sandbox-c",
        ]);
        expect(stackConfig(root, "sandbox-c")).toMatchObject({
            "gitops-platform:environment": "sandbox-c",
            "gitops-platform:cluster": { name: "sandbox-c" },
            "gitops-platform:sync": { path: "clusters/sandbox-c", branch: "feature/c" },
            // No --ttl: every sandbox gets the default lifetime all the same.
            "gitops-platform:sandbox": { source: "development", createdAt: "2026-11-24T18:00:00.000Z", ttl: "7d", owner: "alice@example.com" },
        });
        expect(fs.existsSync(path.join(root, "clusters", "sandbox-c"))).toBe(true);
    });

    it("turns a protected production source into an unprotected sandbox through the CLI too", async () => {
        await fork(context(root, cliCopying).ctx, { sandbox: "x", from: "aws-production" });
        expect(stackConfig(root, "x")).toMatchObject({ "gitops-platform:protect": false, "gitops-platform:cluster": { natGateways: "single" } });
    });

    it("gives a fork of an EKS stack its own tags: the sandbox, its owner and expiry, not the source's cost centre", async () => {
        await fork(context(root).ctx, { sandbox: "perf-eks", from: "aws-production", ttl: "2d" });
        const cluster = stackConfig(root, "perf-eks")["gitops-platform:cluster"] as { tags: Record<string, string> };
        expect(cluster.tags).toEqual({ team: "platform", sandbox: "perf-eks", owner: "alice@example.com", expires: "2026-11-26T18:00:00.000Z" });
    });

    it("describes the sandbox at the top of its stack file, not the source", async () => {
        await fork(context(root).ctx, { sandbox: "perf-eks", from: "aws-production" });
        const text = fs.readFileSync(path.join(root, "stacks", "Pulumi.perf-eks.yaml"), "utf8");
        expect(text.split("\n").filter((l) => l.startsWith("#"))).toEqual([
            "# Sandbox perf-eks of alice@example.com, forked from aws-production at 2026-11-24T18:00:00.000Z by `npm run sandbox -- fork`; expires 2026-12-01T18:00:00.000Z.",
        ]);
    });

    it("publishes a kind fork's host ports on ports no other stack uses, so both clusters run on one laptop", async () => {
        const file = path.join(root, "stacks", "Pulumi.development.yaml");
        const doc = parseDocument(fs.readFileSync(file, "utf8"));
        doc.setIn(
            ["config", "gitops-platform:cluster", "portMappings"],
            [
                { containerPort: 30080, hostPort: 8080 },
                { containerPort: 30443, hostPort: 8443 },
            ],
        );
        fs.writeFileSync(file, doc.toString());
        fs.writeFileSync(
            path.join(root, "stacks", "Pulumi.staging.yaml"),
            fs
                .readFileSync(path.join(root, "stacks", "Pulumi.staging.yaml"), "utf8")
                .replace("backend: kind", "backend: kind\n    portMappings: [{ containerPort: 80, hostPort: 8081 }]"),
        );
        await fork(context(root).ctx, { sandbox: "sandbox-p", from: "development", branch: "feature/p" });
        const cluster = stackConfig(root, "sandbox-p")["gitops-platform:cluster"] as { portMappings: { hostPort: number }[] };
        expect(cluster.portMappings.map((m) => m.hostPort)).toEqual([8082, 8444]);
        expect(hostPortClashes(root, ["development", "staging", "sandbox-p"])).toEqual([]);
    });

    it("creates the branch first when asked", async () => {
        const { ctx, calls } = context(root);
        await fork(ctx, { sandbox: "sandbox-b", from: "development", branch: "feature/b", createBranch: true });
        expect(calls.filter((c) => c.command === "git" && c.args[0] !== "config").map((c) => c.args)).toEqual([
            ["rev-parse", "--abbrev-ref", "HEAD"],
            ["switch", "-c", "feature/b"],
        ]);
    });
});

describe("fork refuses, and leaves the repository as it was", () => {
    let root: string;
    let before: string;
    beforeEach(() => {
        root = copyOfRepo("sandbox");
        fs.writeFileSync(
            path.join(root, "stacks", "Pulumi.old-sandbox.yaml"),
            fs
                .readFileSync(path.join(root, "stacks", "Pulumi.development.yaml"), "utf8")
                .replace(
                    "gitops-platform:environment: development",
                    "gitops-platform:environment: old-sandbox\n  gitops-platform:sandbox:\n    source: development\n    createdAt: 2026-11-01T00:00:00Z",
                ),
        );
        fs.cpSync(path.join(root, "clusters", "development"), path.join(root, "clusters", "old-sandbox"), { recursive: true });
        before = treeDigest(root);
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    const cases: [string, Parameters<typeof fork>[1], string][] = [
        [
            "a name with capitals",
            { sandbox: "Sandbox_A", from: "development", branch: "b" },
            "'Sandbox_A' is not a valid sandbox name: use lowercase letters, digits and '-' (at most 50), e.g. 'sandbox-a'.",
        ],
        [
            "a name that is too long",
            { sandbox: "s".repeat(51), from: "development", branch: "b" },
            `'${"s".repeat(51)}' is not a valid sandbox name: use lowercase letters, digits and '-' (at most 50), e.g. 'sandbox-a'.`,
        ],
        [
            "a long-lived environment's name",
            { sandbox: "staging", from: "development", branch: "b" },
            "'staging' is a long-lived environment, not a sandbox name. Pick another name, e.g. 'sandbox-a'.",
        ],
        [
            "an existing stack's name",
            { sandbox: "aws-staging", from: "development", branch: "b" },
            "A stack named 'aws-staging' already exists (stacks/Pulumi.aws-staging.yaml). Pick another name or delete it first.",
        ],
        [
            "an existing sandbox's name",
            { sandbox: "old-sandbox", from: "development", branch: "b" },
            "A stack named 'old-sandbox' already exists (stacks/Pulumi.old-sandbox.yaml). Pick another name or delete it first.",
        ],
        [
            "an unknown source",
            { sandbox: "s1", from: "nowhere", branch: "b" },
            "There is no stack 'nowhere' (no stacks/Pulumi.nowhere.yaml). Stacks: aws-development, aws-production, aws-staging, development, old-sandbox, production, staging.",
        ],
        [
            "a sandbox as the source",
            { sandbox: "s1", from: "old-sandbox", branch: "b" },
            "'old-sandbox' is itself a sandbox. Fork its source instead, or pass --allow-nested to fork a fork.",
        ],
        [
            "a platform change without a branch",
            { sandbox: "s1", from: "development" },
            "'development' follows the main branch, so a sandbox of it is a platform change and needs its own branch. Pass --branch <name> (e.g. --branch s1).",
        ],
        [
            "a platform change on the source's own branch",
            { sandbox: "s1", from: "development", branch: "main" },
            "'development' follows the main branch, so a sandbox of it is a platform change and needs its own branch. Pass --branch <name> (e.g. --branch s1).",
        ],
        [
            "a branch Git would refuse",
            { sandbox: "s1", from: "development", branch: "my branch" },
            "--branch 'my branch' contains white space. Fix: use a branch name like 'main' or 'feature/sandbox-a'",
        ],
        [
            "a TTL that is not a duration",
            { sandbox: "s1", from: "development", branch: "b", ttl: "tomorrow" },
            "--ttl 'tomorrow' is not a duration. Use minutes, hours or days, e.g. 8h or 3d.",
        ],
    ];

    it.each(cases)("refuses %s", async (_what, options, message) => {
        const { ctx } = context(root);
        await expect(fork(ctx, options)).rejects.toThrow(message);
        expect(treeDigest(root)).toBe(before);
    });

    it("refuses a name whose cluster folder exists without a stack", async () => {
        fs.mkdirSync(path.join(root, "clusters", "orphan"));
        const digest = treeDigest(root);
        const { ctx } = context(root);
        await expect(fork(ctx, { sandbox: "orphan", from: "development", branch: "b" })).rejects.toThrow(
            "clusters/orphan already exists. Pick another name or remove that folder first.",
        );
        expect(treeDigest(root)).toBe(digest);
    });

    it("undoes everything when the pulumi CLI fails half-way, removing the stack it created", async () => {
        // The CLI creates the stack but writes no stack file: the fork cannot go on.
        const { ctx, calls } = context(root, (c) => (c.command === "git" ? { code: 0, stdout: "a@example.com" } : { code: 0 }));
        await expect(fork(ctx, { sandbox: "s1", from: "development", branch: "b" })).rejects.toThrow(/Pulumi\.s1\.yaml/);
        expect(treeDigest(root)).toBe(before);
        expect(calls.map((c) => c.args.join(" "))).toContain("stack rm --yes --force --stack s1");
    });

    it("leaves the user on the branch they started from, without the new one, when a fork fails after creating it", async () => {
        const { ctx, calls } = context(root, (c) => {
            if (c.command === "git" && c.args[0] === "rev-parse") return { code: 0, stdout: "main\n" };
            if (c.command === "git") return { code: 0 };
            return c.args[1] === "init" ? { code: 1, stderr: "error: backend unavailable" } : { code: 0 };
        });
        await expect(fork(ctx, { sandbox: "s1", from: "development", branch: "b", createBranch: true })).rejects.toThrow(
            "`pulumi stack init s1 --copy-config-from development` failed (exit 1):\nerror: backend unavailable",
        );
        expect(calls.filter((c) => c.command === "git" && c.args[0] !== "config").map((c) => c.args.join(" "))).toEqual([
            "rev-parse --abbrev-ref HEAD",
            "switch -c b",
            "switch main",
            "branch -D b",
        ]);
        expect(treeDigest(root)).toBe(before);
    });

    it("writes nothing when the branch cannot be created", async () => {
        const { ctx } = context(root, (c) =>
            c.command !== "git"
                ? "missing"
                : c.args[0] === "switch"
                  ? { code: 128, stderr: "fatal: a branch named 'b' already exists" }
                  : { code: 0, stdout: "main" },
        );
        await expect(fork(ctx, { sandbox: "s1", from: "development", branch: "b", createBranch: true })).rejects.toThrow(
            "`git switch -c b` failed (exit 128):\nfatal: a branch named 'b' already exists",
        );
        expect(treeDigest(root)).toBe(before);
    });
});

describe("promote", () => {
    let root: string;
    beforeEach(async () => {
        root = copyOfRepo("sandbox");
        await fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" });
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("copies the sandbox's folder over its source's, restoring the source's branch and name, and removes the sandbox", async () => {
        const sandboxFile = path.join(root, "clusters", "sandbox-a", "platform.yaml");
        fs.writeFileSync(sandboxFile, fs.readFileSync(sandboxFile, "utf8").replace("retryInterval: 1m", "retryInterval: 2m"));
        fs.writeFileSync(path.join(root, "clusters", "sandbox-a", "apps.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n");
        const { ctx, printed } = stackGone(root);
        await promote(ctx, "sandbox-a", { yes: true });

        expect(printed.slice(0, 3)).toEqual([
            "Promoting sandbox-a into clusters/development and stacks/Pulumi.development.yaml (development):",
            "  added    clusters/development/apps.yaml",
            "  changed  clusters/development/platform.yaml",
        ]);
        expect(platformRef(root, "clusters/development")).toEqual({ branch: "main" });
        expect(clusterEnv(root, "clusters/development")).toBe("development");
        expect(fs.readFileSync(path.join(root, "clusters/development/platform.yaml"), "utf8")).toContain("retryInterval: 2m");
        expect(fs.existsSync(path.join(root, "clusters/development/apps.yaml"))).toBe(true);
        expect(fs.existsSync(path.join(root, "clusters/sandbox-a"))).toBe(false);
        expect(fs.existsSync(path.join(root, "stacks/Pulumi.sandbox-a.yaml"))).toBe(false);
    });

    it("previews the promotion as the objects Flux will apply in the source, not only the files", async () => {
        const sandboxFile = path.join(root, "clusters", "sandbox-a", "platform.yaml");
        fs.writeFileSync(sandboxFile, fs.readFileSync(sandboxFile, "utf8").replace("retryInterval: 1m", "retryInterval: 2m"));
        fs.writeFileSync(path.join(root, "clusters", "sandbox-a", "apps.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n");
        const { ctx, printed } = context(root);
        await promote(ctx, "sandbox-a");
        const built = printed.slice(printed.indexOf("What development will apply, as Flux builds it: +0 ~1 -0"));
        // The file changed is platform.yaml; what changes is the layer in it, the rest of the object as context.
        expect(built.slice(0, 4)).toEqual([
            "What development will apply, as Flux builds it: +0 ~1 -0",
            "  !        Kustomization flux-system/platform-services: a layer that provides CRDs or controllers changes",
            "  !        clusters/development/apps.yaml is applied by nothing: list it in the resources of its folder's kustomization.yaml",
            "  changed  Kustomization flux-system/platform-services",
        ]);
        expect(built).toContain("           -  retryInterval: 1m");
        expect(built).toContain("           +  retryInterval: 2m");
        expect(built.at(-1)).toBe("Preview only: nothing was written. Run again with --yes to write it.");
    });

    it("shows a new object once the sandbox's kustomization applies its file", async () => {
        fs.writeFileSync(path.join(root, "clusters", "sandbox-a", "apps.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n");
        const kustomization = path.join(root, "clusters", "sandbox-a", "kustomization.yaml");
        fs.writeFileSync(kustomization, fs.readFileSync(kustomization, "utf8").replace("  - platform.yaml", "  - platform.yaml\n  - apps.yaml"));
        const { ctx, printed } = context(root);
        await promote(ctx, "sandbox-a");
        expect(printed.slice(printed.indexOf("What development will apply, as Flux builds it: +1 ~0 -0"))).toEqual([
            "What development will apply, as Flux builds it: +1 ~0 -0",
            "  added    Namespace shop",
            "           +apiVersion: v1",
            "           +kind: Namespace",
            "           +metadata:",
            "           +  name: shop",
            "Preview only: nothing was written. Run again with --yes to write it.",
        ]);
    });

    it("an unchanged sandbox promotes to exactly the source it came from", async () => {
        const before = fs.readFileSync(path.join(root, "clusters/development/platform.yaml"), "utf8");
        const { ctx, printed } = stackGone(root);
        await promote(ctx, "sandbox-a", { yes: true });
        expect(printed[1]).toBe("  no changes");
        expect(fs.readFileSync(path.join(root, "clusters/development/platform.yaml"), "utf8")).toBe(before);
    });

    it("only shows the change unless told --yes, writing nothing", async () => {
        const digest = treeDigest(root);
        const { ctx, printed } = context(root);
        await promote(ctx, "sandbox-a");
        expect(printed).toContain("Preview only: nothing was written. Run again with --yes to write it.");
        expect(treeDigest(root)).toBe(digest);
    });

    const editStack = (stack: string, edit: (doc: ReturnType<typeof parseDocument>) => void) => {
        const file = path.join(root, "stacks", `Pulumi.${stack}.yaml`);
        const doc = parseDocument(fs.readFileSync(file, "utf8"));
        edit(doc);
        fs.writeFileSync(file, doc.toString());
    };
    const editFile = (rel: string, from: string, to: string) => {
        const file = path.join(root, rel);
        const text = fs.readFileSync(file, "utf8");
        expect(text).toContain(from);
        fs.writeFileSync(file, text.replace(from, to));
    };

    it("carries the infrastructure change the sandbox tested into the source's stack file, and nothing that is the sandbox's own", async () => {
        editStack("sandbox-a", (doc) => {
            doc.setIn(["config", "gitops-platform:cluster", "nodeImage"], "kindest/node:v1.34.0");
            doc.setIn(["config", "gitops-platform:flux", "version"], "2.7.x");
        });
        const preview = context(root);
        await promote(preview.ctx, "sandbox-a");
        expect(preview.printed).toEqual([
            "Promoting sandbox-a into clusters/development and stacks/Pulumi.development.yaml (development):",
            '  config   cluster.nodeImage: (unset) -> "kindest/node:v1.34.0"',
            '  config   flux.version: "2.x" -> "2.7.x"',
            "  note     aws-development syncs clusters/development too: it gets the folder's changes on merge; its stack file keeps its own config (flux.version): add --also aws-development to carry it",
            "Preview only: nothing was written. Run again with --yes to write it.",
        ]);
        await promote(stackGone(root).ctx, "sandbox-a", { yes: true });
        // What the preview showed is what was written: those two keys, and the source's own name, folder and branch.
        expect(stackConfig(root, "development")).toMatchObject({
            "gitops-platform:environment": "development",
            "gitops-platform:cluster": { backend: "kind", workers: 1, nodeImage: "kindest/node:v1.34.0" },
            "gitops-platform:flux": { version: "2.7.x" },
            "gitops-platform:sync": { branch: "main" },
            "gitops-platform:protect": false,
        });
        expect(stackConfig(root, "development")).not.toHaveProperty("gitops-platform:sandbox");
        expect(stackConfig(root, "development")["gitops-platform:cluster"]).not.toHaveProperty("name");
    });

    it("carries the shared config to the EKS twin named with --also, never the kind cluster's settings", async () => {
        editStack("sandbox-a", (doc) => {
            doc.setIn(["config", "gitops-platform:cluster", "nodeImage"], "kindest/node:v1.34.0");
            doc.setIn(["config", "gitops-platform:flux", "version"], "2.7.x");
        });
        const twinBefore = stackConfig(root, "aws-development")["gitops-platform:cluster"];
        const { ctx, printed } = stackGone(root);
        await promote(ctx, "sandbox-a", { yes: true, also: ["aws-development"] });
        expect(printed).toContain('  config   stacks/Pulumi.aws-development.yaml: flux.version: "2.x" -> "2.7.x"');
        expect(printed.filter((l) => l.includes("note     aws-development"))).toEqual([]);
        expect(stackConfig(root, "aws-development")["gitops-platform:flux"]).toEqual({ version: "2.7.x" });
        expect(stackConfig(root, "aws-development")["gitops-platform:cluster"]).toEqual(twinBefore);
        expect(stackConfig(root, "development")["gitops-platform:flux"]).toEqual({ version: "2.7.x" });
    });

    it("refuses --also for a stack that does not sync the source's folder, writing nothing", async () => {
        const digest = treeDigest(root);
        await expect(promote(stackGone(root).ctx, "sandbox-a", { yes: true, also: ["aws-staging"] })).rejects.toThrow(
            "--also aws-staging: aws-staging does not sync clusters/development. Stacks that do: aws-development; nothing was changed.",
        );
        expect(treeDigest(root)).toBe(digest);
    });

    it("keeps what changed in the source since the fork, and applies what changed in the sandbox", async () => {
        editFile("clusters/development/platform.yaml", "timeout: 10m", "timeout: 15m");
        editStack("development", (doc) => doc.setIn(["config", "gitops-platform:cluster", "workers"], 2));
        fs.writeFileSync(path.join(root, "clusters", "sandbox-a", "apps.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n");
        editStack("sandbox-a", (doc) => doc.setIn(["config", "gitops-platform:flux", "syncInterval"], "5m"));
        await promote(stackGone(root).ctx, "sandbox-a", { yes: true });
        expect(fs.readFileSync(path.join(root, "clusters/development/platform.yaml"), "utf8")).toContain("timeout: 15m");
        expect(fs.existsSync(path.join(root, "clusters/development/apps.yaml"))).toBe(true);
        expect(stackConfig(root, "development")).toMatchObject({ "gitops-platform:cluster": { workers: 2 }, "gitops-platform:flux": { syncInterval: "5m" } });
    });

    it("stops when both changed the same file or key differently, listing each, and writes nothing", async () => {
        editFile("clusters/development/platform.yaml", "timeout: 10m", "timeout: 15m");
        editFile("clusters/sandbox-a/platform.yaml", "timeout: 10m", "timeout: 20m");
        editStack("development", (doc) => doc.setIn(["config", "gitops-platform:cluster", "workers"], 2));
        editStack("sandbox-a", (doc) => doc.setIn(["config", "gitops-platform:cluster", "workers"], 3));
        const digest = treeDigest(root);
        await expect(promote(stackGone(root).ctx, "sandbox-a", { yes: true })).rejects.toThrow(
            "Both sandbox-a and development changed these since the fork, differently: clusters/development/platform.yaml, " +
                "stacks/Pulumi.development.yaml: cluster.workers. Bring the sandbox up to date with its source by hand (or the other way round), then promote again; nothing was changed.",
        );
        expect(treeDigest(root)).toBe(digest);
    });

    it("reports a performance clone that moved its artifact ref, and keeps the source's", async () => {
        await fork(context(root).ctx, { sandbox: "perf-x", from: "staging" });
        const before = platformRef(root, "clusters/staging");
        editFile("clusters/perf-x/platform.yaml", JSON.stringify(before).includes("semver") ? "semver:" : "tag:", "tag: 9.9.9\n    # was:");
        const { ctx, printed } = context(root);
        await promote(ctx, "perf-x");
        expect(printed.find((l) => l.startsWith("  note     the sandbox pulls"))).toMatch(
            /^ {2}note {5}the sandbox pulls the platform at \{"tag":"9\.9\.9"\}, staging at .*; staging keeps its own\. Change clusters\/staging\/platform\.yaml in the merge request if it should move too\.$/,
        );
    });

    it("refuses a fork point it did not write, saying how to go on, and writes nothing", async () => {
        fs.writeFileSync(path.join(root, "clusters", "sandbox-a", ".fork-point.json"), "{ not json");
        const digest = treeDigest(root);
        await expect(promote(stackGone(root).ctx, "sandbox-a", { yes: true })).rejects.toThrow(
            "clusters/sandbox-a/.fork-point.json is not a fork point the fork wrote. Fix: restore it from Git, or delete it to promote the folder whole; nothing was changed.",
        );
        expect(treeDigest(root)).toBe(digest);
    });

    it("says so when a sandbox forked before fork points were recorded replaces its source's folder whole", async () => {
        fs.rmSync(path.join(root, "clusters", "sandbox-a", ".fork-point.json"));
        const { ctx, printed } = context(root);
        await promote(ctx, "sandbox-a");
        expect(printed[1]).toBe(
            "  (no fork point recorded: the sandbox's folder replaces the source's, and changes made to the source since the fork are reverted)",
        );
    });

    it("refuses while the sandbox's stack still exists in the Pulumi backend", async () => {
        const digest = treeDigest(root);
        const { ctx } = context(root, (c) => (c.args[0] === "stack" ? { code: 0, stdout: JSON.stringify([{ name: "sandbox-a" }]) } : { code: 0 }));
        await expect(promote(ctx, "sandbox-a", { yes: true })).rejects.toThrow(
            "The sandbox's stack still exists. Destroy its cluster first, keeping the files to promote: npm run sandbox -- delete sandbox-a --keep-files",
        );
        expect(treeDigest(root)).toBe(digest);
    });

    it("refuses to remove the sandbox's files when the backend cannot say its stack is gone, unless forced", async () => {
        const digest = treeDigest(root);
        // The default context has no pulumi CLI at all.
        await expect(promote(context(root).ctx, "sandbox-a", { yes: true })).rejects.toThrow(
            "Cannot tell whether the sandbox's stack sandbox-a still exists: the pulumi CLI is not installed. Check with pulumi stack ls; " +
                "if it is there, destroy it keeping the files (npm run sandbox -- delete sandbox-a --keep-files); if you know it is gone, promote again with --force. Nothing was changed.",
        );
        const loggedOut = context(root, (c) =>
            c.command === "pulumi"
                ? { code: 255, stderr: "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions\n" }
                : { code: 0 },
        );
        await expect(promote(loggedOut.ctx, "sandbox-a", { yes: true })).rejects.toThrow(
            "Cannot tell whether the sandbox's stack sandbox-a still exists: error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions.",
        );
        expect(treeDigest(root)).toBe(digest);
        await promote(context(root).ctx, "sandbox-a", { yes: true, force: true });
        expect(fs.existsSync(path.join(root, "clusters", "sandbox-a"))).toBe(false);
    });

    it.each([
        ["development", "'development' is not a sandbox (stacks/Pulumi.development.yaml has no sandbox.source), and this command only touches sandboxes."],
        ["nowhere", "There is no sandbox 'nowhere'. Sandboxes: sandbox-a."],
    ])("refuses to promote %s", async (name, message) => {
        const digest = treeDigest(root);
        await expect(promote(context(root).ctx, name, { yes: true })).rejects.toThrow(message);
        expect(treeDigest(root)).toBe(digest);
    });
});

describe("list and delete", () => {
    let root: string;
    beforeEach(async () => {
        root = copyOfRepo("sandbox");
        await fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a", ttl: "8h" });
        await fork(context(root).ctx, { sandbox: "perf-1", from: "staging" });
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("lists sandboxes with their owner, source, branch, age and TTL, flagging the expired", () => {
        const common = { owner: "alice@example.com", hasFile: true, backend: "kind" };
        expect(listSandboxes({ root, now: new Date("2026-11-25T03:30:00Z") })).toEqual([
            { name: "perf-1", source: "staging", branch: "main", age: "9h", ttl: "7d", expired: false, ...common },
            { name: "sandbox-a", source: "development", branch: "feature/a", age: "9h", ttl: "8h", expired: true, ...common },
        ]);
    });

    /** A pulumi CLI whose backend holds these stacks; every other command succeeds. */
    const backendWith =
        (...stacks: string[]) =>
        (c: Call) =>
            c.command === "pulumi" && c.args[0] === "stack" && c.args[1] === "ls"
                ? { code: 0, stdout: JSON.stringify(stacks.map((name) => ({ name: `acme/gitops-platform/${name}` }))) }
                : { code: 0 };

    it("lists the backend's stacks too: a sandbox whose file is on another branch, and a file whose stack was never brought up", async () => {
        const { ctx, printed } = context(root, backendWith("development", "sandbox-a", "sandbox-elsewhere"));
        ctx.now = new Date("2026-11-25T03:30:00Z");
        await list(ctx);
        expect(printed).toEqual([
            "NAME               OWNER              SOURCE       BRANCH     AGE  TTL",
            "perf-1             alice@example.com  staging      main       9h   7d   no stack in the backend (never brought up, or deleted)",
            "sandbox-a          alice@example.com  development  feature/a  9h   8h   EXPIRED",
            "sandbox-elsewhere  ?                  ?            ?          ?    ?    no stack file on this branch",
        ]);
    });

    it("says when the backend could not be asked, and lists the files alone", async () => {
        const { ctx, printed } = context(root);
        await list(ctx);
        expect(printed.at(-1)).toBe("(The Pulumi backend was not asked: the CLI is missing or not logged in. Only this branch's stack files are listed.)");
    });

    describe("expire", () => {
        const later = new Date("2026-11-25T03:30:00Z");

        it("without --yes names the sandboxes past their TTL and destroys nothing", async () => {
            const { ctx, calls, printed } = context(root, backendWith("sandbox-a", "perf-1"));
            ctx.now = later;
            expect(await expire(ctx)).toEqual([]);
            expect(printed).toEqual([
                "sandbox-a (owner alice@example.com, forked from development) is 9h old, past its TTL of 8h.",
                "Nothing was destroyed. Run again with --yes to destroy it.",
            ]);
            expect(calls.filter((c) => c.args[0] === "destroy")).toEqual([]);
        });

        it("with --yes destroys each one by delete's safe path, and only those", async () => {
            const { ctx, calls } = context(root, backendWith("sandbox-a", "perf-1"));
            ctx.now = later;
            expect(await expire(ctx, { yes: true })).toEqual(["sandbox-a"]);
            expect(calls.filter((c) => c.command === "pulumi" && c.args[0] !== "version" && c.args[1] !== "ls").map((c) => c.args.join(" "))).toEqual([
                "destroy --yes --skip-preview --stack sandbox-a",
                "stack rm --yes --preserve-config --stack sandbox-a",
            ]);
            expect(fs.existsSync(path.join(root, "stacks", "Pulumi.sandbox-a.yaml"))).toBe(false);
            expect(fs.existsSync(path.join(root, "stacks", "Pulumi.perf-1.yaml"))).toBe(true);
        });

        it("in the pipeline, expires only the EKS sandboxes (kind ones live on laptops)", async () => {
            const { ctx, calls, printed } = context(root, backendWith("sandbox-a"));
            ctx.now = later;
            expect(await expire(ctx, { yes: true, backend: "eks" })).toEqual([]);
            expect(printed).toEqual(["No sandbox is past its TTL."]);
            expect(calls.filter((c) => c.args[0] === "destroy")).toEqual([]);
        });

        it("finds an EKS sandbox whose stack file lives on another branch by its stack tags, and destroys it from its state", async () => {
            const tags: Record<string, Record<string, string>> = {
                "sb-elsewhere": {
                    "gitops-platform:sandbox-source": "aws-development",
                    "gitops-platform:sandbox-owner": "bob@example.com",
                    "gitops-platform:sandbox-created-at": "2026-11-20T09:00:00.000Z",
                    "gitops-platform:sandbox-ttl": "3d",
                    "gitops-platform:sandbox-backend": "eks",
                },
                "sb-young": {
                    "gitops-platform:sandbox-source": "aws-development",
                    "gitops-platform:sandbox-created-at": "2026-11-25T01:00:00.000Z",
                    "gitops-platform:sandbox-ttl": "3d",
                    "gitops-platform:sandbox-backend": "eks",
                },
                "aws-production": { "pulumi:project": "gitops-platform" },
            };
            const { ctx, calls, printed } = context(root, (c) =>
                c.args.slice(0, 3).join(" ") === "stack tag ls"
                    ? { code: 0, stdout: JSON.stringify(tags[c.args.at(-1) ?? ""] ?? {}) }
                    : backendWith("aws-production", "sb-elsewhere", "sb-young")(c),
            );
            ctx.now = later;
            expect(await expire(ctx, { yes: true, backend: "eks" })).toEqual(["sb-elsewhere"]);
            expect(printed[0]).toBe("sb-elsewhere (owner bob@example.com, forked from aws-development) is 4d old, past its TTL of 3d.");
            expect(calls.filter((c) => c.args[0] === "destroy" || c.args[1] === "rm").map((c) => c.args.join(" "))).toEqual([
                "destroy --yes --skip-preview --stack sb-elsewhere",
                "stack rm --yes --preserve-config --stack sb-elsewhere",
            ]);
        });

        it("goes on with the others when one cannot be destroyed, then fails naming it", async () => {
            await fork(context(root).ctx, { sandbox: "sandbox-z", from: "development", branch: "feature/z", ttl: "1h" });
            const { ctx, calls } = context(root, (c) =>
                c.args[0] === "destroy" && c.args.includes("sandbox-a")
                    ? { code: 1, stderr: "error: resource busy" }
                    : backendWith("sandbox-a", "sandbox-z")(c),
            );
            ctx.now = later;
            await expect(expire(ctx, { yes: true })).rejects.toThrow("Expiring failed for sandbox-a; the others were destroyed.");
            expect(calls.filter((c) => c.args[0] === "destroy").map((c) => c.args.at(-1))).toEqual(["sandbox-a", "sandbox-z"]);
        });
    });

    it("delete destroys the stack, removes it, then removes the sandbox's files", async () => {
        const { ctx, calls } = context(root, backendWith("development", "sandbox-a"));
        await remove(ctx, "sandbox-a");
        expect(calls.map((c) => `${c.command} ${c.args.join(" ")}`)).toEqual([
            "pulumi version",
            "pulumi stack ls --json",
            "pulumi destroy --yes --skip-preview --stack sandbox-a",
            "pulumi stack rm --yes --preserve-config --stack sandbox-a",
        ]);
        expect(fs.existsSync(path.join(root, "clusters/sandbox-a"))).toBe(false);
        expect(fs.existsSync(path.join(root, "stacks/Pulumi.sandbox-a.yaml"))).toBe(false);
    });

    it("delete of a sandbox whose stack never existed removes its files instead of failing", async () => {
        const { ctx, calls, printed } = context(root, backendWith("development"));
        await remove(ctx, "sandbox-a");
        expect(calls.map((c) => c.args.slice(0, 2).join(" "))).toEqual(["version", "stack ls"]);
        expect(printed[0]).toBe("The stack sandbox-a does not exist in the Pulumi backend (pulumi stack ls): there is no cluster to destroy.");
        expect(fs.existsSync(path.join(root, "clusters/sandbox-a"))).toBe(false);
        expect(fs.existsSync(path.join(root, "stacks/Pulumi.sandbox-a.yaml"))).toBe(false);
    });

    it("delete --keep-files leaves the files to promote", async () => {
        const { ctx } = context(root, () => ({ code: 0 }));
        await remove(ctx, "sandbox-a", { keepFiles: true });
        expect(fs.existsSync(path.join(root, "clusters/sandbox-a"))).toBe(true);
    });

    it("delete keeps the files when the destroy fails", async () => {
        const { ctx } = context(root, (c) => (c.args[0] === "destroy" ? { code: 255, stderr: "error: TeardownStuckError" } : { code: 0 }));
        await expect(remove(ctx, "sandbox-a")).rejects.toThrow("`pulumi destroy --yes --skip-preview --stack sandbox-a` failed (exit 255)");
        expect(fs.existsSync(path.join(root, "stacks/Pulumi.sandbox-a.yaml"))).toBe(true);
    });

    it.each(["production", "aws-staging"])("delete refuses %s, which is not a sandbox", async (stack) => {
        const digest = treeDigest(root);
        const { ctx, calls } = context(root, () => ({ code: 0 }));
        await expect(remove(ctx, stack)).rejects.toThrow(`'${stack}' is not a sandbox`);
        expect(calls).toEqual([]);
        expect(treeDigest(root)).toBe(digest);
    });

    it("delete says how to do it by hand without the pulumi CLI", async () => {
        await expect(remove(context(root).ctx, "sandbox-a")).rejects.toThrow(
            "The pulumi CLI is not on PATH. Install it, or run by hand: pulumi destroy --stack sandbox-a && pulumi stack rm --preserve-config --stack sandbox-a. " +
                "If the sandbox was forked without the CLI and never brought up, it has no stack, only files: git rm -r clusters/sandbox-a stacks/Pulumi.sandbox-a.yaml",
        );
    });
});

describe("the command line", () => {
    it("prints help and refuses unknown commands and missing arguments", async () => {
        const { ctx, printed } = context(REPO_ROOT);
        expect(await main(["--help"], ctx)).toBe(0);
        expect(printed[0]).toMatch(/^Usage: npm run sandbox -- \[options\] \[command\]/);
        expect(printed[0]).toMatch(/fork \[options\] <sandbox>[\s\S]*list[\s\S]*promote \[options\] <sandbox>[\s\S]*delete \[options\] <sandbox>/);
        expect(await main([], ctx)).toBe(2);
        await expect(main(["explode"], ctx)).rejects.toThrow("unknown command 'explode'");
        await expect(main(["fork", "s1"], ctx)).rejects.toThrow("required option '--from <stack>' not specified");
        await expect(main(["promote"], ctx)).rejects.toThrow("missing required argument 'sandbox'");
        await expect(main(["list", "--colour"], ctx)).rejects.toThrow("unknown option '--colour'");
    });

    it("refuses an option that belongs to another command", async () => {
        const { ctx } = context(REPO_ROOT);
        await expect(main(["list", "--dry-run", "--keep-files"], ctx)).rejects.toThrow("unknown option '--dry-run'");
        await expect(main(["promote", "sandbox-a", "--keep-files"], ctx)).rejects.toThrow("unknown option '--keep-files'");
    });
});

describe("the sandbox CLI stays inside the repository", () => {
    let root: string;
    let outside: string;
    beforeEach(() => {
        root = copyOfRepo("sandbox-contain");
        outside = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-outside-"));
        fs.writeFileSync(path.join(outside, "precious.yaml"), "keep: me\n");
    });
    afterEach(() => {
        fs.rmSync(root, { recursive: true, force: true });
        fs.rmSync(outside, { recursive: true, force: true });
    });

    it("promote refuses a sandbox whose stack file points its folder outside the repository, touching nothing", async () => {
        const { ctx } = context(root);
        await fork(ctx, { sandbox: "sandbox-x", from: "development", branch: "feature/x" });
        const file = path.join(root, "stacks", "Pulumi.sandbox-x.yaml");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("clusters/sandbox-x", path.relative(root, outside)));
        const before = treeDigest(root);
        await expect(promote(ctx, "sandbox-x", { yes: true })).rejects.toThrow(
            /^The sync\.path of stacks\/Pulumi\.sandbox-x\.yaml is '\.\.\/.*', which is not a folder under clusters\/ of this repository\./,
        );
        expect(treeDigest(root)).toBe(before);
        expect(fs.readFileSync(path.join(outside, "precious.yaml"), "utf8")).toBe("keep: me\n");
    });

    it("promote refuses a sandbox whose folder is another environment's", async () => {
        const { ctx } = context(root);
        await fork(ctx, { sandbox: "sandbox-y", from: "development", branch: "feature/y" });
        const file = path.join(root, "stacks", "Pulumi.sandbox-y.yaml");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("clusters/sandbox-y", "clusters/production"));
        await expect(promote(ctx, "sandbox-y", { yes: true })).rejects.toThrow(
            "The sync.path of stacks/Pulumi.sandbox-y.yaml is 'clusters/production', not the sandbox's own folder clusters/sandbox-y.",
        );
    });

    it("fork refuses a --from that is a path", async () => {
        const { ctx } = context(root);
        await expect(fork(ctx, { sandbox: "sandbox-z", from: "x/../../development", branch: "feature/z" })).rejects.toThrow(
            "--from 'x/../../development' is not a stack name (letters, digits, '.', '_' and '-'; no paths).",
        );
    });

    it("fork refuses a cluster folder holding a link to a file outside the tree, and never writes through it", async () => {
        fs.symlinkSync(path.join(outside, "precious.yaml"), path.join(root, "clusters", "development", "linked.yaml"));
        const { ctx } = context(root);
        await expect(fork(ctx, { sandbox: "sandbox-l", from: "development", branch: "feature/l" })).rejects.toThrow(
            /^clusters\/development\/linked\.yaml is a link to .*precious\.yaml, outside clusters\/ and platform\/\./,
        );
        expect(fs.readFileSync(path.join(outside, "precious.yaml"), "utf8")).toBe("keep: me\n");
        expect(fs.existsSync(path.join(root, "clusters", "sandbox-l"))).toBe(false);
    });

    it("fork copies a link inside the tree as a regular file, leaving what it points at alone", async () => {
        const target = path.join(root, "platform", "configs", "platform-info.yaml");
        const original = fs.readFileSync(target, "utf8");
        fs.symlinkSync(target, path.join(root, "clusters", "development", "info-link.yaml"));
        const { ctx } = context(root);
        await fork(ctx, { sandbox: "sandbox-k", from: "development", branch: "feature/k" });
        const copied = path.join(root, "clusters", "sandbox-k", "info-link.yaml");
        expect(fs.lstatSync(copied).isSymbolicLink()).toBe(false);
        expect(fs.readFileSync(target, "utf8")).toBe(original);
    });
});

describe("promote never loses work", () => {
    let root: string;
    beforeEach(() => {
        root = copyOfRepo("sandbox-work");
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("refuses while the target folder has uncommitted changes, naming them and touching nothing", async () => {
        await fork(context(root).ctx, { sandbox: "sandbox-w", from: "development", branch: "feature/w" });
        const before = treeDigest(root);
        const { ctx } = context(root, (c) =>
            c.command === "git" ? { code: 0, stdout: " M clusters/development/platform.yaml\n?? clusters/development/new.yaml\n" } : "missing",
        );
        await expect(promote(ctx, "sandbox-w", { yes: true })).rejects.toThrow(
            "Uncommitted changes would be lost: clusters/development/platform.yaml, clusters/development/new.yaml. Commit or stash them, then promote again; nothing was changed.",
        );
        expect(treeDigest(root)).toBe(before);
    });

    it("names a target file that is not YAML instead of crashing", async () => {
        await fork(context(root).ctx, { sandbox: "sandbox-v", from: "development", branch: "feature/v" });
        fs.appendFileSync(path.join(root, "clusters", "development", "platform.yaml"), "\n  broken: [unclosed\n");
        await expect(promote(context(root).ctx, "sandbox-v", { yes: true })).rejects.toThrow(
            /^clusters\/development\/platform\.yaml: Flow sequence in block collection must be sufficiently indented and end with a \] at line \d+, column 1\. Repair that file before promoting into clusters\/development; nothing was changed\.$/,
        );
    });
});

describe("an interrupted run", () => {
    let root: string;
    beforeEach(() => {
        root = copyOfRepo("sandbox-kill");
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("is undone by the next run of the CLI, which says so in one line", async () => {
        const before = treeDigest(root);
        // What a promote killed with -9 between its moves leaves: development set aside, a half-placed folder.
        const staging = fs.mkdtempSync(path.join(root, ".sandbox-staging-"));
        const target = path.join(root, "clusters", "development");
        const aside = path.join(staging, "aside-0");
        fs.renameSync(target, aside);
        fs.mkdirSync(target);
        fs.writeFileSync(path.join(target, "half.yaml"), "half: written\n");
        fs.writeFileSync(path.join(staging, "journal.json"), JSON.stringify({ pid: 2 ** 22 + 12345, moves: [{ target, aside }, { placed: target }] }));

        const { ctx, printed } = context(root);
        await fork(ctx, { sandbox: "sandbox-after", from: "development", branch: "feature/after" });
        expect(printed[0]).toBe(`Found a sandbox run interrupted at step 2 (process ${2 ** 22 + 12345}): undid it.`);
        expect(fs.readdirSync(root).filter((e) => e.startsWith(".sandbox-staging-"))).toEqual([]);
        fs.rmSync(path.join(root, "clusters", "sandbox-after"), { recursive: true });
        fs.rmSync(path.join(root, "stacks", "Pulumi.sandbox-after.yaml"));
        expect(treeDigest(root)).toBe(before);
    });

    it("undoes a delete killed between its two moves: the sandbox's folder is back beside its stack file", async () => {
        await fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" });
        const before = treeDigest(root);
        const staging = fs.mkdtempSync(path.join(root, ".sandbox-staging-"));
        const target = path.join(root, "clusters", "sandbox-a");
        fs.writeFileSync(
            path.join(staging, "journal.json"),
            JSON.stringify({ pid: 2 ** 22 + 12345, moves: [{ target, aside: path.join(staging, "aside-0") }] }),
        );
        fs.renameSync(target, path.join(staging, "aside-0"));

        const { ctx, printed } = context(root);
        await fork(ctx, { sandbox: "sandbox-b", from: "development", branch: "feature/b" });
        expect(printed[0]).toBe(`Found a sandbox run interrupted at step 1 (process ${2 ** 22 + 12345}): undid it.`);
        fs.rmSync(path.join(root, "clusters", "sandbox-b"), { recursive: true });
        fs.rmSync(path.join(root, "stacks", "Pulumi.sandbox-b.yaml"));
        expect(treeDigest(root)).toBe(before);
    });

    it("leaves the staging area of a run that is still going alone", async () => {
        const staging = fs.mkdtempSync(path.join(root, ".sandbox-staging-"));
        fs.writeFileSync(path.join(staging, "journal.json"), JSON.stringify({ pid: process.pid, moves: [] }));
        const { ctx, printed } = context(root);
        await fork(ctx, { sandbox: "sandbox-busy", from: "development", branch: "feature/busy" });
        expect(printed.filter((l) => l.startsWith("Found a sandbox run"))).toEqual([]);
        expect(fs.existsSync(staging)).toBe(true);
    });
});

describe("two sandbox commands at once", () => {
    let root: string;
    beforeEach(() => {
        root = copyOfRepo("sandbox-race");
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    const busy = (name: string) =>
        `Another sandbox command (process ${process.pid}) is working on ${name}; nothing was changed. Run this again when it has finished.`;
    const outcomes = (results: PromiseSettledResult<void>[]) => results.map((r) => (r.status === "fulfilled" ? "done" : (r.reason as Error).message));

    it("two forks of the same name: one forks, the other is refused", async () => {
        const results = await Promise.allSettled([
            fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" }),
            fork(context(root).ctx, { sandbox: "sandbox-a", from: "staging", branch: "feature/b" }),
        ]);
        expect(outcomes(results)).toEqual(["done", busy("sandbox-a")]);
        expect(stackConfig(root, "sandbox-a")["gitops-platform:sandbox"]).toMatchObject({ source: "development" });
    });

    it("two promotes of the same sandbox: one promotes, the other is refused", async () => {
        await fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" });
        const results = await Promise.allSettled([
            promote(stackGone(root).ctx, "sandbox-a", { yes: true }),
            promote(stackGone(root).ctx, "sandbox-a", { yes: true }),
        ]);
        expect(outcomes(results)).toEqual(["done", busy("development")]);
        expect(fs.existsSync(path.join(root, "clusters", "development", "platform.yaml"))).toBe(true);
        expect(fs.readdirSync(root).filter((e) => e.startsWith(".sandbox-"))).toEqual([]);
    });

    it("a delete of a sandbox being promoted is refused, and the promote completes", async () => {
        await fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" });
        const deleting = context(root, () => ({ code: 0 }));
        const results = await Promise.allSettled([promote(stackGone(root).ctx, "sandbox-a", { yes: true }), remove(deleting.ctx, "sandbox-a")]);
        expect(outcomes(results)).toEqual(["done", busy("sandbox-a")]);
        expect(deleting.calls).toEqual([]);
    });

    it("a lock that names no process is never taken over, and the refusal says how to clear it", async () => {
        fs.writeFileSync(path.join(root, ".sandbox-lock-sandbox-a"), "");
        await expect(fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" })).rejects.toThrow(
            "Another sandbox command is working on sandbox-a; nothing was changed. Run this again when it has finished; if none is running, delete .sandbox-lock-sandbox-a.",
        );
    });

    it("a lock held by a live process refuses; one left by a killed process is taken over", async () => {
        fs.writeFileSync(path.join(root, ".sandbox-lock-sandbox-a"), String(process.pid));
        await expect(fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" })).rejects.toThrow(busy("sandbox-a"));
        expect(fs.existsSync(path.join(root, "stacks", "Pulumi.sandbox-a.yaml"))).toBe(false);

        fs.writeFileSync(path.join(root, ".sandbox-lock-sandbox-a"), String(2 ** 22 + 12345));
        await fork(context(root).ctx, { sandbox: "sandbox-a", from: "development", branch: "feature/a" });
        expect(fs.existsSync(path.join(root, "stacks", "Pulumi.sandbox-a.yaml"))).toBe(true);
        expect(fs.existsSync(path.join(root, ".sandbox-lock-sandbox-a"))).toBe(false);
    });
});
