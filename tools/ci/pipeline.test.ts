import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import Ajv from "ajv";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { KIND_CLUSTER_DEFAULTS, KIND_RELEASE, REPO_ROOT } from "../../lib/project";
import { copyOfRepo, SAMPLE_TREE } from "../../test/support/temp-repo";
import { readGitlabCiSchema } from "../schemas/vendored";
import { backendOf, childPipeline, cloudStacks, eventOf, inputFromEnvironment, PipelineEvent, PipelineInput } from "./pipeline";

// The parent pipeline (.gitlab-ci.yml) and every child pipeline the generator can write, checked against
// GitLab's own schema (vendored in schemas/) and for the properties of their jobs.

type Job = {
    stage?: string;
    image?: unknown;
    script?: string[];
    rules?: { if: string; when?: string; allow_failure?: boolean; variables?: Record<string, string> }[];
    services?: { name: string; alias?: string }[] | string[];
    variables?: Record<string, string>;
    environment?: { name: string; deployment_tier: string };
    resource_group?: string;
    interruptible?: boolean;
    needs?: string[];
    when?: string;
    id_tokens?: Record<string, { aud: string }>;
    artifacts?: { reports?: { terraform?: string }; access?: string; paths?: string[] };
    trigger?: { include: { artifact: string; job: string }[]; strategy?: string };
};

const parent = parse(fs.readFileSync(path.join(REPO_ROOT, ".gitlab-ci.yml"), "utf8")) as Record<string, Job>;
const script = (job: string) => (parent[job]?.script ?? []).join("\n");

