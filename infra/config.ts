import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as semver from "semver";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { FLUX_DEFAULTS } from "../components/flux-bootstrap";
import { KIND_CLUSTER_DEFAULTS } from "../components/kind-cluster";
import { findPlatformSource, normaliseRepoPath, PlatformSourceKind, REPO_ROOT, syncedManifests } from "./gitops-tree";

/** The config namespace: the project name in Pulumi.yaml. */
export const PROJECT = "gitops-platform";

/** The long-lived environments; any other environment name is a sandbox. */
export const ENVIRONMENTS = ["development", "staging", "production"] as const;
export type Tier = (typeof ENVIRONMENTS)[number] | "sandbox";

/** The controllers a FluxInstance may install (the CRD's enum). */
export const FLUX_COMPONENTS = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "source-watcher",
] as const;

/** Config defaults; those the components also apply come from the components. Pulumi.yaml documents them. */
export const DEFAULTS = {
    kindNodeImage: KIND_CLUSTER_DEFAULTS.nodeImage,
    controlPlaneNodes: KIND_CLUSTER_DEFAULTS.controlPlaneNodes,
    workers: KIND_CLUSTER_DEFAULTS.workers,
    fluxOperatorVersion: "0.58.0",
    fluxVersion: "2.x",
    fluxRegistry: FLUX_DEFAULTS.registry,
    fluxComponents: FLUX_DEFAULTS.components,
    syncInterval: FLUX_DEFAULTS.syncInterval,
    syncBranch: "main",
    gitUsername: FLUX_DEFAULTS.username,
    tokenEnvVar: "GITLAB_TOKEN",
} as const;

// --- the schema -------------------------------------------------------------------------------
// Messages say what is wrong and how to fix it; the key and the stack file are added when reported.

/** A DNS-1123 label: what names a kind cluster, a namespace or a sandbox. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A sandbox's time to live: minutes, hours or days. */
export const TTL = /^[1-9][0-9]*(m|h|d)$/;
const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
const HOSTNAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?$/i;
const REGISTRY = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9._-]+)*$/;

const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);

const dnsLabel = (what: string, max: number) =>
    z
        .string()
        .max(max, { message: `must be at most ${max} characters. Fix: pick a shorter ${what}` })
        .regex(DNS_LABEL, {
            message: `must be a DNS-1123 label (lowercase letters, digits and '-'). Fix: e.g. 'sandbox-a'`,
        });

const exactVersion = (example: string) =>
    z.string().refine((v) => semver.valid(v) !== null, {
        message: `must be an exact version. Fix: e.g. '${example}'`,
    });

const portMapping = z
    .object({
        containerPort: z.number().int().min(1).max(65535),
        hostPort: z.number().int().min(1).max(65535),
        protocol: z.enum(["TCP", "UDP", "SCTP"]).default("TCP"),
        listenAddress: z.string().optional(),
    })
    .strict();

const kindCluster = z
    .object({
        backend: z.literal("kind"),
        name: dnsLabel("cluster name", 50).optional(),
        nodeImage: z
            .string()
            .regex(/^kindest\/node:v\d+\.\d+\.\d+(@sha256:[a-f0-9]{64})?$/, {
                message: "must be a kindest/node image with a Kubernetes version tag. Fix: e.g. 'kindest/node:v1.35.0'",
            })
            .default(DEFAULTS.kindNodeImage),
        controlPlaneNodes: z
            .number()
            .int()
            .min(1, { message: "must be at least 1. Fix: use 1, or 3 for a highly available control plane" })
            .refine((n) => n % 2 === 1, {
                message: "must be odd so etcd keeps quorum. Fix: use 1 or 3",
            })
            .default(DEFAULTS.controlPlaneNodes),
        workers: z
            .number()
            .int({ message: "must be a whole number. Fix: e.g. 0 or 2" })
            .min(0, { message: "cannot be negative. Fix: use 0 to run workloads on the control plane" })
            .max(10, { message: "is more than a laptop can run. Fix: use 10 or fewer" })
            .default(DEFAULTS.workers),
        portMappings: z
            .array(portMapping)
            .default([])
            .refine((ms) => new Set(ms.map((m) => `${m.hostPort}/${m.protocol}`)).size === ms.length, {
                message: "maps the same host port twice. Fix: give each mapping its own hostPort",
            }),
    })
    .strict();

