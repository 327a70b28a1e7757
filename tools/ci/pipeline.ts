import { stringify } from "yaml";
import { REPO_ROOT, type Tier, tierOf } from "../../lib/project";
import { configString, listStacks, readStackDocument, stackFileProblem } from "../../lib/stack-files";
import { affectedStacks, sandboxStacks, stacksReadingTheTree, unsafeStackNames } from "./affected";

// The child pipeline each parent pipeline runs: `npm run -s pipeline -- --event <event> --image <ref>
// [--all | changed paths…]` prints it. One job per stack, so stacks run side by side on the runners and one
// failing stack never hides another's result. Only cloud stacks run here: a kind stack's state lives on
// a laptop, and the end-to-end job covers kind.

export type PipelineEvent = "merge_request" | "main" | "schedule";

/** The MR label that lets a preview replace or delete what production runs on (see `destructiveChanges`). */
export const PRODUCTION_OVERRIDE_LABEL = "production-replacement-approved";

/** Where the stacks' state lives: Pulumi Cloud (logged in by OIDC), or a bucket with a KMS secrets provider. */
export type Backend = { cloudOrg: string } | { url: string; secretsProvider: string };

export interface PipelineInput {
    event: PipelineEvent;
    /** Paths a merge request changes, against its diff base (other events act on every stack). */
    changed: string[];
    /** Every job's image, pinned by digest: the tools image the parent pipeline built. */
    image: string;
    backend: Backend;
    /** A runner tag every stack job carries, to reach runners that can get to the clusters' API endpoints. */
    runnerTag?: string;
    /** The repository. @default REPO_ROOT */
    root?: string;
}

/** A cloud stack and the tier its environment belongs to. */
export interface CloudStack {
    stack: string;
    tier: Tier;
}

/** The stacks in stacks/ that run on EKS, with their tier. */
export function cloudStacks(root: string): CloudStack[] {
    return listStacks(root).flatMap((stack) => {
        const doc = readStackDocument(root, stack);
        return configString(doc, "cluster.backend") === "eks" ? [{ stack, tier: tierOf(configString(doc, "environment") ?? "") }] : [];
    });
}

/** The tiers the pipeline deploys and drift-checks; a sandbox is somebody's, deployed by its owner. */
const DEPLOYED: Tier[] = ["development", "staging", "production"];

/** How long one deploy may take: an EKS cluster and its node group take about 20 minutes to create. */
export const DEPLOY_TIMEOUT = "1h 30m";

type Job = Record<string, unknown>;

/**
 * The child pipeline for an event, as the object GitLab reads. Its workflow rule matters: a child of a
 * merge-request pipeline is a merge-request pipeline, where jobs without rules get GitLab's default
 * `only: [branches, tags]` and none would be created (test/support/gitlab.ts cites GitLab's source); with
 * workflow:rules, GitLab drops that default from every job.
 */
