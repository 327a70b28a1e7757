import type * as pulumi from "@pulumi/pulumi";
import * as semver from "semver";
import { isIP } from "net";
import { z } from "zod";
import { FLUX_COMPONENTS, FLUX_DEFAULTS } from "../../components/flux-bootstrap";
import type { FluxObjectRef, PlatformSourceKind } from "../../lib/gitops-tree";
import {
    DEFAULT_BRANCH,
    DEFAULT_FLUX_VERSION,
    DEFAULT_OPERATOR_VERSION,
    DEFAULT_SANDBOX_TTL,
    KIND_CLUSTER_DEFAULTS,
    type Tier,
    TOKEN_ENV_VAR,
} from "../../lib/project";
import { fluxVersionProblem } from "../../lib/flux-apis";
import { cidrProblem, DNS_LABEL, durationSeconds, httpsUrlProblem, TTL } from "../../lib/validators";

// What a stack's config may say: the zod schema of the `gitops-platform:` namespace with its defaults,
// and the typed `EnvironmentConfig` the program works with once it is parsed and cross-checked.

/** Config defaults; those the components also apply come from the components. Pulumi.yaml documents them. */
export const DEFAULTS = {
    kindNodeImage: KIND_CLUSTER_DEFAULTS.nodeImage,
    controlPlaneNodes: KIND_CLUSTER_DEFAULTS.controlPlaneNodes,
    workers: KIND_CLUSTER_DEFAULTS.workers,
    fluxOperatorVersion: DEFAULT_OPERATOR_VERSION,
    fluxVersion: DEFAULT_FLUX_VERSION,
    fluxRegistry: FLUX_DEFAULTS.registry,
    fluxComponents: FLUX_DEFAULTS.components,
    syncInterval: FLUX_DEFAULTS.syncInterval,
    fluxReadyTimeout: FLUX_DEFAULTS.readyTimeout,
    sandboxTtl: DEFAULT_SANDBOX_TTL,
    syncBranch: DEFAULT_BRANCH,
    gitUsername: FLUX_DEFAULTS.username,
    tokenEnvVar: TOKEN_ENV_VAR,
} as const;

// --- the schema -------------------------------------------------------------------------------
// Messages say what is wrong and how to fix it; the key and the stack file are added when reported.

