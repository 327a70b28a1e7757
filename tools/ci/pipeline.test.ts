import { describe, expect, it } from "@jest/globals";
import Ajv from "ajv";
import * as fs from "fs";
import * as path from "path";
import { parse, stringify } from "yaml";
import { KIND_RELEASE, REPO_ROOT } from "../../lib/project";
import { copyOfRepo } from "../../test/support/temp-repo";
import { readGitlabCiSchema } from "../schemas/vendored";
import { childPipeline, cloudStacks, parseArgs, PipelineEvent, PipelineInput } from "./pipeline";

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
const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(readGitlabCiSchema());
const schemaErrors = (doc: unknown) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`));

/** The child pipeline for an event and changed paths, as GitLab would read the YAML the CLI prints. */
function child(event: PipelineEvent, changed: string[], extra: Partial<PipelineInput> = {}): Record<string, Job> {
    return parse(stringify(childPipeline({ event, changed, image: IMAGE, ...extra }))) as Record<string, Job>;
}
const jobsOf = (pipeline: Record<string, Job>) => Object.keys(pipeline).filter((k) => !["default", "variables", "stages"].includes(k));

describe("GitLab's CI schema accepts", () => {
    it(".gitlab-ci.yml", () => {
        expect(schemaErrors(parent)).toEqual([]);
    });

    it.each<[string, PipelineEvent, string[], Partial<PipelineInput>]>([
        ["a merge request that changes the program (every cloud stack previewed)", "merge_request", ["components/environment.ts"], {}],
        ["a merge request that changes no stack", "merge_request", ["README.md"], {}],
        ["a push to main that changes one stack file", "main", ["stacks/Pulumi.aws-staging.yaml"], {}],
        ["the first push to main (everything)", "main", [], { all: true }],
        ["a schedule, logging in to Pulumi Cloud by OIDC", "schedule", [], { pulumiCloudOrg: "acme" }],
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
            ["preview aws-development", "preview aws-production", "preview aws-staging"],
        ],
        ["a stack file previews that stack", "merge_request", ["stacks/Pulumi.aws-production.yaml"], ["preview aws-production"]],
        ["a kind stack file previews nothing (its state lives on a laptop)", "merge_request", ["stacks/Pulumi.development.yaml"], ["no stack affected"]],
        ["the GitOps tree alone previews nothing", "merge_request", ["clusters/staging/platform.yaml"], ["no stack affected"]],
        [
            "a push of the program deploys every cloud stack",
            "main",
            ["components/flux-bootstrap.ts"],
            ["deploy aws-development", "deploy aws-production", "deploy aws-staging"],
        ],
        ["a push of one stack file deploys that stack", "main", ["stacks/Pulumi.aws-staging.yaml"], ["deploy aws-staging"]],
        ["a push of docs deploys nothing", "main", ["README.md"], ["no stack affected"]],
        [
            "a schedule checks every deployed cloud stack for drift, whatever changed, and expires EKS sandboxes",
            "schedule",
            [],
            ["drift aws-development", "drift aws-production", "drift aws-staging", "expire sandboxes"],
        ],
    ])("%s", (_name, event, changed, jobs) => {
        expect(jobsOf(child(event, changed)).sort()).toEqual(jobs);
    });

    it("knows the cloud stacks and their tiers from the stack files", () => {
        expect(cloudStacks(REPO_ROOT).filter((s) => s.tier !== "sandbox")).toEqual([
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
                jobsOf(parse(stringify(childPipeline({ event, changed: ["stacks/Pulumi.aws-sb-1.yaml"], image: IMAGE, root }))) as Record<string, Job>);
            expect(jobs("merge_request")).toEqual(["preview aws-sb-1"]);
            expect(jobs("main")).toEqual(["no stack affected"]);
            expect(jobs("schedule")).not.toContain("drift aws-sb-1");
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });
});

describe("merge requests: a preview per stack", () => {
    const pipeline = child("merge_request", ["lib/project.ts"]);
    const previews = jobsOf(pipeline).map((name) => pipeline[name]!);

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

    it("does not wait for a stack the push did not change", () => {
        expect(child("main", ["stacks/Pulumi.aws-production.yaml"])["deploy aws-production"]?.needs).toEqual([]);
    });

    it("creates a stack on its first deploy, and deploys with the deploy role", () => {
        expect(deploy("aws-staging").script).toContain('pulumi stack select --create "$STACK" --non-interactive');
        expect(deploy("aws-staging").variables?.AWS_ROLE_ARN).toBe("$AWS_DEPLOY_ROLE_ARN");
    });

    it("never deploys from the parent pipeline, and only a push to main makes a deploy pipeline", () => {
        const all = Object.keys(parent).map(script).join("\n");
        expect(all).not.toMatch(/pulumi (up|destroy)/);
        expect(parent.plan?.rules).toEqual([
            { if: '$CI_PIPELINE_SOURCE == "merge_request_event"', variables: { EVENT: "merge_request" } },
            { if: '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH', variables: { EVENT: "main" } },
            // A schedule and a "Run pipeline" on main check drift: they change nothing.
            { if: "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", variables: { EVENT: "schedule" } },
        ]);
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

    it("logs in to Pulumi Cloud with the job's own OIDC token when the stacks live there", () => {
        const job = child("schedule", [], { pulumiCloudOrg: "acme" })["drift aws-staging"]!;
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
        expect(() => childPipeline({ event: "main", changed: [], image: "registry.example/ci-tools:latest" })).toThrow(
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
            expect(() => childPipeline({ event: "main", changed: ["package.json"], image: IMAGE, root })).toThrow(
                /^stacks\/Pulumi\.aws-staging\.yaml is not valid YAML \(.+\)\. Fix: repair the file$/,
            );
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("is read from the command line the parent pipeline uses", () => {
        expect(parseArgs(["--event", "merge_request", "--image", IMAGE, "stacks/Pulumi.aws-staging.yaml\nREADME.md"], { PULUMI_CLOUD_ORG: "acme" })).toEqual({
            event: "merge_request",
            image: IMAGE,
            changed: ["stacks/Pulumi.aws-staging.yaml", "README.md"],
            all: false,
            pulumiCloudOrg: "acme",
        });
        expect(() => parseArgs(["--event", "tag", "--image", IMAGE])).toThrow("--event must be one of merge_request, main, schedule");
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

    it("publishes platform/ on a version tag", () => {
        expect(script("publish-platform")).toContain('flux push artifact "oci://${CI_REGISTRY_IMAGE}/platform:${CI_COMMIT_TAG}"');
        expect(script("publish-platform")).toContain("--ignore-paths='/*,!/platform/'");
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

    it("syncs the commit under test: this project, this branch, the job's own token", () => {
        expect(script("e2e")).toContain(
            'export E2E_REPOSITORY_URL="${CI_PROJECT_URL}.git" E2E_BRANCH="${CI_COMMIT_BRANCH:-$CI_MERGE_REQUEST_SOURCE_BRANCH_NAME}"',
        );
        // The token is CI_JOB_TOKEN, which the tool falls back to when no GITLAB_TOKEN is set.
        expect(script("e2e")).not.toContain("GITLAB_TOKEN");
    });

    it("installs the kind release whose node image the program pins", () => {
        expect(e2e?.variables?.KIND_VERSION).toMatch(new RegExp(`^${KIND_RELEASE.replace(".", "\\.")}\\.\\d+$`));
    });
});