export function childPipeline(input: PipelineInput): Record<string, unknown> {
    if (!/@sha256:[0-9a-f]{64}$/.test(input.image)) {
        throw new Error(`--image ${input.image} is not pinned by digest (<image>@sha256:<64 hex digits>)`);
    }
    const root = input.root ?? REPO_ROOT;
    const unsafe = [...unsafeStackNames(listStacks(root)), ...listStacks(root).flatMap((s) => stackFileProblem(root, s) ?? [])];
    if (unsafe.length > 0) throw new Error(unsafe.join("\n"));
    const cloud = cloudStacks(root);
    const deployed = cloud.filter((s) => DEPLOYED.includes(s.tier));

    const jobs: Record<string, Job> = {};
    let stages: string[];
    if (input.event === "merge_request") {
        stages = ["preview"];
        const affected = new Set(affectedStacks(input.changed, listStacks(root), stacksReadingTheTree(root), sandboxStacks(root)).stacks);
        for (const s of cloud.filter((c) => affected.has(c.stack))) jobs[`preview ${s.stack}`] = previewJob(s, input);
        jobs["flux diff"] = fluxDiffJob();
    } else if (input.event === "main") {
        // State, not diffs: every environment is brought to what main says on every push, so a deploy that
        // failed, was cancelled or skipped is caught up by the next one (an unchanged stack is a no-op).
        stages = ["deploy"];
        for (const s of deployed) jobs[`deploy ${s.stack}`] = deployJob(s, deployed, input);
    } else {
        stages = ["drift", "reconcile"];
        for (const s of deployed) {
            jobs[`drift ${s.stack}`] = driftJob(s, input);
            jobs[`reconcile ${s.stack}`] = reconcileJob(s, input);
        }
        jobs["expire sandboxes"] = expireJob(input);
    }
    if (Object.keys(jobs).length === 0) {
        // GitLab refuses a pipeline without jobs; this one says why there is nothing to do.
        stages = ["nothing"];
        jobs["no stack affected"] = {
            stage: "nothing",
            image: input.image,
            script: [`echo "No cloud stack is affected by this change: nothing to preview."`],
        };
    }
    const selfManaged = "url" in input.backend;
    return {
        workflow: { rules: [{ if: '$CI_PIPELINE_SOURCE == "parent_pipeline"' }] },
        default: {
            image: input.image,
            // npm's cache and the provider plugins Pulumi downloads, kept between jobs of a branch.
            cache: { key: { files: ["package-lock.json"] }, paths: [".npm/", ".pulumi-home/plugins/"] },
            before_script: ["npm ci --cache .npm --prefer-offline --no-audit --no-fund"],
            ...(input.runnerTag ? { tags: [input.runnerTag] } : {}),
        },
        variables: {
            PULUMI_HOME: "$CI_PROJECT_DIR/.pulumi-home",
            AWS_WEB_IDENTITY_TOKEN_FILE: "/tmp/aws-web-identity-token",
            // A bucket backend keeps each stack's secrets provider in its state; the stack files in Git carry
            // no encryptedkey, so the CLI must read it from there.
            ...(selfManaged ? { PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER: "true" } : {}),
        },
        stages,
        ...jobs,
    };
}

/**
 * Short-lived credentials only: the job's OIDC tokens, exchanged by the AWS SDKs (a web-identity token
 * file and a role) and, for Pulumi Cloud, by `npm run -s ci -- pulumi-token`.
 */
function withCredentials(
    role: "AWS_PREVIEW_ROLE_ARN" | "AWS_DEPLOY_ROLE_ARN",
    input: PipelineInput,
    s: CloudStack | undefined,
    job: Job & { script: string[] },
): Job {
    const org = "cloudOrg" in input.backend ? input.backend.cloudOrg : undefined;
    const idTokens: Record<string, { aud: string }> = { AWS_ID_TOKEN: { aud: "sts.amazonaws.com" } };
    if (org) idTokens["PULUMI_ID_TOKEN"] = { aud: `urn:pulumi:org:${org}` };
    const login = [
        'printf %s "$AWS_ID_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"',
        ...(org ? [`export PULUMI_ACCESS_TOKEN="$(npm run -s ci -- pulumi-token ${org})"`] : []),
    ];
    return {
        ...job,
        id_tokens: idTokens,
        variables: { AWS_ROLE_ARN: `$${role}`, ...(s ? { STACK: s.stack } : {}) },
        script: [...login, ...job.script],
    };
}

function previewJob(s: CloudStack, input: PipelineInput): Job {
    return withCredentials("AWS_PREVIEW_ROLE_ARN", input, s, {
        stage: "preview",
        interruptible: true,
        script: ['npm run -s ci -- preview "$STACK"'],
        artifacts: {
            when: "always",
            // The plan's counts in the merge request widget; the summary of replacements and deletions beside it.
            reports: { terraform: `preview-${s.stack}.json` },
            paths: [`preview-${s.stack}.md`],
            access: "developer",
            expire_in: "30 days",
        },
    });
}

/**
 * What each environment will get from the merge request, on its cadence (`npm run diff`): the report as an
 * artifact linked from the merge request, and, with DIFF_NOTE_TOKEN, one note updated on every pipeline.
 * It fails only when a side does not build; a change is what it is there to show. It needs every tag (the
 * releases staging and production run) and the diff base.
 */