/** EKS minor versions this program accepts: those in AWS standard support. Extend as EKS adds them. */
export const EKS_VERSIONS = ["1.32", "1.33", "1.34", "1.35", "1.36"] as const;

const AWS_REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;
const IAM_ROLE_ARN = /^arn:aws(-cn|-us-gov)?:iam::\d{12}:role\/[\w+=,.@/-]+$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;

const cidr = z.string().superRefine((value, ctx) => {
    const problem = cidrProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const eksCluster = z
    .object({
        backend: z.literal("eks"),
        name: dnsLabel("cluster name", 100).optional(),
        region: z.string({ message: "is required. Fix: set the AWS region, e.g. 'eu-west-1'" }).regex(AWS_REGION, {
            message: "is not an AWS region. Fix: use a region code such as 'eu-west-1' or 'us-east-2'",
        }),
        kubernetesVersion: z.enum(EKS_VERSIONS, {
            message: `is not a Kubernetes version EKS supports. Fix: use one of ${EKS_VERSIONS.join(", ")}`,
        }),
        zones: z
            .array(z.string())
            .min(2, { message: "needs at least two availability zones; EKS requires subnets in two. Fix: e.g. ['a', 'b']" })
            .max(6)
            .default(["a", "b"])
            .refine((zs) => new Set(zs).size === zs.length, { message: "lists a zone twice. Fix: remove the duplicate" }),
        vpcCidr: cidr
            .refine((c) => c.endsWith("/16"), {
                message: "must be a /16: the subnet layout carves six /19 private and six /22 public subnets from it. Fix: e.g. '10.20.0.0/16'",
            })
            .default("10.0.0.0/16"),
        natGateways: z.enum(["perZone", "single"]).default("single"),
        nodeGroup: z
            .object({
                instanceTypes: z
                    .array(z.string().regex(INSTANCE_TYPE, { message: "is not an EC2 instance type. Fix: e.g. 't3.medium'" }))
                    .min(1)
                    .default(["t3.medium"]),
                minSize: z.number().int().min(1, { message: "must be at least 1, or Flux cannot schedule. Fix: use 1 or more" }).default(1),
                desiredSize: z.number().int().default(2),
                maxSize: z.number().int().default(3),
                diskSize: z.number().int().min(20).max(1000).default(50),
            })
            .strict()
            .prefault({})
            .superRefine((g, ctx) => {
                if (g.minSize > g.maxSize) {
                    ctx.addIssue({ code: "custom", message: `minSize ${g.minSize} is above maxSize ${g.maxSize}. Fix: make minSize ≤ desiredSize ≤ maxSize` });
                } else if (g.desiredSize < g.minSize || g.desiredSize > g.maxSize) {
                    ctx.addIssue({
                        code: "custom",
                        message: `desiredSize ${g.desiredSize} is outside ${g.minSize}..${g.maxSize}. Fix: make minSize ≤ desiredSize ≤ maxSize`,
                    });
                }
            }),
        adminRoleArns: z
            .array(z.string().regex(IAM_ROLE_ARN, { message: "is not an IAM role ARN. Fix: e.g. 'arn:aws:iam::123456789012:role/platform-admin'" }), {
                message: "is required: with API authentication only listed roles can reach the cluster. Fix: list your admin role ARNs",
            })
            .min(1, { message: "is empty, so nobody could administer the cluster. Fix: list at least one admin role ARN" }),
        publicAccessCidrs: z
            .array(cidr, {
                message: "is required: the API endpoint is reachable only from these ranges. Fix: list your VPN or CI egress CIDRs",
            })
            .min(1, { message: "is empty, so `pulumi up` could not reach the API to install Flux. Fix: list your VPN or CI egress CIDRs" }),
        tags: z
            .record(z.string(), z.string())
            .default({})
            .refine((t) => Object.keys(t).every((k) => !k.toLowerCase().startsWith("aws:")), {
                message: "uses the reserved 'aws:' prefix. Fix: rename the tag",
            }),
    })
    .strict();

const clusterSchema = z.discriminatedUnion("backend", [kindCluster, eksCluster], {
    error: (issue) =>
        isObject(issue.input)
            ? "has an unknown backend. Fix: set cluster.backend to 'kind' or 'eks'"
            : "must be an object. Fix: e.g. '{ backend: kind, workers: 1 }'",
});

const fluxSchema = z
    .object({
        operatorVersion: exactVersion(DEFAULTS.fluxOperatorVersion).default(DEFAULTS.fluxOperatorVersion),
        version: z
            .string()
            .refine((v) => semver.validRange(v.replace(/,/g, " ")) !== null, {
                message: "is not a valid version or semver range. Fix: e.g. '2.x', '2.8.x' or '2.8.8'",
            })
            .default(DEFAULTS.fluxVersion),
        registry: z
            .string()
            .regex(REGISTRY, { message: "must be a registry path without a scheme. Fix: e.g. 'ghcr.io/fluxcd'" })
            .default(DEFAULTS.fluxRegistry),
        components: z
            .array(z.enum(FLUX_COMPONENTS))
            .default([...DEFAULTS.fluxComponents])
            .refine((cs) => new Set(cs).size === cs.length, {
                message: "lists a controller twice. Fix: remove the duplicate",
            })
            .refine((cs) => cs.includes("source-controller") && cs.includes("kustomize-controller"), {
                message: "must include source-controller and kustomize-controller, which the root sync needs. Fix: add them",
            }),
        syncInterval: z.string().regex(GO_DURATION, { message: "is not a duration. Fix: e.g. '1m' or '30s'" }).default(DEFAULTS.syncInterval),
    })
    .strict();

const syncSchema = z
    .object({
        url: z.string({ message: "is required. Fix: set the HTTPS URL of this Git repository" }),
        branch: z.string().default(DEFAULTS.syncBranch),
        path: z.string().optional(),
        username: z.string().min(1).default(DEFAULTS.gitUsername),
    })
    .strict();

const platformRepositorySchema = z.discriminatedUnion(
    "type",
    [
        z
            .object({
                type: z.literal("git"),
                url: z.string(),
                username: z.string().min(1).default(DEFAULTS.gitUsername),
            })
            .strict(),
        z
            .object({
                type: z.literal("oci"),
                server: z.string().regex(HOSTNAME, {
                    message: "must be a registry host name without a scheme. Fix: e.g. 'registry.gitlab.com'",
                }),
                url: z.string(),
                username: z.string({ message: "is required for a registry login. Fix: set your registry user name" }),
            })
            .strict(),
    ],
    {
        error: (issue) =>
            isObject(issue.input)
                ? "has an unknown type. Fix: set platformRepository.type to 'git' or 'oci'"
                : "must be an object. Fix: e.g. '{ type: git, url: https://... }'",
    },
);

/** The stack config as stored: one entry per key of the `gitops-platform` namespace. */
const stackSchema = z
    .object({
        environment: z
            .string({ message: "is required. Fix: set it to development, staging, production or a sandbox name" })
            .pipe(dnsLabel("environment name", 50)),
        cluster: clusterSchema,
        flux: fluxSchema.prefault({}),
        sync: syncSchema,
        platformRepository: platformRepositorySchema,
        token: z.string().min(1).optional(),
        protect: z.boolean().default(false),
        alerts: z
            .object({
                type: z.enum(["slack", "msteams", "generic"], {
                    message: "is not a notification channel this program sets up. Fix: use slack, msteams or generic",
                }),
                channel: z.string().min(1).optional(),
                severity: z.enum(["error", "info"]).default("error"),
            })
            .strict()
            .refine((a) => a.type === "slack" || a.channel === undefined, {
                message: "only applies to Slack. Fix: remove it",
                path: ["channel"],
            })
            .optional(),
        alertWebhookUrl: z.string().min(1).optional(),
        sandbox: z
            .object({
                source: z.string().min(1),
                createdAt: z.iso.datetime({ message: "must be an ISO 8601 time. Fix: e.g. '2026-11-24T18:00:00Z'" }),
                ttl: z.string().regex(TTL, { message: "is not a duration. Fix: e.g. '8h' or '3d'" }).optional(),
            })
            .strict()
            .optional(),
    })
    .strict();

type StackConfig = z.infer<typeof stackSchema>;

// --- the typed result ---------------------------------------------------------------------------

export type KindClusterConfig = z.infer<typeof kindCluster> & { name: string };
/** EKS settings; `zones` are full zone names (the region plus the suffix given in config). */
export type EksClusterConfig = z.infer<typeof eksCluster> & { name: string };
export type ClusterConfig = KindClusterConfig | EksClusterConfig;
export type FluxConfig = z.infer<typeof fluxSchema>;
export type PlatformRepositoryConfig = z.infer<typeof platformRepositorySchema>;

/** The root sync: what the FluxInstance pulls, from which branch, at which path. */
export interface SyncConfig {
    url: string;
    branch: string;
    /** Relative to the repository root, without a leading `./`. */
    path: string;
    username: string;
}

export interface AlertsConfig {
    type: "slack" | "msteams" | "generic";
    channel?: string;
    severity: "error" | "info";
    /** Secret: the webhook URL is the credential. */
    webhookUrl: pulumi.Output<string>;
    /** Namespaces holding the HelmReleases this environment syncs. */
    helmReleaseNamespaces: string[];
}

/** Everything one stack declares, validated. Components take slices of this, never `pulumi.Config`. */
export interface EnvironmentConfig {
    stack: string;
    /** The stack file, relative to the repository root, for messages. */
    stackFile: string;
    environment: string;
    tier: Tier;
    cluster: ClusterConfig;
    flux: FluxConfig;
    sync: SyncConfig;
    platformRepository: PlatformRepositoryConfig;
    /** How `clusters/<environment>` pulls the platform: decides the type of the platform secret. */
    platformSourceKind: PlatformSourceKind;
    /** The Git/registry token; secret from the moment it is read. */
    token: pulumi.Output<string>;
    protect: boolean;
    /** Where failed reconciliations are reported, when configured. */
    alerts?: AlertsConfig;
    /** Set on sandboxes forked by `npm run sandbox -- fork`: where from, when, and for how long. */
    sandbox?: { source: string; createdAt: string; ttl?: string };
}

// --- errors -------------------------------------------------------------------------------------

export interface ConfigProblem {
    /** The full config key, e.g. `gitops-platform:cluster.workers`. */
    key: string;
    /** What is wrong and how to fix it. */
    message: string;
}

/** Every problem in one stack's config, reported together. A RunError so Pulumi prints no stack trace. */
export class ConfigError extends pulumi.RunError {
    constructor(
        readonly stackFile: string,
        readonly problems: ConfigProblem[],
    ) {
        super(
            `${stackFile} has ${problems.length} config problem${problems.length === 1 ? "" : "s"}:\n` +
                problems.map((p) => `  - ${p.key}: ${p.message}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

// --- parsing ------------------------------------------------------------------------------------

export interface ParseContext {
    stack: string;
    /** Where `clusters/` lives. @default the repository root */
    repoRoot?: string;
    /** Environment variables, for the token fallback. @default {} */
    env?: Record<string, string | undefined>;
    /** The stack file's text, to catch a token committed in plain text. @default not checked */
    stackFileText?: string;
}

const SECRET_KEYS = ["token", "alertWebhookUrl"] as const;

/**
 * Parses the config the Pulumi CLI hands the program (`project:key` to string, objects as JSON)
 * into an `EnvironmentConfig`, or throws one `ConfigError` listing every problem.
 */
export function parseConfig(raw: Record<string, string>, ctx: ParseContext): EnvironmentConfig {
    const stackFile = `stacks/Pulumi.${ctx.stack}.yaml`;
    const repoRoot = ctx.repoRoot ?? REPO_ROOT;
    const problems: ConfigProblem[] = [];
    const report = (key: string, message: string) => problems.push({ key: `${PROJECT}:${key}`, message });

    const values: Record<string, unknown> = {};
    for (const [fullKey, text] of Object.entries(raw)) {
        const [namespace, key] = splitKey(fullKey);
        if (namespace !== PROJECT) continue;
        values[key] = decode(text);
    }

    for (const key of SECRET_KEYS) {
        if (storedInPlainText(ctx.stackFileText, key)) {
            report(
                key,
                `is stored in plain text in ${stackFile}. Fix: remove it from the file and run ` +
                    `'pulumi config set --secret ${key} <value> -s ${ctx.stack}'`,
            );
        }
    }

    const parsed = stackSchema.safeParse(values);
    if (!parsed.success) {
        for (const issue of parsed.error.issues) {
            for (const key of issueKeys(issue)) report(key, withFix(issue.message));
        }
        throw new ConfigError(stackFile, problems);
    }
    const config = parsed.data;
    const tier: Tier = (ENVIRONMENTS as readonly string[]).includes(config.environment) ? (config.environment as Tier) : "sandbox";

    const sync = checkSync(config, report, repoRoot);
    const platformSource = sync ? checkPlatformSource(config, sync.path, report, repoRoot) : undefined;
    checkProduction(config, tier, report, ctx.stack);
    checkEks(config, tier, report);
    const alerts = sync ? checkAlerts(config, sync.path, report, repoRoot, ctx.stack) : undefined;

    const tokenValue = config.token ?? ctx.env?.[DEFAULTS.tokenEnvVar];
    if (!tokenValue) {
        report(
            "token",
            `is not set, and neither is ${DEFAULTS.tokenEnvVar}. Fix: run ` +
                `'pulumi config set --secret token <token> -s ${ctx.stack}' or export ${DEFAULTS.tokenEnvVar}`,
        );
    }

    if (problems.length > 0 || !sync || !platformSource || !tokenValue) {
        throw new ConfigError(stackFile, problems);
    }
    return {
        stack: ctx.stack,
        stackFile,
        environment: config.environment,
        tier,
        cluster: clusterConfig(config),
        flux: config.flux,
        sync,
        platformRepository: config.platformRepository,
        platformSourceKind: platformSource,
        token: pulumi.secret(tokenValue),
        protect: config.protect,
        alerts,
        sandbox: config.sandbox,
    };
}

function checkAlerts(config: StackConfig, syncPath: string, report: Report, repoRoot: string, stack: string): AlertsConfig | undefined {
    if (!config.alerts) {
        if (config.alertWebhookUrl) report("alertWebhookUrl", "is set, but alerts is not, so nothing would use it. Fix: set alerts or remove alertWebhookUrl");
        return undefined;
    }
    const url = config.alertWebhookUrl;
    if (!url) {
        report("alertWebhookUrl", `is required when alerts is set. Fix: 'pulumi config set --secret alertWebhookUrl <url> -s ${stack}'`);
        return undefined;
    }
    // The URL is a credential: messages never quote it.
    if (!/^https:\/\/[^\s/]+/.test(url)) {
        report("alertWebhookUrl", "is not an https:// URL. Fix: paste the webhook URL your Slack, Teams or receiver gave you");
        return undefined;
    }
    const helmReleaseNamespaces = [
        ...new Set(
            syncedManifests(repoRoot, syncPath)
                .filter((l) => l.manifest.kind === "HelmRelease" && l.manifest.metadata?.namespace)
                .map((l) => l.manifest.metadata!.namespace!),
        ),
    ].sort();
    return { ...config.alerts, webhookUrl: pulumi.secret(url), helmReleaseNamespaces };
}

type Report = (key: string, message: string) => void;

function clusterConfig(config: StackConfig): ClusterConfig {
    const name = config.cluster.name ?? config.environment;
    if (config.cluster.backend === "kind") return { ...config.cluster, name };
    const region = config.cluster.region;
    return { ...config.cluster, name, zones: config.cluster.zones.map((z) => (z.length <= 2 ? `${region}${z}` : z)) };
}

function checkEks(config: StackConfig, tier: Tier, report: Report): void {
    const cluster = config.cluster;
    if (cluster.backend !== "eks") return;
    cluster.zones.forEach((zone, i) => {
        if (zone.length > 2 && !zone.startsWith(cluster.region)) {
            report(`cluster.zones.${i}`, `'${zone}' is not in ${cluster.region}. Fix: give the zone suffix, e.g. 'a', or a zone of ${cluster.region}`);
        } else if (!/^([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d)?[a-z]$/.test(zone)) {
            report(`cluster.zones.${i}`, `'${zone}' is not an availability zone. Fix: e.g. 'a' or '${cluster.region}a'`);
        }
    });
    if (tier !== "production") return;
    if (cluster.natGateways !== "perZone") {
        report("cluster.natGateways", "is 'single', so one zone failing cuts every node off. Fix: use 'perZone' in production");
    }
    cluster.publicAccessCidrs.forEach((c, i) => {
        if (c.endsWith("/0")) {
            report(`cluster.publicAccessCidrs.${i}`, `'${c}' opens the production API endpoint to the whole internet. Fix: list your VPN or CI egress CIDRs`);
        }
    });
    if (cluster.nodeGroup.minSize < 2) {
        report("cluster.nodeGroup.minSize", "is below 2, so production rides on a single node. Fix: use 2 or more");
    }
}

function checkSync(config: StackConfig, report: Report, repoRoot: string): SyncConfig | undefined {
    let ok = true;
    const urlProblem = httpsUrlProblem(config.sync.url);
    if (urlProblem) {
        report("sync.url", urlProblem);
        ok = false;
    }
    const branchProblem = gitBranchProblem(config.sync.branch);
    if (branchProblem) {
        report("sync.branch", branchProblem);
        ok = false;
    }
    const syncPath = normaliseRepoPath(config.sync.path ?? `clusters/${config.environment}`);
    if (path.isAbsolute(syncPath) || syncPath.split("/").includes("..")) {
        report("sync.path", `'${config.sync.path}' leaves the repository. Fix: use a path like 'clusters/${config.environment}'`);
        return undefined;
    }
    if (!fs.existsSync(path.join(repoRoot, syncPath)) || !fs.statSync(path.join(repoRoot, syncPath)).isDirectory()) {
        report(
            "sync.path",
            `'${syncPath}' is not a folder in this repository, so Flux would sync nothing. ` +
                `Fix: create it (copy clusters/development) or point sync.path at an existing cluster folder`,
        );
        return undefined;
    }
    return ok ? { url: config.sync.url, branch: config.sync.branch, path: syncPath, username: config.sync.username } : undefined;
}

function checkPlatformSource(config: StackConfig, syncPath: string, report: Report, repoRoot: string): PlatformSourceKind | undefined {
    const repo = config.platformRepository;
    let source;
    try {
        source = findPlatformSource(repoRoot, syncPath);
    } catch (e) {
        report("sync.path", `${(e as Error).message}. Fix: repair the YAML`);
        return undefined;
    }
    if (!source) {
        report(
            "sync.path",
            `'${syncPath}' declares no GitRepository or OCIRepository named 'platform'. ` + `Fix: add platform.yaml (see clusters/development)`,
        );
        return undefined;
    }
    const expected = repo.type === "git" ? "GitRepository" : "OCIRepository";
    if (source.kind !== expected) {
        const want = source.kind === "GitRepository" ? "git" : "oci";
        report(
            "platformRepository.type",
            `is '${repo.type}' but ${source.file} pulls the platform from an ${source.kind}, ` +
                `so Flux could not use the secret. Fix: set platformRepository.type to '${want}'`,
        );
        return undefined;
    }
    if (repo.type === "git") {
        const problem = httpsUrlProblem(repo.url);
        if (problem) report("platformRepository.url", problem);
        else if (stripGitSuffix(repo.url) !== stripGitSuffix(source.url)) {
            report("platformRepository.url", `is ${repo.url} but ${source.file} pulls ${source.url}. Fix: make them the same`);
        }
    } else {
        if (!repo.url.startsWith("oci://")) {
            report("platformRepository.url", `must start with oci://. Fix: e.g. 'oci://${repo.server}/group/project/platform'`);
        } else if (!repo.url.startsWith(`oci://${repo.server}/`)) {
            report("platformRepository.url", `is not on the registry ${repo.server}. Fix: make server the host of url`);
        } else if (repo.url !== source.url) {
            report("platformRepository.url", `is ${repo.url} but ${source.file} pulls ${source.url}. Fix: make them the same`);
        }
    }
    return source.kind;
}

function checkProduction(config: StackConfig, tier: Tier, report: Report, stack: string): void {
    if (config.sandbox && tier !== "sandbox") {
        report("sandbox", `marks a sandbox, but '${config.environment}' is a long-lived environment. Fix: remove the sandbox key`);
    }
    if (tier !== "production") return;
    if (semver.valid(config.flux.version) === null) {
        report(
            "flux.version",
            `is the range '${config.flux.version}', but production runs one known Flux version. ` + `Fix: pin an exact version, e.g. '2.8.8'`,
        );
    }
    if (!config.protect) {
        report(
            "protect",
            `must be true in production so 'pulumi destroy' cannot remove the cluster or Flux. ` + `Fix: 'pulumi config set protect true -s ${stack}'`,
        );
    }
}

// --- small pure helpers, exported for tests -----------------------------------------------------

/** Why a URL cannot carry our token, or undefined when it can. */
export function httpsUrlProblem(url: string): string | undefined {
    if (/^(ssh:\/\/|[\w.-]+@[\w.-]+:)/.test(url)) {
        return `'${url}' is an SSH URL, but Flux authenticates here with a token over HTTPS. Fix: use the https:// URL of the repository`;
    }
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        return `'${url}' is not a URL. Fix: use e.g. 'https://gitlab.com/group/project.git'`;
    }
    if (parsed.protocol !== "https:") {
        return `'${url}' is not https, and the token must not cross the network in clear text. Fix: use https://`;
    }
    if (parsed.username || parsed.password) {
        return `'${url}' embeds credentials. Fix: remove them from the URL; the token comes from the 'token' key`;
    }
    return undefined;
}

/** Why a name is not a usable Git branch (the rules of `git check-ref-format --branch`), or undefined. */
export function gitBranchProblem(branch: string): string | undefined {
    const fix = "Fix: use a branch name like 'main' or 'feature/sandbox-a'";
    if (branch.length === 0) return `is empty. ${fix}`;
    if (branch.startsWith("refs/")) return `'${branch}' is a full ref. Fix: give the branch name alone, e.g. 'main'`;
    if (/\s/.test(branch)) return `'${branch}' contains white space. ${fix}`;
    // oxlint-disable-next-line no-control-regex -- control characters are exactly what Git forbids here
    if (/[~^:?*[\\\x00-\x1f\x7f]/.test(branch)) return `'${branch}' contains a character Git forbids in ref names. ${fix}`;
    if (branch.includes("..") || branch.includes("@{") || branch.includes("//")) {
        return `'${branch}' contains '..', '@{' or '//', which Git forbids. ${fix}`;
    }
    if (/^[-/.]|[/.]$|\.lock$|\/\./.test(branch) || branch === "@") {
        return `'${branch}' starts or ends in a way Git forbids. ${fix}`;
    }
    return undefined;
}

/** Why a string is not an IPv4 CIDR block with its host bits clear, or undefined. */
export function cidrProblem(value: string): string | undefined {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
    const octets = m ? m.slice(1, 5).map(Number) : [];
    const prefix = m ? Number(m[5]) : -1;
    if (!m || octets.some((o) => o > 255) || prefix > 32) {
        return `'${value}' is not an IPv4 CIDR block. Fix: e.g. '203.0.113.0/24'`;
    }
    const address = octets.reduce((a, o) => a * 256 + o, 0);
    const size = 2 ** (32 - prefix);
    if (address % size !== 0) {
        const network = address - (address % size);
        const text = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join(".");
        return `'${value}' has host bits set. Fix: use '${text}/${prefix}'`;
    }
    return undefined;
}

function stripGitSuffix(url: string): string {
    return url.replace(/\.git$/, "").replace(/\/$/, "");
}

function splitKey(fullKey: string): [string, string] {
    const i = fullKey.indexOf(":");
    return i < 0 ? ["", fullKey] : [fullKey.slice(0, i), fullKey.slice(i + 1)];
}

/** The CLI passes every value as a string; objects, arrays, numbers and booleans as JSON. */
function decode(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

function storedInPlainText(stackFileText: string | undefined, key: string): boolean {
    if (!stackFileText) return false;
    const doc = parseYaml(stackFileText) as { config?: Record<string, unknown> } | null;
    return typeof doc?.config?.[`${PROJECT}:${key}`] === "string";
}

/** The dotted key(s) a zod issue is about; unknown keys are reported one by one. */
function issueKeys(issue: z.core.$ZodIssue): string[] {
    const base = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
        return issue.keys.map((k) => (base ? `${base}.${k}` : k));
    }
    return [base || "(root)"];
}

function withFix(message: string): string {
    if (message.includes("Fix:")) return message;
    if (message.startsWith("Unrecognized key")) return "is not a known key. Fix: check the spelling against Pulumi.yaml, or remove it";
    if (message.includes("received undefined")) return "is required. Fix: set it (see its documentation in Pulumi.yaml)";
    return `${message}. Fix: see the key's documentation in Pulumi.yaml`;
}

/** Reads this stack's config the way the CLI handed it over, once. */
export function loadConfig(): EnvironmentConfig {
    const stack = pulumi.getStack();
    const stackFilePath = path.join(REPO_ROOT, "stacks", `Pulumi.${stack}.yaml`);
    return parseConfig(pulumi.runtime.allConfig(), {
        stack,
        env: process.env,
        stackFileText: fs.existsSync(stackFilePath) ? fs.readFileSync(stackFilePath, "utf8") : undefined,
    });
}
