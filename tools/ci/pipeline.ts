import { stringify } from "yaml";
import { REPO_ROOT, type Tier, tierOf } from "../../lib/project";
import { configString, listStacks, readStackDocument, stackFileProblem } from "../../lib/stack-files";
import { affectedStacks, sandboxStacks, stacksReadingTheTree, unsafeStackNames } from "./affected";

// The child pipeline each parent pipeline runs: `npm run -s pipeline -- --event <event> --image <ref>
// [--all | changed paths…]` prints it. One job per stack, so stacks run side by side on the runners and one
// failing stack never hides another's result. Only cloud stacks run here: a kind stack's state lives on
// a laptop, and the end-to-end job covers kind.

export type PipelineEvent = "merge_request" | "main" | "schedule";
export const EVENTS: PipelineEvent[] = ["merge_request", "main", "schedule"];

/** The MR label that lets a preview replace or delete what production runs on (see `destructiveChanges`). */
export const PRODUCTION_OVERRIDE_LABEL = "production-replacement-approved";

export interface PipelineInput {
    event: PipelineEvent;
    /** Paths the change touches (merge request: against its diff base; main: against the last push). */
    changed: string[];
    /** Every stack counts as affected (the first push to a branch has nothing to compare with). @default false */
    all?: boolean;
    /** Every job's image, pinned by digest: the tools image the parent pipeline built. */
    image: string;
    /** The repository. @default REPO_ROOT */
    root?: string;
    /** The Pulumi Cloud organisation to log in to with the job's OIDC token; none: PULUMI_BACKEND_URL. */
    pulumiCloudOrg?: string;
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

type Job = Record<string, unknown>;

/** The child pipeline for an event, as the object GitLab reads. */
export function childPipeline(input: PipelineInput): Record<string, unknown> {
    if (!/@sha256:[0-9a-f]{64}$/.test(input.image)) {
        throw new Error(`--image ${input.image} is not pinned by digest (<image>@sha256:<64 hex digits>)`);
    }
    const root = input.root ?? REPO_ROOT;
    const unsafe = [...unsafeStackNames(listStacks(root)), ...listStacks(root).flatMap((s) => stackFileProblem(root, s) ?? [])];
    if (unsafe.length > 0) throw new Error(unsafe.join("\n"));
    const cloud = cloudStacks(root);
    const affected = new Set(
        input.all ? listStacks(root) : affectedStacks(input.changed, listStacks(root), stacksReadingTheTree(root), sandboxStacks(root)).stacks,
    );
    const deployed = cloud.filter((s) => DEPLOYED.includes(s.tier));

    const jobs: Record<string, Job> = {};
    let stages: string[];
    if (input.event === "merge_request") {
        stages = ["preview"];
        for (const s of cloud.filter((c) => affected.has(c.stack))) jobs[`preview ${s.stack}`] = previewJob(s, input);
    } else if (input.event === "main") {
        stages = ["deploy"];
        const deploying = deployed.filter((c) => affected.has(c.stack));
        for (const s of deploying) jobs[`deploy ${s.stack}`] = deployJob(s, deploying, input);
    } else {
        stages = ["drift"];
        for (const s of deployed) jobs[`drift ${s.stack}`] = driftJob(s, input);
        jobs["expire sandboxes"] = expireJob(input);
    }
    if (Object.keys(jobs).length === 0) {
        // GitLab refuses a pipeline without jobs; this one says why there is nothing to do.
        stages = ["nothing"];
        jobs["no stack affected"] = {
            stage: "nothing",
            image: input.image,
            script: [`echo "No cloud stack is affected by this ${input.event === "main" ? "push" : "change"}: nothing to ${verb(input.event)}."`],
        };
    }
    return {
        default: {
            image: input.image,
            // npm's cache and the provider plugins Pulumi downloads, kept between jobs of a branch.
            cache: { key: { files: ["package-lock.json"] }, paths: [".npm/", ".pulumi-home/plugins/"] },
            before_script: ["npm ci --cache .npm --prefer-offline --no-audit --no-fund"],
        },
        variables: { PULUMI_HOME: "$CI_PROJECT_DIR/.pulumi-home", AWS_WEB_IDENTITY_TOKEN_FILE: "/tmp/aws-web-identity-token" },
        stages,
        ...jobs,
    };
}

function verb(event: PipelineEvent): string {
    return event === "merge_request" ? "preview" : event === "main" ? "deploy" : "check";
}

/**
 * Short-lived credentials only: the job's OIDC tokens, exchanged by the AWS SDKs (a web-identity token
 * file and a role) and, for Pulumi Cloud, by `npm run -s ci -- pulumi-token`.
 */
function credentials(role: "AWS_PREVIEW_ROLE_ARN" | "AWS_DEPLOY_ROLE_ARN", input: PipelineInput): Job {
    const idTokens: Record<string, { aud: string }> = { AWS_ID_TOKEN: { aud: "sts.amazonaws.com" } };
    if (input.pulumiCloudOrg) idTokens["PULUMI_ID_TOKEN"] = { aud: `urn:pulumi:org:${input.pulumiCloudOrg}` };
    return {
        id_tokens: idTokens,
        variables: { AWS_ROLE_ARN: `$${role}` },
        login: [
            'printf %s "$AWS_ID_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"',
            ...(input.pulumiCloudOrg ? [`export PULUMI_ACCESS_TOKEN="$(npm run -s ci -- pulumi-token ${input.pulumiCloudOrg})"`] : []),
        ],
    };
}

function withCredentials(role: "AWS_PREVIEW_ROLE_ARN" | "AWS_DEPLOY_ROLE_ARN", input: PipelineInput, s: CloudStack, job: Job & { script: string[] }): Job {
    const { id_tokens, variables, login } = credentials(role, input) as { id_tokens: unknown; variables: Record<string, string>; login: string[] };
    return { ...job, id_tokens, variables: { ...variables, STACK: s.stack }, script: [...login, ...job.script] };
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

function deployJob(s: CloudStack, deploying: CloudStack[], input: PipelineInput): Job {
    // Development first, staging after it succeeded, production by hand after staging.
    const before: Record<string, string | undefined> = { staging: "development", production: "staging" };
    const previous = deploying.find((d) => d.tier === before[s.tier]);
    return withCredentials("AWS_DEPLOY_ROLE_ARN", input, s, {
        stage: "deploy",
        environment: { name: s.stack, deployment_tier: s.tier },
        resource_group: s.stack,
        interruptible: false,
        ...(previous ? { needs: [`deploy ${previous.stack}`] } : { needs: [] }),
        ...(s.tier === "production" ? { when: "manual", allow_failure: false } : {}),
        script: [
            // The first deploy of a stack new on main creates it.
            'pulumi stack select --create "$STACK" --non-interactive',
            'pulumi up --yes --diff --non-interactive --stack "$STACK" --policy-pack policy',
        ],
    });
}

function driftJob(s: CloudStack, input: PipelineInput): Job {
    return withCredentials("AWS_PREVIEW_ROLE_ARN", input, s, {
        stage: "drift",
        interruptible: true,
        // Pulumi's drift check: what the cloud holds against the state, changing neither; fails listing every drift.
        script: ['pulumi refresh --preview-only --expect-no-changes --diff --non-interactive --stack "$STACK"'],
    });
}

/**
 * EKS sandboxes past their TTL, destroyed by the sandbox tool's safe path (Flux objects, Flux, cluster).
 * Kind sandboxes live on laptops. The checkout is thrown away, so the files stay for their owner to remove.
 */
function expireJob(input: PipelineInput): Job {
    const { id_tokens, variables, login } = credentials("AWS_DEPLOY_ROLE_ARN", input) as {
        id_tokens: unknown;
        variables: Record<string, string>;
        login: string[];
    };
    return {
        stage: "drift",
        id_tokens,
        variables,
        interruptible: false,
        resource_group: "sandbox-expiry",
        script: [...login, "npm run -s sandbox -- expire --yes --backend eks --keep-files"],
    };
}

/** `--event <event> --image <ref> [changed paths…]`, paths also one per line in one argument. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = {}): PipelineInput {
    let event: string | undefined;
    let image: string | undefined;
    const changed: string[] = [];
    let all = false;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i] ?? "";
        if (a === "--all") all = true;
        else if (a === "--event") event = argv[++i];
        else if (a === "--image") image = argv[++i];
        else changed.push(...a.split("\n").filter((l) => l.trim()));
    }
    if (!event || !EVENTS.includes(event as PipelineEvent)) throw new Error(`--event must be one of ${EVENTS.join(", ")}`);
    if (!image) throw new Error("--image <ref@sha256:…> is required: the tools image every job runs in");
    return { event: event as PipelineEvent, image, changed, all, pulumiCloudOrg: env["PULUMI_CLOUD_ORG"] || undefined };
}

if (require.main === module) {
    try {
        process.stdout.write(stringify(childPipeline(parseArgs(process.argv.slice(2), process.env)), { lineWidth: 0 }));
    } catch (e) {
        console.error((e as Error).message);
        process.exit(2);
    }
}