function fluxDiffJob(): Job {
    return {
        stage: "preview",
        interruptible: true,
        variables: { GIT_DEPTH: "0" },
        script: [
            'git fetch --quiet --tags origin "$CI_MERGE_REQUEST_DIFF_BASE_SHA"',
            'code=0; npm run -s diff -- --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA" --head HEAD --format markdown > flux-diff.md || code=$?',
            "cat flux-diff.md",
            'if [ -n "${DIFF_NOTE_TOKEN:-}" ] && [ -s flux-diff.md ]; then npm run -s ci -- mr-note flux-diff.md; fi',
            'exit "$code"',
        ],
        artifacts: { when: "always", paths: ["flux-diff.md"], expose_as: "Flux diff", expire_in: "30 days" },
    };
}

/** Selects the stack, creating it on its first deploy with the bucket backend's KMS secrets provider. */
function selectOrCreate(input: PipelineInput): string {
    return "url" in input.backend
        ? 'pulumi stack select --create "$STACK" --secrets-provider "$PULUMI_SECRETS_PROVIDER" --non-interactive'
        : 'pulumi stack select --create "$STACK" --non-interactive';
}

/** `pulumi up` as the pipeline runs it: refreshed first, so what drifted is put back rather than assumed. */
const UP = 'pulumi up --yes --refresh --diff --non-interactive --stack "$STACK" --policy-pack policy';

function deployJob(s: CloudStack, deploying: CloudStack[], input: PipelineInput): Job {
    // Development first, staging after it succeeded, production by hand after staging.
    const before: Record<string, string | undefined> = { staging: "development", production: "staging" };
    const previous = deploying.find((d) => d.tier === before[s.tier]);
    return withCredentials("AWS_DEPLOY_ROLE_ARN", input, s, {
        stage: "deploy",
        environment: { name: s.stack, deployment_tier: s.tier },
        // One update per stack at a time; the README says to set the group's process mode to oldest_first.
        resource_group: s.stack,
        interruptible: false,
        timeout: DEPLOY_TIMEOUT,
        ...(previous ? { needs: [`deploy ${previous.stack}`] } : { needs: [] }),
        ...(s.tier === "production" ? { when: "manual", allow_failure: false } : {}),
        script: [selectOrCreate(input), UP],
    });
}

function driftJob(s: CloudStack, input: PipelineInput): Job {
    return {
        ...withCredentials("AWS_PREVIEW_ROLE_ARN", input, s, {
            stage: "drift",
            interruptible: true,
            needs: [],
            // Pulumi's drift check: what the cloud holds against the state, changing neither; fails listing every drift.
            script: ['pulumi refresh --preview-only --expect-no-changes --diff --non-interactive --stack "$STACK"'],
        }),
        // Drift found: one open issue per stack says so (updated, never duplicated), when the project gave a token.
        after_script: ['if [ "$CI_JOB_STATUS" = "failed" ] && [ -n "${DRIFT_ISSUE_TOKEN:-}" ]; then npm run -s ci -- report-drift "$STACK"; fi'],
    };
}

/** The remedy for drift: `pulumi up` of that stack as main's deploy runs it, by hand, on the same pipeline. */
function reconcileJob(s: CloudStack, input: PipelineInput): Job {
    return withCredentials("AWS_DEPLOY_ROLE_ARN", input, s, {
        stage: "reconcile",
        environment: { name: s.stack, deployment_tier: s.tier, action: "start" },
        resource_group: s.stack,
        interruptible: false,
        timeout: DEPLOY_TIMEOUT,
        needs: [],
        when: "manual",
        // A remedy nobody has to take: the pipeline's result is the drift check's.
        allow_failure: true,
        script: [selectOrCreate(input), UP],
    });
}

/**
 * EKS sandboxes past their TTL, found in the backend by the stack tags the fork wrote (so sandboxes whose
 * files live on other branches are found too) and destroyed by the sandbox tool's safe path.
 */
function expireJob(input: PipelineInput): Job {
    return withCredentials("AWS_DEPLOY_ROLE_ARN", input, undefined, {
        stage: "drift",
        needs: [],
        interruptible: false,
        resource_group: "sandbox-expiry",
        script: ["npm run -s sandbox -- expire --yes --backend eks --keep-files"],
    });
}