const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
/** The longest duration Go's time.Duration holds (int64 nanoseconds): what Flux and the operator parse these into. */
const GO_DURATION_MAX_SECONDS = 9_223_372_036; // whole seconds of (2^63 - 1) ns
const withinGoDuration = (d: string) => durationSeconds(d) <= GO_DURATION_MAX_SECONDS;
const GO_DURATION_TOO_LONG = "is longer than Go's time.Duration holds (about 292 years), so Flux could not parse it. Fix: e.g. '1h'";
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
        listenAddress: z
            .string()
            .refine((a) => isIP(a) !== 0, { message: "is not an IP address. Fix: e.g. '127.0.0.1' (this machine only) or '0.0.0.0'" })
            .optional(),
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
            .max(3, { message: "is more control-plane nodes than a laptop runs, or etcd needs. Fix: use 1 or 3" })
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
        apiServer: z
            .object({
                listenAddress: z.string().refine((a) => isIP(a) !== 0, { message: "is not an IP address. Fix: e.g. '0.0.0.0'" }),
                host: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { message: "is not a host name. Fix: e.g. 'docker'" }),
            })
            .strict()
            .optional(),
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
/** EKS's quota of nodes per managed node group (AWS "Amazon EKS service quotas": 450, adjustable on request). */
const NODES_PER_GROUP = 450;
const NODES_TOO_MANY = {
    message: `is more than the ${NODES_PER_GROUP} nodes EKS allows in one managed node group. Fix: at most ${NODES_PER_GROUP}, or ask AWS to raise the quota`,
};
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
        // EKS bills extended support for a version past its standard support, and picks it by default.
        supportType: z
            .enum(["STANDARD", "EXTENDED"], { message: "is not an EKS support type. Fix: use STANDARD (upgrade in time) or EXTENDED (paid)" })
            .default("STANDARD"),
        nodeGroup: z
            .object({
                instanceTypes: z
                    .array(z.string().regex(INSTANCE_TYPE, { message: "is not an EC2 instance type. Fix: e.g. 't3.medium'" }))
                    .min(1)
                    .default(["t3.medium"]),
                minSize: z
                    .number()
                    .int()
                    .min(1, { message: "must be at least 1, or Flux cannot schedule. Fix: use 1 or more" })
                    .max(NODES_PER_GROUP, NODES_TOO_MANY)
                    .default(1),
                desiredSize: z.number().int().max(NODES_PER_GROUP, NODES_TOO_MANY).default(2),
                maxSize: z.number().int().max(NODES_PER_GROUP, NODES_TOO_MANY).default(3),
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
        deployRoleArn: z
            .string({
                message:
                    "is required: EKS makes the role that creates the cluster an administrator by itself, so the stack names it. Fix: set the IAM role `pulumi up` runs as, e.g. 'arn:aws:iam::123456789012:role/platform-deployer'",
            })
            .regex(IAM_ROLE_ARN, { message: "is not an IAM role ARN. Fix: e.g. 'arn:aws:iam::123456789012:role/platform-deployer'" }),
        adminRoleArns: z
            .array(z.string().regex(IAM_ROLE_ARN, { message: "is not an IAM role ARN. Fix: e.g. 'arn:aws:iam::123456789012:role/platform-admin'" }), {
                message: "is required: with API authentication only listed roles can reach the cluster. Fix: list your admin role ARNs",
            })
            .min(1, { message: "is empty, so nobody could administer the cluster. Fix: list at least one admin role ARN" }),
        viewerRoleArns: z
            .array(z.string().regex(IAM_ROLE_ARN, { message: "is not an IAM role ARN. Fix: e.g. 'arn:aws:iam::123456789012:role/platform-previewer'" }))
            .default([]),
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
            .superRefine((v, ctx) => {
                const problem = fluxVersionProblem(v);
                if (problem) ctx.addIssue({ code: "custom", message: problem });
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
        syncInterval: z
            .string()
            .regex(GO_DURATION, { message: "is not a duration. Fix: e.g. '1m' or '30s'" })
            .refine((d) => /[1-9]/.test(d), { message: "is zero, so Flux would pull without pause. Fix: e.g. '1m'" })
            .refine(withinGoDuration, { message: GO_DURATION_TOO_LONG })
            .default(DEFAULTS.syncInterval),
        readyTimeout: z
            .string()
            .regex(GO_DURATION, { message: "is not a duration. Fix: e.g. '10m', or '0s' not to wait for Flux" })
            .refine(withinGoDuration, { message: GO_DURATION_TOO_LONG })
            .default(DEFAULTS.fluxReadyTimeout),
    })
    .strict();

/** An HTTPS Git URL, judged with the schema so its problem is reported with every other one. */
const httpsGitUrl = (required?: string) =>
    z.string(required ? { message: required } : undefined).superRefine((url, ctx) => {
        const problem = httpsUrlProblem(url);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
    });

const syncSchema = z
    .object({
        url: httpsGitUrl("is required. Fix: set the HTTPS URL of this Git repository"),
        branch: z.string().default(DEFAULTS.syncBranch),
        commit: z
            .string()
            .regex(/^[0-9a-f]{40}$/, { message: "is not a full commit SHA. Fix: use the 40 hex digits `git rev-parse HEAD` prints" })
            .optional(),
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
                url: httpsGitUrl(),
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
export const stackSchema = z
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
                // Every sandbox has a lifetime, so `npm run sandbox -- expire` can find the forgotten ones.
                ttl: z
                    .string()
                    .regex(TTL, { message: "is not a duration. Fix: e.g. '8h' or '3d'" })
                    // Its consumer writes the expiry as a date (cluster.tags.expires): a year is already more than a sandbox is for.
                    .refine((t) => !TTL.test(t) || Number(t.slice(0, -1)) * ({ m: 60, h: 3600, d: 86400 }[t.slice(-1)] ?? 0) <= 366 * 86400, {
                        message: "is longer than a year, and a sandbox is short-lived. Fix: e.g. '3d', or make it a long-lived environment",
                    })
                    .default(DEFAULTS.sandboxTtl),
                owner: z.string().min(1).optional(),
            })
            .strict()
            .optional(),
    })
    .strict();

export type StackConfig = z.infer<typeof stackSchema>;

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
    /** One commit of the branch to pin the root sync and the Git platform source to (the end-to-end test's). */
    commit?: string;
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
    /** Namespaces other than flux-system holding the sources this environment syncs. */
    sourceNamespaces: string[];
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
    /** The Flux objects the cluster folder declares that report Ready, causes first. */
    fluxObjects: FluxObjectRef[];
    /** The Git/registry token; secret from the moment it is read. */
    token: pulumi.Output<string>;
    protect: boolean;
    /** Where failed reconciliations are reported, when configured. */
    alerts?: AlertsConfig;
    /** Set on sandboxes forked by `npm run sandbox -- fork`: where from, when, and for how long. */
    sandbox?: { source: string; createdAt: string; ttl: string; owner?: string };
}