const IMAGE = `registry.gitlab.example/platform/gitops-platform/ci-tools@sha256:${"0123456789abcdef".repeat(4)}`;
const BUCKET = { url: "s3://acme-pulumi-state", secretsProvider: "awskms://alias/gitops-platform-state?region=eu-west-1" };
const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(readGitlabCiSchema());
const schemaErrors = (doc: unknown) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`));

/** The child pipeline for an event and changed paths, as GitLab would read the YAML the CLI prints. */
function child(event: PipelineEvent, changed: string[], extra: Partial<PipelineInput> = {}): Record<string, Job> {
    return parse(stringify(childPipeline({ event, changed, image: IMAGE, backend: BUCKET, ...extra }))) as Record<string, Job>;
}
const jobsOf = (pipeline: Record<string, Job>) => Object.keys(pipeline).filter((k) => !["default", "variables", "stages", "workflow"].includes(k));

describe("GitLab's CI schema accepts", () => {
    it(".gitlab-ci.yml", () => {
        expect(schemaErrors(parent)).toEqual([]);
    });

    it.each<[string, PipelineEvent, string[], Partial<PipelineInput>]>([
        ["a merge request that changes the program (every cloud stack previewed)", "merge_request", ["components/environment.ts"], {}],
        ["a merge request that changes no stack", "merge_request", ["README.md"], {}],
        ["a push to main that changes one stack file", "main", ["stacks/Pulumi.aws-staging.yaml"], {}],
        ["a schedule, logging in to Pulumi Cloud by OIDC", "schedule", [], { backend: { cloudOrg: "acme" } }],
        ["a push to main, with a runner tag", "main", [], { runnerTag: "gitops-platform" }],
    ])("the child pipeline of %s", (_name, event, changed, extra) => {
        expect(schemaErrors(child(event, changed, extra))).toEqual([]);
    });

    it("and it is a real check: a misspelt keyword is refused", () => {
        expect(schemaErrors({ ...parent, test: { ...parent.test, rulez: [] } })).not.toEqual([]);
    });
});

describe("which jobs each event gets", () => {
    it.each<[string, PipelineEvent, string[], string[]]>([
        [
            "a program change previews every cloud stack",
            "merge_request",
            ["infra/program.ts"],
            ["flux diff", "preview aws-development", "preview aws-production", "preview aws-staging"],
        ],
        ["a stack file previews that stack", "merge_request", ["stacks/Pulumi.aws-production.yaml"], ["flux diff", "preview aws-production"]],
        ["a kind stack file previews nothing (its state lives on a laptop)", "merge_request", ["stacks/Pulumi.development.yaml"], ["flux diff"]],
        [
            "the GitOps tree alone previews no stack, and shows what each environment will get",
            "merge_request",
            ["clusters/staging/platform.yaml"],
            ["flux diff"],
        ],
        [
            "a push deploys every cloud stack, whatever it changed (a no-op where nothing did)",
            "main",
            ["README.md"],
            ["deploy aws-development", "deploy aws-production", "deploy aws-staging"],
        ],
        [
            "a schedule checks every deployed cloud stack for drift, whatever changed, and expires EKS sandboxes",
            "schedule",
            [],
            [
                "drift aws-development",
                "drift aws-production",
                "drift aws-staging",
                "expire sandboxes",
                "reconcile aws-development",
                "reconcile aws-production",
                "reconcile aws-staging",
            ],
        ],
    ])("%s", (_name, event, changed, jobs) => {
        expect(jobsOf(child(event, changed)).sort()).toEqual(jobs);
    });

    it("knows the cloud stacks and their tiers from the stack files", () => {
        expect(cloudStacks(SAMPLE_TREE).filter((s) => s.tier !== "sandbox")).toEqual([
            { stack: "aws-development", tier: "development" },
            { stack: "aws-production", tier: "production" },
            { stack: "aws-staging", tier: "staging" },
        ]);
    });

    it("previews a cloud sandbox in its merge request, but never deploys or drift-checks it (its owner does)", () => {
        const root = copyOfRepo("pipeline-sandbox", ["stacks", "clusters", "platform"]);
        try {
            const source = fs.readFileSync(path.join(root, "stacks", "Pulumi.aws-development.yaml"), "utf8");
            fs.writeFileSync(
                path.join(root, "stacks", "Pulumi.aws-sb-1.yaml"),
                source.replace("gitops-platform:environment: development", "gitops-platform:environment: sb-1"),
            );
            const jobs = (event: PipelineEvent) =>
                jobsOf(
                    parse(stringify(childPipeline({ event, changed: ["stacks/Pulumi.aws-sb-1.yaml"], image: IMAGE, backend: BUCKET, root }))) as Record<
                        string,
                        Job
                    >,
                );
            expect(jobs("merge_request")).toEqual(["preview aws-sb-1", "flux diff"]);
            expect(jobs("main")).not.toContain("deploy aws-sb-1");
            expect(jobs("schedule")).not.toContain("drift aws-sb-1");
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });
});

describe("merge requests: a preview per stack", () => {
    const pipeline = child("merge_request", ["lib/project.ts"]);
    const previews = jobsOf(pipeline)
        .filter((name) => name.startsWith("preview "))
        .map((name) => pipeline[name]!);

    it("each stack its own job, none waiting on another, so every stack is previewed even when one fails", () => {
        expect(previews).toHaveLength(3);
        for (const job of previews) expect(job.needs).toBeUndefined();
        expect(new Set(previews.map((j) => j.variables?.STACK))).toEqual(new Set(["aws-development", "aws-staging", "aws-production"]));
        for (const job of previews) expect(job.script?.at(-1)).toBe('npm run -s ci -- preview "$STACK"');
    });

    it("publishes the plan's counts to the merge request widget, readable by developers only", () => {
        const development = pipeline["preview aws-development"];
        expect(development?.artifacts).toMatchObject({
            reports: { terraform: "preview-aws-development.json" },
            access: "developer",
            paths: ["preview-aws-development.md"],
        });
    });

    it("runs with the read-only role, from the job's OIDC token: no environment, nothing deployed", () => {
        for (const job of previews) {
            expect(job.variables?.AWS_ROLE_ARN).toBe("$AWS_PREVIEW_ROLE_ARN");
            expect(job.id_tokens).toEqual({ AWS_ID_TOKEN: { aud: "sts.amazonaws.com" } });
            expect(job.environment).toBeUndefined();
        }
    });
});

describe("merge requests: what each environment will get", () => {
    const job = child("merge_request", ["platform/apps/podinfo.yaml"])["flux diff"] as Job & { artifacts?: { expose_as?: string; paths?: string[] } };

    it("diffs against GitLab's diff base with every tag at hand, and links the report from the merge request", () => {
        expect(job.variables).toEqual({ GIT_DEPTH: "0" });
        expect(job.script?.[0]).toBe('git fetch --quiet --tags origin "$CI_MERGE_REQUEST_DIFF_BASE_SHA"');
        expect(job.script?.join("\n")).toContain('npm run -s diff -- --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA" --head HEAD --format markdown > flux-diff.md');
        expect(job.artifacts).toMatchObject({ paths: ["flux-diff.md"], expose_as: "Flux diff" });
    });

    it("fails only when a side does not build, and updates its one note when the project gave a token", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-flux-diff-"));
        try {
            const fake = (name: string, body: string) => fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
            fake("git", "exit 0");
            // npm as the job calls it: the diff exits with what FAKE_DIFF_EXIT says; the note is recorded.
            fake(
                "npm",
                `case "$*" in *" diff "*) echo "## What each environment will get"; exit "\${FAKE_DIFF_EXIT:-0}" ;; *mr-note*) echo "npm $*" >> "${dir}/calls" ;; esac`,
            );
            const run = (env: Record<string, string>) =>
                spawnSync("bash", ["-eo", "pipefail", "-c", (job.script ?? []).join("\n")], {
                    cwd: dir,
                    env: { PATH: `${dir}:/usr/bin:/bin`, ...env },
                    encoding: "utf8",
                }).status;
            expect(run({})).toBe(0);
            expect(fs.existsSync(path.join(dir, "calls"))).toBe(false);
            expect(run({ DIFF_NOTE_TOKEN: "t" })).toBe(0);
            expect(fs.readFileSync(path.join(dir, "calls"), "utf8").trim()).toBe("npm run -s ci -- mr-note flux-diff.md");
            expect(run({ FAKE_DIFF_EXIT: "1" })).toBe(1);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("main: every environment deployed, production behind a gate", () => {
    const pipeline = child("main", ["components/environment.ts"]);
    const deploy = (stack: string) => pipeline[`deploy ${stack}`]!;

    it("records each deploy as a GitLab environment with its tier, one at a time per stack, never cancelled half-way", () => {
        for (const [stack, tier] of [
            ["aws-development", "development"],
            ["aws-staging", "staging"],
            ["aws-production", "production"],
        ] as const) {
            expect(deploy(stack).environment).toEqual({ name: stack, deployment_tier: tier });
            expect(deploy(stack).resource_group).toBe(stack);
            expect(deploy(stack).interruptible).toBe(false);
        }
    });

    it("deploys development first, staging once development succeeded, production by hand after staging", () => {
        expect(deploy("aws-development").needs).toEqual([]);
        expect(deploy("aws-development").when).toBeUndefined();
        expect(deploy("aws-staging").needs).toEqual(["deploy aws-development"]);
        expect(deploy("aws-staging").when).toBeUndefined();
        expect(deploy("aws-production").needs).toEqual(["deploy aws-staging"]);
        expect(deploy("aws-production")).toMatchObject({ when: "manual", allow_failure: false });
    });

    it("creates a stack on its first deploy with the bucket's KMS secrets provider, and deploys with the deploy role", () => {
        expect(deploy("aws-staging").script).toContain('pulumi stack select --create "$STACK" --secrets-provider "$PULUMI_SECRETS_PROVIDER" --non-interactive');
        expect(deploy("aws-staging").variables?.AWS_ROLE_ARN).toBe("$AWS_DEPLOY_ROLE_ARN");
        // The stack files in Git carry no encryptedkey: the CLI takes the secrets provider from the state.
        expect((pipeline.variables as Record<string, string>).PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER).toBe("true");
        const cloud = child("main", [], { backend: { cloudOrg: "acme" } });
        expect(cloud["deploy aws-staging"]?.script).toContain('pulumi stack select --create "$STACK" --non-interactive');
        expect((cloud.variables as Record<string, string>).PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER).toBeUndefined();
    });

    it("refreshes before it updates, within a time limit, and puts drift back", () => {
        for (const stack of ["aws-development", "aws-staging", "aws-production"]) {
            expect(deploy(stack).script?.at(-1)).toBe('pulumi up --yes --refresh --diff --non-interactive --stack "$STACK" --policy-pack policy');
            expect((deploy(stack) as { timeout?: string }).timeout).toBe("1h 30m");
        }
    });

    it("never deploys from the parent pipeline", () => {
        const all = Object.keys(parent).map(script).join("\n");
        expect(all).not.toMatch(/pulumi (up|destroy)/);
    });
});

describe("schedule: drift", () => {
    const pipeline = child("schedule", []);

    it("destroys the EKS sandboxes past their TTL with the deploy role, by the sandbox tool's safe path", () => {
        const job = pipeline["expire sandboxes"]!;
        expect(job.script?.at(-1)).toBe("npm run -s sandbox -- expire --yes --backend eks --keep-files");
        expect(job.variables?.AWS_ROLE_ARN).toBe("$AWS_DEPLOY_ROLE_ARN");
        expect(job.interruptible).toBe(false);
    });

    it("runs Pulumi's drift check on every deployed stack, read-only, changing nothing", () => {
        for (const name of jobsOf(pipeline).filter((n) => n.startsWith("drift "))) {
            const job = pipeline[name]!;
            expect(job.script?.at(-1)).toMatch(/^pulumi refresh --preview-only --expect-no-changes .*--stack "\$STACK"$/);
            expect(job.variables?.AWS_ROLE_ARN).toBe("$AWS_PREVIEW_ROLE_ARN");
            expect(job.environment).toBeUndefined();
        }
    });

    it("opens or updates the stack's drift issue when the check fails and the project gave a token, and only then", () => {
        const after = (pipeline["drift aws-staging"] as { after_script?: string[] }).after_script ?? [];
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-drift-"));
        try {
            fs.writeFileSync(path.join(dir, "npm"), `#!/bin/sh\necho "npm $*" >> "${dir}/calls"\n`, { mode: 0o755 });
            const run = (env: Record<string, string>) => {
                fs.rmSync(path.join(dir, "calls"), { force: true });
                const r = spawnSync("bash", ["-eo", "pipefail", "-c", after.join("\n")], {
                    env: { PATH: `${dir}:/usr/bin:/bin`, STACK: "aws-staging", ...env },
                    encoding: "utf8",
                });
                expect(r.status).toBe(0);
                return fs.existsSync(path.join(dir, "calls")) ? fs.readFileSync(path.join(dir, "calls"), "utf8").trim() : "";
            };
            expect(run({ CI_JOB_STATUS: "failed", DRIFT_ISSUE_TOKEN: "t" })).toBe("npm run -s ci -- report-drift aws-staging");
            expect(run({ CI_JOB_STATUS: "success", DRIFT_ISSUE_TOKEN: "t" })).toBe("");
            expect(run({ CI_JOB_STATUS: "failed" })).toBe("");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("offers the remedy: a manual reconcile per stack, with the deploy role, in the stack's environment, that never fails the pipeline", () => {
        const job = pipeline["reconcile aws-production"] as Job & { allow_failure?: boolean };
        expect(job.when).toBe("manual");
        expect(job.allow_failure).toBe(true);
        expect(job.variables?.AWS_ROLE_ARN).toBe("$AWS_DEPLOY_ROLE_ARN");
        expect(job.resource_group).toBe("aws-production");
        expect(job.script?.at(-1)).toBe('pulumi up --yes --refresh --diff --non-interactive --stack "$STACK" --policy-pack policy');
    });

    it("logs in to Pulumi Cloud with the job's own OIDC token when the stacks live there", () => {
        const job = child("schedule", [], { backend: { cloudOrg: "acme" } })["drift aws-staging"]!;
        expect(job.id_tokens?.PULUMI_ID_TOKEN).toEqual({ aud: "urn:pulumi:org:acme" });
        expect(job.script).toContain('export PULUMI_ACCESS_TOKEN="$(npm run -s ci -- pulumi-token acme)"');
    });
});