/**
 * The event, from what GitLab itself says about the pipeline: only a push to the default branch deploys.
 * A variable such as EVENT could be set by whoever starts a pipeline (pipeline variables outrank the
 * file's), so the generator takes none.
 */
export function eventOf(env: NodeJS.ProcessEnv): PipelineEvent {
    const source = env["CI_PIPELINE_SOURCE"];
    const onDefault = !!env["CI_COMMIT_BRANCH"] && env["CI_COMMIT_BRANCH"] === env["CI_DEFAULT_BRANCH"];
    if (source === "merge_request_event") return "merge_request";
    if (source === "push" && onDefault) return "main";
    if (onDefault) return "schedule";
    throw new Error(
        `This pipeline (source ${source ?? "unknown"}, branch ${env["CI_COMMIT_BRANCH"] ?? "none"}) has no stack jobs: ` +
            "they run for merge requests, pushes to the default branch, and schedules or runs on it",
    );
}

/** The tools image must be the one this project's own pipeline built, by digest. */
export function toolsImageProblem(image: string | undefined, registryImage: string | undefined): string | undefined {
    const expected = `${registryImage ?? "<CI_REGISTRY_IMAGE>"}/ci-tools@sha256:`;
    if (!image) return "TOOLS_IMAGE is not set: the tools-image job hands it on";
    if (!registryImage || !image.startsWith(expected) || !/@sha256:[0-9a-f]{64}$/.test(image)) {
        return `TOOLS_IMAGE ${image} is not this project's tools image (${expected}<digest>): the stack jobs hold the deploy role, so they run only in the image this pipeline built`;
    }
    return undefined;
}

/** The backend from the project's CI/CD variables. */
export function backendOf(env: NodeJS.ProcessEnv): Backend {
    const org = env["PULUMI_CLOUD_ORG"];
    if (org) return { cloudOrg: org };
    const url = env["PULUMI_BACKEND_URL"];
    if (!url) throw new Error("Set PULUMI_CLOUD_ORG (Pulumi Cloud) or PULUMI_BACKEND_URL (e.g. s3://<bucket>) as a CI/CD variable");
    if (url.startsWith("file:")) throw new Error(`PULUMI_BACKEND_URL ${url} is a folder of the job's own machine: its state would vanish with the job`);
    const secretsProvider = env["PULUMI_SECRETS_PROVIDER"];
    if (!secretsProvider || /^(default|passphrase)$/.test(secretsProvider)) {
        throw new Error(
            `PULUMI_BACKEND_URL ${url} keeps secrets with the stack's own secrets provider, and none is set: set PULUMI_SECRETS_PROVIDER ` +
                "to a KMS key the deploy role may use (e.g. awskms://alias/gitops-platform-state?region=eu-west-1)",
        );
    }
    return { url, secretsProvider };
}

/** Everything the child pipeline depends on, from the plan job's environment and the changed paths. */
export function inputFromEnvironment(env: NodeJS.ProcessEnv, changed: string[], root?: string): PipelineInput {
    const problems: string[] = [];
    const attempt = <T>(f: () => T): T | undefined => {
        try {
            return f();
        } catch (e) {
            problems.push((e as Error).message);
            return undefined;
        }
    };
    const event = attempt(() => eventOf(env));
    const imageProblem = toolsImageProblem(env["TOOLS_IMAGE"], env["CI_REGISTRY_IMAGE"]);
    if (imageProblem) problems.push(imageProblem);
    const backend = attempt(() => backendOf(env));
    if (problems.length > 0 || !event || !backend) throw new Error(problems.join("\n"));
    return { event, changed, image: env["TOOLS_IMAGE"] ?? "", backend, runnerTag: env["STACK_RUNNER_TAG"] || undefined, root };
}

/** The changed paths, one per argument or one per line in one argument. */
export function changedPaths(argv: string[]): string[] {
    return argv
        .flatMap((a) => a.split("\n"))
        .map((l) => l.trim())
        .filter(Boolean);
}

if (require.main === module) {
    try {
        process.stdout.write(stringify(childPipeline(inputFromEnvironment(process.env, changedPaths(process.argv.slice(2)))), { lineWidth: 0 }));
    } catch (e) {
        console.error((e as Error).message);
        process.exit(2);
    }
}