describe("every pipeline", () => {
    it("runs the stack jobs in the tools image, pinned by digest, and refuses one that is not", () => {
        for (const event of ["merge_request", "main", "schedule"] as const) {
            const pipeline = child(event, ["package.json"]);
            expect((pipeline.default as { image?: unknown }).image).toBe(IMAGE);
        }
        expect(() => childPipeline({ event: "main", changed: [], image: "registry.example/ci-tools:latest", backend: BUCKET })).toThrow(
            "--image registry.example/ci-tools:latest is not pinned by digest (<image>@sha256:<64 hex digits>)",
        );
    });

    it("holds no long-lived cloud credential", () => {
        const text = [
            fs.readFileSync(path.join(REPO_ROOT, ".gitlab-ci.yml"), "utf8"),
            ...(["merge_request", "main", "schedule"] as const).map((e) => stringify(child(e, ["package.json"]))),
        ].join("\n");
        expect(text).not.toMatch(/AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|PULUMI_ACCESS_TOKEN:/);
    });

    it("caches npm and the provider plugins", () => {
        const defaults = child("main", ["package.json"]).default as { cache?: { paths?: string[] } };
        expect(defaults.cache?.paths).toEqual([".npm/", ".pulumi-home/plugins/"]);
    });

    it("refuses a stack file that is not YAML, naming it, before writing any job", () => {
        const root = copyOfRepo("pipeline-broken", ["stacks", "clusters", "platform"]);
        try {
            fs.writeFileSync(path.join(root, "stacks", "Pulumi.aws-staging.yaml"), "config:\n  - [unclosed\n");
            expect(() => childPipeline({ event: "main", changed: ["package.json"], image: IMAGE, backend: BUCKET, root })).toThrow(
                /^stacks\/Pulumi\.aws-staging\.yaml is not valid YAML \(.+\)\. Fix: repair the file$/,
            );
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("takes its event from GitLab's own variables, and refuses a pipeline it has no jobs for", () => {
        const main = { CI_DEFAULT_BRANCH: "main" };
        expect(eventOf({ ...main, CI_PIPELINE_SOURCE: "merge_request_event" })).toBe("merge_request");
        expect(eventOf({ ...main, CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "main" })).toBe("main");
        expect(eventOf({ ...main, CI_PIPELINE_SOURCE: "web", CI_COMMIT_BRANCH: "main", EVENT: "main" })).toBe("schedule");
        expect(() => eventOf({ ...main, CI_PIPELINE_SOURCE: "push", CI_COMMIT_TAG: "1.2.3" })).toThrow(
            "This pipeline (source push, branch none) has no stack jobs: they run for merge requests, pushes to the default branch, and schedules or runs on it",
        );
    });

    it("needs a backend that keeps secrets safe, and says which variable to set", () => {
        expect(backendOf({ PULUMI_CLOUD_ORG: "acme" })).toEqual({ cloudOrg: "acme" });
        expect(() => backendOf({})).toThrow("Set PULUMI_CLOUD_ORG (Pulumi Cloud) or PULUMI_BACKEND_URL (e.g. s3://<bucket>) as a CI/CD variable");
        expect(() => backendOf({ PULUMI_BACKEND_URL: "s3://acme-state" })).toThrow(
            "PULUMI_BACKEND_URL s3://acme-state keeps secrets with the stack's own secrets provider, and none is set: set PULUMI_SECRETS_PROVIDER to a KMS key the deploy role may use (e.g. awskms://alias/gitops-platform-state?region=eu-west-1)",
        );
        expect(() => backendOf({ PULUMI_BACKEND_URL: "s3://acme-state", PULUMI_SECRETS_PROVIDER: "passphrase" })).toThrow(/none is set/);
    });

    it("lists every problem of the plan job's environment at once", () => {
        expect(() => inputFromEnvironment({ CI_PIPELINE_SOURCE: "push", CI_REGISTRY_IMAGE: "registry.gitlab.com/acme/p" }, [])).toThrow(
            [
                "This pipeline (source push, branch none) has no stack jobs: they run for merge requests, pushes to the default branch, and schedules or runs on it",
                "TOOLS_IMAGE is not set: the tools-image job hands it on",
                "Set PULUMI_CLOUD_ORG (Pulumi Cloud) or PULUMI_BACKEND_URL (e.g. s3://<bucket>) as a CI/CD variable",
            ].join("\n"),
        );
    });
});

describe("the parent pipeline", () => {
    it("tests every change with the README's command, on the Node.js LTS", () => {
        expect(script("test")).toContain("npm test");
        expect(parent.test?.image).toMatch(/^node:22\b/);
    });

    it("runs the whole npm test again over a copy with a committed sandbox of every stack", () => {
        expect(script("test-with-sandboxes").split("\n").at(-1)).toBe("npm run test:sandboxes");
        expect(parent["test-with-sandboxes"]?.rules).toBeUndefined();
    });

    it("runs the whole npm test again over a copy whose clusters/ and platform/ are a team's own tree", () => {
        expect(script("test-with-own-tree").split("\n").at(-1)).toBe("npm run test:own-tree");
        expect(parent["test-with-own-tree"]?.image).toBe(parent.test?.image);
    });

    it("builds the tools image from tools/ci/Dockerfile and hands on its digest", () => {
        expect(script("tools-image")).toContain('docker build -t "$REPO:$TAG" tools/ci');
        expect(script("tools-image")).toContain('echo "TOOLS_IMAGE=$REPO@$DIGEST"');
        const dockerfile = fs.readFileSync(path.join(REPO_ROOT, "tools", "ci", "Dockerfile"), "utf8");
        const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
        expect(dockerfile).toContain(`ARG PULUMI_VERSION=${pkg.dependencies["@pulumi/pulumi"]}`);
        expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22-/m);
        expect(dockerfile).toMatch(/awscli-exe-linux-x86_64/);
    });

    it("lists a merge request's changes against GitLab's diff base, which a shallow clone cannot get wrong", () => {
        expect(script("plan")).toContain('git diff --name-only "$CI_MERGE_REQUEST_DIFF_BASE_SHA" HEAD');
        expect(script("plan")).not.toContain("...HEAD");
    });

    it("fails the plan job when the generator refuses (no pipe hides its exit code)", () => {
        expect(script("plan")).toMatch(/npm run -s pipeline -- .* > stacks\.yml\n/);
        expect(script("plan")).not.toMatch(/npm run -s pipeline[^\n]*\|/);
    });

    it("runs the child pipeline the plan job wrote, and fails when it fails", () => {
        expect(parent.stacks?.trigger).toEqual({ include: [{ artifact: "stacks.yml", job: "plan" }], strategy: "depend" });
        expect(parent.stacks?.variables?.MERGE_REQUEST_LABELS).toBe("$CI_MERGE_REQUEST_LABELS");
    });

    it("publishes platform/ on a version tag, and prints the digest production pins", () => {
        expect(script("publish-platform")).toContain('flux push artifact "${ARTIFACT}:${CI_COMMIT_TAG}"');
        expect(script("publish-platform")).toContain("--ignore-paths='/*,!/platform/'");
        expect(script("publish-platform")).toContain("--output json | tee platform-artifact.json");
    });
});

/** Runs a job's script as the runner's bash does (each line must succeed), in `cwd`, with `PATH` first. */
function runScript(job: string, cwd: string, env: Record<string, string>): { code: number; output: string } {
    const result = spawnSync("bash", ["-eo", "pipefail", "-c", (parent[job]?.script ?? []).join("\n")], {
        cwd,
        env: { ...process.env, ...env },
        encoding: "utf8",
    });
    return { code: result.status ?? 1, output: `${result.stdout}${result.stderr}` };
}

describe("releasing the platform", () => {
    const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8" }).trim();
    let dir: string;
    beforeAll(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-release-"));
        const origin = path.join(dir, "origin");
        fs.mkdirSync(origin);
        git(origin, "init", "-q", "-b", "main");
        git(origin, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "reviewed");
        git(origin, "switch", "-q", "-c", "unreviewed");
        git(origin, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "never merged");
        git(dir, "clone", "-q", origin, "work");
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const work = () => path.join(dir, "work");
    const sha = (ref: string) => git(work(), "rev-parse", `origin/${ref}`);

    it("publishes only a tag whose commit is on main", () => {
        const guard = (commit: string) => runScript("release-guard", work(), { CI_DEFAULT_BRANCH: "main", CI_COMMIT_SHA: commit, CI_COMMIT_TAG: "1.2.3" });
        expect(guard(sha("main")).code).toBe(0);
        const refused = guard(sha("unreviewed"));
        expect(refused.code).toBe(1);
        expect(refused.output).toContain(`Tag 1.2.3 is on ${sha("unreviewed")}, which is not on main: only a reviewed merge is published.`);
    });

    it("never pushes over an artifact already published under the tag", () => {
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin, { recursive: true });
        // flux as its CLI answers: `pull artifact` succeeds when the tag exists (cmd/flux/pull_artifact.go).
        fs.writeFileSync(
            path.join(bin, "flux"),
            `#!/bin/sh\necho "flux $1 $2" >> "${dir}/flux-calls"\n[ "$1 $2" = "pull artifact" ] && { [ -f "${dir}/published" ] && exit 0 || exit 1; }\necho '{"digest":"sha256:${"a".repeat(64)}"}'\n`,
            { mode: 0o755 },
        );
        const env = {
            PATH: `${bin}:${process.env["PATH"] ?? ""}`,
            CI_REGISTRY_IMAGE: "registry.gitlab.com/acme/p",
            CI_COMMIT_TAG: "1.2.3",
            CI_COMMIT_SHA: sha("main"),
        };
        fs.writeFileSync(path.join(dir, "published"), "");
        const refused = runScript("publish-platform", work(), env);
        expect(refused.code).toBe(1);
        expect(refused.output).toContain("oci://registry.gitlab.com/acme/p/platform:1.2.3 exists already: a published tag is never replaced.");
        expect(fs.readFileSync(path.join(dir, "flux-calls"), "utf8")).not.toContain("flux push");
        fs.rmSync(path.join(dir, "published"));
        const published = runScript("publish-platform", work(), env);
        expect(published.code).toBe(0);
        expect(published.output).toContain(`Pin production with: ref: { tag: "1.2.3", digest: "sha256:${"a".repeat(64)}" }`);
    });
});

describe("the end-to-end job", () => {
    const e2e = parent["e2e"];

    it("runs the development environment for real on main, on a schedule, and by hand in a merge request", () => {
        expect(e2e?.rules).toEqual([
            { if: '$CI_PIPELINE_SOURCE == "schedule"' },
            { if: '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH' },
            { if: '$CI_PIPELINE_SOURCE == "merge_request_event"', when: "manual", allow_failure: true },
        ]);
        expect(script("e2e").split("\n").at(-1)).toBe("npm run e2e");
    });

    it("runs kind in a Docker-in-Docker service and reaches the API server on that service's host", () => {
        expect(e2e?.services).toContainEqual(expect.objectContaining({ name: expect.stringMatching(/^docker:[\d.]+-dind$/), alias: "docker" }));
        expect(e2e?.variables).toMatchObject({ DOCKER_HOST: "tcp://docker:2375", E2E_KIND_API_SERVER_HOST: "docker" });
    });

    it("syncs the commit under test: this project, this very commit, the job's own token", () => {
        expect(script("e2e")).toContain(
            'export E2E_REPOSITORY_URL="${CI_PROJECT_URL}.git" E2E_BRANCH="${CI_COMMIT_BRANCH:-$CI_MERGE_REQUEST_SOURCE_BRANCH_NAME}" E2E_COMMIT="$CI_COMMIT_SHA"',
        );
        // The token is CI_JOB_TOKEN, which the tool falls back to when no GITLAB_TOKEN is set.
        expect(script("e2e")).not.toContain("GITLAB_TOKEN");
    });

    it("gives the Docker-in-Docker service the hosted runners' MTU, which kind's network inherits, and pulls through a mirror", () => {
        const service = ((e2e?.services ?? []) as { name: string; command?: string[] }[]).find((s) => s.name.endsWith("-dind"));
        expect(service?.command).toEqual(["--mtu=1360", "--registry-mirror=https://mirror.gcr.io"]);
    });

    it("runs a kubectl within one minor version of the cluster it tests", () => {
        const minor = (v: string) => Number(/v1\.(\d+)\./.exec(v)?.[1]);
        const cluster = minor(KIND_CLUSTER_DEFAULTS.nodeImage);
        expect(Math.abs(minor(e2e?.variables?.KUBECTL_VERSION ?? "") - cluster)).toBeLessThanOrEqual(1);
    });

    it("waits only for the tests, so a production deploy waiting for its click or a drift never holds it back", () => {
        expect(e2e?.needs).toEqual(["test"]);
    });

    it("installs the kind release whose node image the program pins", () => {
        expect(e2e?.variables?.KIND_VERSION).toMatch(new RegExp(`^${KIND_RELEASE.replace(".", "\\.")}\\.\\d+$`));
    });
});
