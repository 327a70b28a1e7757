import { describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { REPO_ROOT } from "../../lib/project";
import { gitBranchProblem, httpsUrlProblem } from "../../lib/validators";
import { handedOver } from "../../test/support/cli-config";
import { ConfigError, DEFAULTS, parseConfig, type ParseContext } from ".";

const REPO_URL = "https://gitlab.com/gitops-platform/gitops-platform.git";
const OCI_URL = "oci://registry.gitlab.com/gitops-platform/gitops-platform/platform";

/** A valid development stack, as plain values; tests change one thing at a time. */
function development(): Record<string, unknown> {
    return {
        environment: "development",
        cluster: { backend: "kind", workers: 1 },
        sync: { url: REPO_URL },
        platformRepository: { type: "git", url: REPO_URL },
        token: "a-token",
    };
}

function production(): Record<string, unknown> {
    return {
        environment: "production",
        cluster: { backend: "kind" },
        flux: { version: "2.8.8" },
        sync: { url: REPO_URL },
        platformRepository: { type: "oci", server: "registry.gitlab.com", url: OCI_URL, username: "reader" },
        token: "a-token",
        protect: true,
    };
}

/** The map the CLI hands the program: namespaced keys, every value a string. */
function cli(values: Record<string, unknown>): Record<string, string> {
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) {
        if (v !== undefined) raw[`gitops-platform:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return raw;
}

function parse(values: Record<string, unknown>, stack = "dev", extra: { env?: Record<string, string>; stackFileText?: string } = {}) {
    return parseConfig(cli(values), { stack, env: extra.env ?? {}, stackFileText: extra.stackFileText });
}

/** The problems reported for a config, as `key: message` lines. */
function problems(values: Record<string, unknown>, stack = "dev", extra = {}): string[] {
    let error: unknown;
    try {
        parse(values, stack, extra);
    } catch (e) {
        error = e;
    }
    if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${error instanceof Error ? error.message : "none"}`);
    return error.problems.map((p) => `${p.key}: ${p.message}`);
}

function withKey(base: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
    const next = structuredClone(base);
    const parts = key.split(".");
    const last = parts.pop() ?? key;
    let node = next as Record<string, unknown>;
    for (const p of parts) node = (node[p] ??= {}) as Record<string, unknown>;
    node[last] = value;
    return next;
}

describe("valid stack config", () => {
    it("fills in the documented defaults", () => {
        const config = parse(development());
        expect(config).toMatchObject({
            stack: "dev",
            stackFile: "stacks/Pulumi.dev.yaml",
            environment: "development",
            tier: "development",
            cluster: {
                backend: "kind",
                name: "development",
                nodeImage: "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
                controlPlaneNodes: 1,
                workers: 1,
                portMappings: [],
            },
            flux: {
                operatorVersion: "0.58.0",
                version: "2.x",
                registry: "ghcr.io/fluxcd",
                components: ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"],
                syncInterval: "1m",
            },
            sync: { url: REPO_URL, branch: "main", path: "clusters/development", username: "git" },
            platformRepository: { type: "git", url: REPO_URL, username: "git" },
            platformSourceKind: "GitRepository",
            protect: false,
        });
    });

    /** A repository with a sandbox's own cluster folder, as `npm run sandbox -- fork` makes it. */
    const withSandboxFolder = () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-config-sandbox-"));
        fs.cpSync(path.join(REPO_ROOT, "clusters", "development"), path.join(root, "clusters", "sandbox-a"), { recursive: true });
        return root;
    };

    it("a sandbox always has a lifetime: seven days when its stack file names none", () => {
        const root = withSandboxFolder();
        try {
            const config = parseConfig(
                cli({ ...development(), environment: "sandbox-a", sandbox: { source: "development", createdAt: "2026-11-24T18:00:00Z" } }),
                { stack: "dev", repoRoot: root },
            );
            expect(config.sandbox).toEqual({ source: "development", createdAt: "2026-11-24T18:00:00Z", ttl: "7d" });
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("a name outside the three environments is a sandbox", () => {
        const root = withSandboxFolder();
        try {
            const config = parseConfig(cli({ ...development(), environment: "sandbox-a" }), { stack: "dev", repoRoot: root });
            expect(config.tier).toBe("sandbox");
            expect(config.cluster.name).toBe("sandbox-a");
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("normalises a ./ sync path the way Flux reads it", () => {
        const config = parse(withKey(development(), "sync", { url: REPO_URL, path: "./clusters/development/" }));
        expect(config.sync.path).toBe("clusters/development");
    });

    it("production with a pinned Flux and protect is accepted", () => {
        const config = parse(production(), "production");
        expect(config.flux.version).toBe("2.8.8");
        expect(config.protect).toBe(true);
        expect(config.platformSourceKind).toBe("OCIRepository");
    });

    it("falls back to GITLAB_TOKEN and keeps it secret", async () => {
        const config = parse({ ...development(), token: undefined }, "dev", { env: { GITLAB_TOKEN: "from-env" } });
        expect(await pulumi.isSecret(config.token)).toBe(true);
    });

    it("the config token wins over GITLAB_TOKEN", async () => {
        const config = parse(development(), "dev", { env: { GITLAB_TOKEN: "from-env" } });
        const value = await new Promise<string>((resolve) => config.token.apply(resolve));
        expect(value).toBe("a-token");
    });

    it("reads config keys of other namespaces as none of its business", () => {
        const raw = { ...cli(development()), "kubernetes:context": "whatever", "aws:region": "eu-west-1" };
        expect(() => parseConfig(raw, { stack: "dev", env: {} })).not.toThrow();
    });
});

describe("bad stack config is refused before any resource exists", () => {
    const file = "stacks/Pulumi.dev.yaml";

    it("reports every problem at once, naming the stack file", () => {
        const bad = { ...withKey(development(), "cluster.workers", -1), token: undefined, protect: "yes" };
        let error: ConfigError | undefined;
        try {
            parse(bad);
        } catch (e) {
            error = e as ConfigError;
        }
        expect(error?.problems.map((p) => p.key)).toEqual(["gitops-platform:cluster.workers", "gitops-platform:protect"]);
        expect(error?.message).toBe(
            `${file} has 2 config problems:\n` +
                "  - gitops-platform:cluster.workers: cannot be negative. Fix: use 0 to run workloads on the control plane\n" +
                "  - gitops-platform:protect: Invalid input: expected boolean, received string. Fix: see the key's documentation in Pulumi.yaml",
        );
    });

    it("reports semantic problems together too", () => {
        const bad = { ...production(), protect: false, flux: { version: "2.x" }, token: undefined };
        expect(problems(bad, "production")).toEqual([
            "gitops-platform:flux.version: is the range '2.x', but production runs one known Flux version. Fix: pin an exact version, e.g. '2.8.8'",
            "gitops-platform:protect: must be true in production so 'pulumi destroy' cannot remove the cluster or Flux. Fix: 'pulumi config set protect true -s production'",
            "gitops-platform:token: is not set, and neither is GITLAB_TOKEN. Fix: run 'pulumi config set --secret token <token> -s production' or export GITLAB_TOKEN",
        ]);
    });

    const cases: [string, Record<string, unknown>, string][] = [
        [
            "an unknown cluster backend",
            withKey(development(), "cluster.backend", "minikube"),
            "gitops-platform:cluster.backend: has an unknown backend. Fix: set cluster.backend to 'kind' or 'eks'",
        ],
        [
            "a missing environment",
            { ...development(), environment: undefined },
            "gitops-platform:environment: is required. Fix: set it to development, staging, production or a sandbox name",
        ],
        [
            "an environment name that is not a DNS label",
            { ...development(), environment: "Dev_1" },
            "gitops-platform:environment: must be a DNS-1123 label (lowercase letters, digits and '-'). Fix: e.g. 'sandbox-a'",
        ],
        [
            "a misspelt key",
            { ...development(), clsuter: { backend: "kind" } },
            "gitops-platform:clsuter: is not a known key. Fix: check the spelling against Pulumi.yaml, or remove it",
        ],
        [
            "a misspelt nested key",
            withKey(development(), "cluster.worker", 2),
            "gitops-platform:cluster.worker: is not a known key. Fix: check the spelling against Pulumi.yaml, or remove it",
        ],
        [
            "a cluster given as a string",
            { ...development(), cluster: "kind" },
            "gitops-platform:cluster: must be an object. Fix: e.g. '{ backend: kind, workers: 1 }'",
        ],
        [
            "a negative worker count",
            withKey(development(), "cluster.workers", -1),
            "gitops-platform:cluster.workers: cannot be negative. Fix: use 0 to run workloads on the control plane",
        ],
        [
            "an even number of control-plane nodes",
            withKey(development(), "cluster.controlPlaneNodes", 2),
            "gitops-platform:cluster.controlPlaneNodes: must be odd so etcd keeps quorum. Fix: use 1 or 3",
        ],
        [
            "a node image without a Kubernetes version",
            withKey(development(), "cluster.nodeImage", "kindest/node:latest"),
            "gitops-platform:cluster.nodeImage: must be a kindest/node image with a Kubernetes version tag. Fix: e.g. 'kindest/node:v1.35.0'",
        ],
        [
            "the same host port mapped twice",
            withKey(development(), "cluster.portMappings", [
                { containerPort: 80, hostPort: 8080 },
                { containerPort: 81, hostPort: 8080 },
            ]),
            "gitops-platform:cluster.portMappings: maps the same host port twice. Fix: give each mapping its own hostPort",
        ],
        [
            "a branch with spaces",
            withKey(development(), "sync.branch", "my branch"),
            "gitops-platform:sync.branch: 'my branch' contains white space. Fix: use a branch name like 'main' or 'feature/sandbox-a'",
        ],
        [
            "a full ref instead of a branch",
            withKey(development(), "sync.branch", "refs/heads/main"),
            "gitops-platform:sync.branch: 'refs/heads/main' is a full ref. Fix: give the branch name alone, e.g. 'main'",
        ],
        [
            "a plain-http sync URL",
            withKey(development(), "sync.url", "http://gitlab.com/gitops-platform/gitops-platform.git"),
            "gitops-platform:sync.url: 'http://gitlab.com/gitops-platform/gitops-platform.git' is not https, and the token must not cross the network in clear text. Fix: use https://",
        ],
        [
            "an SSH sync URL",
            withKey(development(), "sync.url", "git@gitlab.com:gitops-platform/gitops-platform.git"),
            "gitops-platform:sync.url: 'git@gitlab.com:gitops-platform/gitops-platform.git' is an SSH URL, but Flux authenticates here with a token over HTTPS. Fix: use the https:// URL of the repository",
        ],
        [
            "a sync URL with credentials in it",
            withKey(development(), "sync.url", "https://user:pw@gitlab.com/gitops-platform/gitops-platform.git"),
            "gitops-platform:sync.url: 'https://***@gitlab.com/gitops-platform/gitops-platform.git' embeds credentials. Fix: remove them from the URL; the token comes from the 'token' key",
        ],
        [
            "a sync path that does not exist in this repository",
            withKey(development(), "sync.path", "clusters/nowhere"),
            "gitops-platform:sync.path: 'clusters/nowhere' is not a folder in this repository, so Flux would sync nothing. Fix: create it (copy clusters/development) or point sync.path at an existing cluster folder",
        ],
        [
            "a sync path outside the repository",
            withKey(development(), "sync.path", "../elsewhere"),
            "gitops-platform:sync.path: '../elsewhere' leaves the repository. Fix: use a path like 'clusters/development'",
        ],
        [
            "a sandbox without its own cluster folder",
            { ...development(), environment: "sandbox-b" },
            "gitops-platform:sync.path: 'clusters/sandbox-b' is not a folder in this repository, so Flux would sync nothing. Fix: create it (copy clusters/development) or point sync.path at an existing cluster folder",
        ],
        [
            "an invalid Flux semver range",
            { ...development(), flux: { version: "two-point-x" } },
            "gitops-platform:flux.version: is not a valid version or semver range. Fix: e.g. '2.x', '2.8.x' or '2.8.8'",
        ],
        [
            "a floating operator chart version",
            { ...development(), flux: { operatorVersion: "latest" } },
            "gitops-platform:flux.operatorVersion: must be an exact version. Fix: e.g. '0.58.0'",
        ],
        [
            "an unknown Flux component",
            { ...development(), flux: { components: ["source-controller", "kustomize-controller", "image-controller"] } },
            'gitops-platform:flux.components.2: Invalid option: expected one of "source-controller"|"kustomize-controller"|"helm-controller"|"notification-controller"|"image-reflector-controller"|"image-automation-controller"|"source-watcher". Fix: see the key\'s documentation in Pulumi.yaml',
        ],
        [
            "components without the kustomize-controller the root sync needs",
            { ...development(), flux: { components: ["source-controller", "helm-controller"] } },
            "gitops-platform:flux.components: must include source-controller and kustomize-controller, which the root sync needs. Fix: add them",
        ],
        [
            "a sync interval that is not a duration",
            { ...development(), flux: { syncInterval: "1 minute" } },
            "gitops-platform:flux.syncInterval: is not a duration. Fix: e.g. '1m' or '30s'",
        ],
        [
            "a platform repository type that contradicts the cluster folder",
            { ...production(), platformRepository: { type: "git", url: REPO_URL } },
            "gitops-platform:platformRepository.type: is 'git' but clusters/production/platform.yaml pulls the platform from an OCIRepository, so Flux could not use the secret. Fix: set platformRepository.type to 'oci'",
        ],
        [
            "an unknown platform repository type",
            withKey(development(), "platformRepository.type", "s3"),
            "gitops-platform:platformRepository.type: has an unknown type. Fix: set platformRepository.type to 'git' or 'oci'",
        ],
        [
            "a registry server given with a scheme",
            withKey(production(), "platformRepository.server", "https://registry.gitlab.com"),
            "gitops-platform:platformRepository.server: must be a registry host name without a scheme. Fix: e.g. 'registry.gitlab.com'",
        ],
        [
            "an OCI URL on another registry than the server",
            withKey(production(), "platformRepository.url", "oci://ghcr.io/gitops-platform/platform"),
            "gitops-platform:platformRepository.url: is not on the registry registry.gitlab.com. Fix: make server the host of url",
        ],
        [
            "a platform Git URL other than the one the cluster folder pulls",
            withKey(development(), "platformRepository.url", "https://gitlab.com/someone/else.git"),
            `gitops-platform:platformRepository.url: is https://gitlab.com/someone/else.git but clusters/development/platform.yaml pulls ${REPO_URL}. Fix: make them the same`,
        ],
        [
            "a missing token",
            { ...development(), token: undefined },
            "gitops-platform:token: is not set, and neither is GITLAB_TOKEN. Fix: run 'pulumi config set --secret token <token> -s dev' or export GITLAB_TOKEN",
        ],
    ];

    it.each(cases)("refuses %s", (_what, values, expected) => {
        expect(problems(values)).toEqual([expected]);
    });

    it("refuses a token committed in plain text in the stack file", () => {
        const stackFileText = "config:\n  gitops-platform:environment: development\n  gitops-platform:token: a-token\n";
        expect(problems(development(), "dev", { stackFileText })).toEqual([
            "gitops-platform:token: is stored in plain text in stacks/Pulumi.dev.yaml. Fix: remove it from the file and run 'pulumi config set --secret token <value> -s dev'",
        ]);
    });

    it("accepts a token stored encrypted in the stack file", () => {
        const stackFileText = "config:\n  gitops-platform:token:\n    secure: AAABAJ1x\n";
        expect(() => parse(development(), "dev", { stackFileText })).not.toThrow();
    });
});

/** A valid EKS production stack. */
function eksProduction(): Record<string, unknown> {
    return {
        ...production(),
        cluster: {
            backend: "eks",
            region: "eu-west-1",
            kubernetesVersion: "1.35",
            zones: ["a", "b", "c"],
            natGateways: "perZone",
            nodeGroup: { minSize: 3, desiredSize: 3, maxSize: 6 },
            deployRoleArn: "arn:aws:iam::123456789012:role/platform-deployer",
            adminRoleArns: ["arn:aws:iam::123456789012:role/platform-admin"],
            publicAccessCidrs: ["203.0.113.0/24"],
        },
    };
}

function eksDevelopment(): Record<string, unknown> {
    const cluster = { ...(eksProduction().cluster as Record<string, unknown>), natGateways: "single", nodeGroup: {} };
    return { ...development(), cluster };
}

describe("EKS stack config", () => {
    it("fills in the EKS defaults and turns zone suffixes into zone names", () => {
        const config = parse(eksDevelopment());
        expect(config.cluster).toEqual({
            backend: "eks",
            name: "development",
            region: "eu-west-1",
            supportType: "STANDARD",
            kubernetesVersion: "1.35",
            zones: ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
            vpcCidr: "10.0.0.0/16",
            natGateways: "single",
            nodeGroup: { instanceTypes: ["t3.medium"], minSize: 1, desiredSize: 2, maxSize: 3, diskSize: 50 },
            deployRoleArn: "arn:aws:iam::123456789012:role/platform-deployer",
            adminRoleArns: ["arn:aws:iam::123456789012:role/platform-admin"],
            viewerRoleArns: [],
            publicAccessCidrs: ["203.0.113.0/24"],
            tags: {},
        });
    });

    it("accepts a production EKS cluster that meets the production rules", () => {
        expect(parse(eksProduction(), "production").cluster).toMatchObject({ natGateways: "perZone" });
    });

    const dev: [string, Record<string, unknown>, string][] = [
        [
            "a node group whose minimum is above its maximum",
            withKey(eksDevelopment(), "cluster.nodeGroup", { minSize: 4, desiredSize: 4, maxSize: 3 }),
            "gitops-platform:cluster.nodeGroup: minSize 4 is above maxSize 3. Fix: make minSize ≤ desiredSize ≤ maxSize",
        ],
        [
            "a desired size outside the node group's range",
            withKey(eksDevelopment(), "cluster.nodeGroup", { minSize: 1, desiredSize: 5, maxSize: 3 }),
            "gitops-platform:cluster.nodeGroup: desiredSize 5 is outside 1..3. Fix: make minSize ≤ desiredSize ≤ maxSize",
        ],
        [
            "a region that is not a region code",
            withKey(eksDevelopment(), "cluster.region", "Ireland"),
            "gitops-platform:cluster.region: is not an AWS region. Fix: use a region code such as 'eu-west-1' or 'us-east-2'",
        ],
        [
            "a Kubernetes version EKS does not support",
            withKey(eksDevelopment(), "cluster.kubernetesVersion", "1.25"),
            "gitops-platform:cluster.kubernetesVersion: is not a Kubernetes version EKS supports. Fix: use one of 1.32, 1.33, 1.34, 1.35, 1.36",
        ],
        [
            "no admin role",
            withKey(eksDevelopment(), "cluster.adminRoleArns", []),
            "gitops-platform:cluster.adminRoleArns: is empty, so nobody could administer the cluster. Fix: list at least one admin role ARN",
        ],
        [
            "a viewer role that is also an admin (one role, one access entry)",
            withKey(eksDevelopment(), "cluster.viewerRoleArns", ["arn:aws:iam::123456789012:role/platform-admin"]),
            "gitops-platform:cluster.viewerRoleArns.0: 'arn:aws:iam::123456789012:role/platform-admin' is also an admin role, and one role gets one access entry. Fix: remove it from viewerRoleArns",
        ],
        [
            "the deploy role listed as a viewer",
            withKey(eksDevelopment(), "cluster.viewerRoleArns", ["arn:aws:iam::123456789012:role/platform-deployer"]),
            "gitops-platform:cluster.viewerRoleArns.0: 'arn:aws:iam::123456789012:role/platform-deployer' is also the deploy role, and one role gets one access entry. Fix: remove it from viewerRoleArns",
        ],
        [
            "a viewer role listed twice",
            withKey(eksDevelopment(), "cluster.viewerRoleArns", ["arn:aws:iam::123456789012:role/v", "arn:aws:iam::123456789012:role/v"]),
            "gitops-platform:cluster.viewerRoleArns.1: 'arn:aws:iam::123456789012:role/v' is listed already. Fix: remove the duplicate",
        ],
        [
            "an admin that is a user, not a role",
            withKey(eksDevelopment(), "cluster.adminRoleArns", ["arn:aws:iam::123456789012:user/alice"]),
            "gitops-platform:cluster.adminRoleArns.0: is not an IAM role ARN. Fix: e.g. 'arn:aws:iam::123456789012:role/platform-admin'",
        ],
        [
            "no public access CIDRs",
            withKey(eksDevelopment(), "cluster.publicAccessCidrs", []),
            "gitops-platform:cluster.publicAccessCidrs: is empty, so `pulumi up` could not reach the API to install Flux. Fix: list your VPN or CI egress CIDRs",
        ],
        [
            "a CIDR with host bits set",
            withKey(eksDevelopment(), "cluster.publicAccessCidrs", ["203.0.113.7/24"]),
            "gitops-platform:cluster.publicAccessCidrs.0: '203.0.113.7/24' has host bits set. Fix: use '203.0.113.0/24'",
        ],
        [
            "something that is not a CIDR",
            withKey(eksDevelopment(), "cluster.publicAccessCidrs", ["10.0.0.0/33"]),
            "gitops-platform:cluster.publicAccessCidrs.0: '10.0.0.0/33' is not an IPv4 CIDR block. Fix: e.g. '203.0.113.0/24'",
        ],
        [
            "a VPC that is not a /16",
            withKey(eksDevelopment(), "cluster.vpcCidr", "10.0.0.0/20"),
            "gitops-platform:cluster.vpcCidr: must be a /16: the subnet layout carves six /19 private and six /22 public subnets from it. Fix: e.g. '10.20.0.0/16'",
        ],
        [
            "a single availability zone",
            withKey(eksDevelopment(), "cluster.zones", ["a"]),
            "gitops-platform:cluster.zones: needs at least two availability zones; EKS requires subnets in two. Fix: e.g. ['a', 'b']",
        ],
        [
            "a zone of another region",
            withKey(eksDevelopment(), "cluster.zones", ["a", "us-east-1b"]),
            "gitops-platform:cluster.zones.1: 'us-east-1b' is not in eu-west-1. Fix: give the zone suffix, e.g. 'a', or a zone of eu-west-1",
        ],
        [
            "an instance type that is not one",
            withKey(eksDevelopment(), "cluster.nodeGroup", { instanceTypes: ["big"] }),
            "gitops-platform:cluster.nodeGroup.instanceTypes.0: is not an EC2 instance type. Fix: e.g. 't3.medium'",
        ],
        [
            "a tag with the reserved aws: prefix",
            withKey(eksDevelopment(), "cluster.tags", { "aws:owner": "me" }),
            "gitops-platform:cluster.tags: uses the reserved 'aws:' prefix. Fix: rename the tag",
        ],
        [
            "an attempt to switch encryption off",
            withKey(eksDevelopment(), "cluster.encryption", false),
            "gitops-platform:cluster.encryption: is not a known key. Fix: check the spelling against Pulumi.yaml, or remove it",
        ],
        [
            "an attempt to give nodes public IPs",
            withKey(eksDevelopment(), "cluster.nodeAssociatePublicIpAddress", true),
            "gitops-platform:cluster.nodeAssociatePublicIpAddress: is not a known key. Fix: check the spelling against Pulumi.yaml, or remove it",
        ],
    ];
    it.each(dev)("refuses %s", (_what, values, expected) => {
        expect(problems(values)).toEqual([expected]);
    });

    const prod: [string, Record<string, unknown>, string][] = [
        [
            "a production API endpoint open to the whole internet",
            withKey(eksProduction(), "cluster.publicAccessCidrs", ["203.0.113.0/24", "0.0.0.0/0"]),
            "gitops-platform:cluster.publicAccessCidrs.1: '0.0.0.0/0' opens the production API endpoint to the whole internet. Fix: list your VPN or CI egress CIDRs",
        ],
        [
            "production behind a single NAT gateway",
            withKey(eksProduction(), "cluster.natGateways", "single"),
            "gitops-platform:cluster.natGateways: is 'single', so one zone failing cuts every node off. Fix: use 'perZone' in production",
        ],
        [
            "production on one node",
            withKey(eksProduction(), "cluster.nodeGroup", { minSize: 1, desiredSize: 1, maxSize: 1 }),
            "gitops-platform:cluster.nodeGroup.minSize: is below 2, so production rides on a single node. Fix: use 2 or more",
        ],
        [
            "unprotected production on EKS",
            { ...eksProduction(), protect: false },
            "gitops-platform:protect: must be true in production so 'pulumi destroy' cannot remove the cluster or Flux. Fix: 'pulumi config set protect true -s production'",
        ],
    ];
    it.each(prod)("refuses %s", (_what, values, expected) => {
        expect(problems(values, "production")).toEqual([expected]);
    });
});

describe("alerts", () => {
    const WEBHOOK = "https://hooks.example.com/planted-not-a-real-webhook";

    it("are off unless configured", () => {
        expect(parse(development()).alerts).toBeUndefined();
    });

    it("watch the HelmReleases of every namespace the environment syncs, with the webhook kept secret", async () => {
        const config = parse({ ...development(), alerts: { type: "slack", channel: "#platform" }, alertWebhookUrl: WEBHOOK });
        expect(config.alerts).toMatchObject({ type: "slack", channel: "#platform", severity: "error", helmReleaseNamespaces: ["cert-manager", "podinfo"] });
        expect(await pulumi.isSecret(config.alerts!.webhookUrl)).toBe(true);
    });

    const cases: [string, Record<string, unknown>, string][] = [
        [
            "alerts without a webhook",
            { ...development(), alerts: { type: "slack" } },
            "gitops-platform:alertWebhookUrl: is required when alerts is set. Fix: 'pulumi config set --secret alertWebhookUrl <url> -s dev'",
        ],
        [
            "a webhook that is not https, without echoing it",
            { ...development(), alerts: { type: "generic" }, alertWebhookUrl: "http://receiver.internal/secret-path" },
            "gitops-platform:alertWebhookUrl: is not an https:// URL. Fix: paste the webhook URL your Slack, Teams or receiver gave you",
        ],
        [
            "a webhook nothing uses",
            { ...development(), alertWebhookUrl: WEBHOOK },
            "gitops-platform:alertWebhookUrl: is set, but alerts is not, so nothing would use it. Fix: set alerts or remove alertWebhookUrl",
        ],
        [
            "a Slack channel on a Teams webhook",
            { ...development(), alerts: { type: "msteams", channel: "#x" }, alertWebhookUrl: WEBHOOK },
            "gitops-platform:alerts.channel: only applies to Slack. Fix: remove it",
        ],
        [
            "an unknown notification channel",
            { ...development(), alerts: { type: "pager" }, alertWebhookUrl: WEBHOOK },
            "gitops-platform:alerts.type: is not a notification channel this program sets up. Fix: use slack, msteams or generic",
        ],
    ];
    it.each(cases)("refuses %s", (_what, values, expected) => {
        expect(problems(values)).toEqual([expected]);
    });

    it("refuses a webhook committed in plain text", () => {
        const stackFileText = `config:\n  gitops-platform:alertWebhookUrl: ${WEBHOOK}\n`;
        expect(problems({ ...development(), alerts: { type: "slack" }, alertWebhookUrl: WEBHOOK }, "dev", { stackFileText })).toEqual([
            "gitops-platform:alertWebhookUrl: is stored in plain text in stacks/Pulumi.dev.yaml. Fix: remove it from the file and run 'pulumi config set --secret alertWebhookUrl <value> -s dev'",
        ]);
    });
});

describe("URL and branch rules", () => {
    it.each(["https://gitlab.com/a/b.git", "https://git.example.com:8443/a/b"])("accepts %s", (url) => {
        expect(httpsUrlProblem(url)).toBeUndefined();
    });
    it.each(["ssh://git@gitlab.com/a/b.git", "ftp://x/y", "not a url"])("refuses %s", (url) => {
        expect(httpsUrlProblem(url)).toBeDefined();
    });
    it.each(["main", "feature/sandbox-a", "release-1.2"])("accepts the branch %s", (b) => {
        expect(gitBranchProblem(b)).toBeUndefined();
    });
    it.each(["-x", "a..b", "a.lock", "a~1", "a:b", "ends/", "a//b", "x@{1}", ""])("refuses the branch '%s'", (b) => {
        expect(gitBranchProblem(b)).toBeDefined();
    });
});

describe("Pulumi.yaml, where every key is documented", () => {
    const documented = fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8");
    const defaultOf = (key: string) => new RegExp(`^#\\s+${key}\\s.*Default: ([^\\s,]+?)\\.?(\\s|$)`, "m").exec(documented)?.[1];

    it.each([
        ["nodeImage", DEFAULTS.kindNodeImage],
        ["controlPlaneNodes", String(DEFAULTS.controlPlaneNodes)],
        ["workers", String(DEFAULTS.workers)],
        ["operatorVersion", DEFAULTS.fluxOperatorVersion],
        ["registry", DEFAULTS.fluxRegistry],
        ["syncInterval", DEFAULTS.syncInterval],
        ["readyTimeout", DEFAULTS.fluxReadyTimeout],
        ["branch", DEFAULTS.syncBranch],
        ["username", DEFAULTS.gitUsername],
        ["ttl", DEFAULTS.sandboxTtl],
    ])("states the default of %s that the schema applies", (key, value) => {
        expect(defaultOf(key)).toBe(value);
    });
});

describe("no secret in any message", () => {
    const TOKEN = "planted-not-a-real-token-7f3a9c";
    const withCredentials = (url: string) => url.replace("https://", `https://oauth2:${TOKEN}@`);

    it.each([
        ["sync.url", withCredentials(REPO_URL)],
        ["platformRepository.url", withCredentials(REPO_URL)],
        ["sync.url", `http://oauth2:${TOKEN}@gitlab.com/x.git`],
        ["sync.url", `https://oauth2:${TOKEN}@`],
    ])("a %s with credentials in it is refused without quoting them", (key, url) => {
        const messages = problems(withKey(development(), key, url));
        expect(messages.length).toBeGreaterThan(0);
        expect(messages.filter((m) => m.includes(TOKEN))).toEqual([]);
    });

    it("reports credentials in a URL together with every other problem, in one round", () => {
        const config = withKey(withKey(development(), "sync.url", withCredentials(REPO_URL)), "flux.version", "1.x");
        expect(problems(config)).toEqual([
            "gitops-platform:flux.version: '1.x' allows versions other than Flux 2, which the operator installs. Fix: e.g. '2.x', '2.8.x' or '2.8.8'",
            "gitops-platform:sync.url: 'https://***@gitlab.com/gitops-platform/gitops-platform.git' embeds credentials. Fix: remove them from the URL; the token comes from the 'token' key",
        ]);
    });

    it("names the URL with its user-info replaced", () => {
        expect(problems(withKey(development(), "sync.url", withCredentials(REPO_URL)))).toEqual([
            "gitops-platform:sync.url: 'https://***@gitlab.com/gitops-platform/gitops-platform.git' embeds credentials. Fix: remove them from the URL; the token comes from the 'token' key",
        ]);
    });
});

describe("hostile and careless stack files", () => {
    const refusals = (raw: Record<string, string>, ctx: Partial<ParseContext> = {}): string[] => {
        try {
            parseConfig(raw, { stack: "dev", env: {}, ...ctx });
        } catch (e) {
            if (e instanceof ConfigError) return e.problems.map((p) => `${p.key}: ${p.message}`);
            throw e;
        }
        return [];
    };
    const eksDev = (cluster: Record<string, unknown>) => ({
        ...development(),
        cluster: { ...(eksDevelopment().cluster as Record<string, unknown>), ...cluster },
    });
    const eksProd = (cluster: Record<string, unknown>) => ({
        ...eksProduction(),
        cluster: { ...(eksProduction().cluster as Record<string, unknown>), ...cluster },
    });
    const fix = "Fix: e.g. '2.x', '2.8.x' or '2.8.8'";

    const refused: [string, Record<string, string>, string[], Partial<ParseContext>?][] = [
        [
            "a key in a misspelt namespace",
            { ...cli(development()), "gitops-platfrom:alerts": '{"type":"slack"}' },
            ["gitops-platfrom:alerts: is in the namespace 'gitops-platfrom', which nothing reads. Fix: rename it to 'gitops-platform:alerts'"],
        ],
        [
            "a URL a lenient parser would repair (no slashes)",
            cli(withKey(development(), "sync.url", "https:gitlab.com/gitops-platform/gitops-platform.git")),
            [
                "gitops-platform:sync.url: 'https:gitlab.com/gitops-platform/gitops-platform.git' is not https, and the token must not cross the network in clear text. Fix: use https://",
            ],
        ],
        [
            "a URL with a backslash",
            cli(withKey(development(), "sync.url", "https://gitlab.com\\gitops-platform/gitops-platform.git")),
            [
                "gitops-platform:sync.url: 'https://gitlab.com\\gitops-platform/gitops-platform.git' contains white space, a control character or a backslash. Fix: write the URL plainly, e.g. 'https://gitlab.com/group/project.git'",
            ],
        ],
        [
            "a URL with surrounding spaces",
            cli(withKey(development(), "sync.url", ` ${REPO_URL} `)),
            [
                `gitops-platform:sync.url: ' ${REPO_URL} ' contains white space, a control character or a backslash. Fix: write the URL plainly, e.g. 'https://gitlab.com/group/project.git'`,
            ],
        ],
        [
            "a tab in the host",
            cli(withKey(development(), "sync.url", "https://git\tlab.com/x.git")),
            [
                "gitops-platform:sync.url: 'https://git\tlab.com/x.git' contains white space, a control character or a backslash. Fix: write the URL plainly, e.g. 'https://gitlab.com/group/project.git'",
            ],
        ],
        ["an empty Flux version", cli(withKey(development(), "flux.version", "")), [`gitops-platform:flux.version: '' would match any version. ${fix}`]],
        [
            "a dangling range",
            cli(withKey(development(), "flux.version", "2.8.8 ||")),
            [`gitops-platform:flux.version: '2.8.8 ||' would match any version. ${fix}`],
        ],
        [
            "an unsatisfiable range",
            cli(withKey(development(), "flux.version", ">=2.9.0 <2.8.0")),
            [`gitops-platform:flux.version: '>=2.9.0 <2.8.0' matches no version at all. ${fix}`],
        ],
        [
            "a Flux 1 range",
            cli(withKey(development(), "flux.version", "1.x")),
            [`gitops-platform:flux.version: '1.x' allows versions other than Flux 2, which the operator installs. ${fix}`],
        ],
        [
            "a v-prefixed version in production",
            cli(withKey(production(), "flux.version", "v2.8.8")),
            ["gitops-platform:flux.version: is the range 'v2.8.8', but production runs one known Flux version. Fix: pin an exact version, e.g. '2.8.8'"],
        ],
        [
            "999 control-plane nodes",
            cli(withKey(development(), "cluster.controlPlaneNodes", 999)),
            ["gitops-platform:cluster.controlPlaneNodes: is more control-plane nodes than a laptop runs, or etcd needs. Fix: use 1 or 3"],
        ],
        [
            "a listen address that is not an IP",
            cli(withKey(development(), "cluster.portMappings", [{ containerPort: 80, hostPort: 8080, listenAddress: "localhost" }])),
            ["gitops-platform:cluster.portMappings.0.listenAddress: is not an IP address. Fix: e.g. '127.0.0.1' (this machine only) or '0.0.0.0'"],
        ],
        [
            "an API server host for Docker-in-Docker that is a URL and a listen address that is a name",
            cli(withKey(development(), "cluster.apiServer", { listenAddress: "all", host: "tcp://docker:2375" })),
            [
                "gitops-platform:cluster.apiServer.listenAddress: is not an IP address. Fix: e.g. '0.0.0.0'",
                "gitops-platform:cluster.apiServer.host: is not a host name. Fix: e.g. 'docker'",
            ],
        ],
        [
            "production API access that adds up to the whole internet",
            cli(eksProd({ publicAccessCidrs: ["0.0.0.0/1", "128.0.0.0/1"] })),
            [0, 1].map(
                (i) =>
                    `gitops-platform:cluster.publicAccessCidrs.${i}: '${i === 0 ? "0.0.0.0/1" : "128.0.0.0/1"}' opens the production API endpoint to a large part of the internet. Fix: list your VPN or CI egress CIDRs (/8 or narrower)`,
            ),
        ],
        [
            "a multicast VPC block",
            cli(eksDev({ vpcCidr: "224.1.0.0/16" })),
            [
                "gitops-platform:cluster.vpcCidr: '224.1.0.0/16' is not a private range. Fix: use a /16 of 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, e.g. '10.20.0.0/16'",
            ],
        ],
        [
            "the same zone in its two spellings",
            cli(eksDev({ zones: ["a", "eu-west-1a"] })),
            ["gitops-platform:cluster.zones.1: 'eu-west-1a' is eu-west-1a, listed already. Fix: remove the duplicate"],
        ],
        [
            "a non-secret key stored as a secret",
            cli(development()),
            [
                "gitops-platform:environment: is stored as a secret, but it is not one, and reviewers could not read it. Fix: 'pulumi config set environment <value> -s dev' without --secret",
            ],
            { secretKeys: ["gitops-platform:environment", "gitops-platform:token"] },
        ],
        [
            "the token in plain text as a !!binary scalar",
            cli(development()),
            [
                "gitops-platform:token: is stored in plain text in stacks/Pulumi.dev.yaml. Fix: remove it from the file and run 'pulumi config set --secret token <value> -s dev'",
            ],
            { stackFileText: "config:\n  gitops-platform:token: !!binary dG9rZW4=\n" },
        ],
        [
            "a zero sync interval",
            cli(withKey(development(), "flux.syncInterval", "0s")),
            ["gitops-platform:flux.syncInterval: is zero, so Flux would pull without pause. Fix: e.g. '1m'"],
        ],
    ];
    // Every row gets its context, so jest never takes the test's last parameter for a `done` callback.
    it.each(refused.map(([what, raw, expected, ctx]) => [what, raw, expected, ctx ?? {}] as const))(
        "refuses %s, naming the key and the fix",
        (_what, raw, expected, ctx) => {
            expect(refusals(raw, ctx)).toEqual(expected);
        },
    );

    const accepted: [string, Record<string, string>, Partial<ParseContext>?][] = [
        ["an environment name that YAML would read as a number", { ...cli(development()), "gitops-platform:environment": "123" }],
        ["a token of digits only", { ...cli(development()), "gitops-platform:token": "123456" }],
        ["a branch name Git allows", cli(withKey(development(), "sync.branch", "feature/x#1+build@v2"))],
        [
            "a stack file with 150 YAML aliases",
            cli(development()),
            { stackFileText: `x: &x 1\nmany: [${Array.from({ length: 150 }, () => "*x").join(", ")}]\nconfig: {}\n` },
        ],
    ];
    it.each(accepted.map(([what, raw, ctx]) => [what, raw, ctx ?? {}] as const))("accepts %s", (_what, raw, ctx) => {
        const problemsOf = refusals(raw, ctx);
        // Environments need a cluster folder; a name that is not one is refused for that reason only.
        expect(problemsOf.filter((p) => !p.startsWith("gitops-platform:sync.path:"))).toEqual([]);
    });

    // Every row again, with a distinct credential in every place one can be: the token (config and
    // environment), the webhook URL, and user-info in both repository URLs. No message may quote one.
    it.each([...refused.map(([what, raw, , ctx]) => [what, raw, ctx ?? {}] as const), ...accepted.map(([what, raw, ctx]) => [what, raw, ctx ?? {}] as const)])(
        "quotes no planted credential when judging %s",
        (_what, raw, ctx) => {
            const plants = [
                "planted-config-token-1b2c",
                "planted-env-token-3d4e",
                "planted-webhook-5f6a",
                "planted-sync-userinfo-7b8c",
                "planted-repo-userinfo-9d0e",
            ];
            const [configToken, envToken, webhook, syncUser, repoUser] = plants;
            const planted: Record<string, string> = {
                ...raw,
                "gitops-platform:token": configToken ?? "",
                "gitops-platform:alertWebhookUrl": `https://hooks.example.com/${webhook}`,
            };
            const withUserInfo = (key: string, field: string, secret: string) => {
                const value = planted[key];
                if (value === undefined) return;
                try {
                    const object = JSON.parse(value) as Record<string, unknown>;
                    if (typeof object[field] === "string") object[field] = (object[field] as string).replace(/^(\w+:\/\/)/, `$1oauth2:${secret}@`);
                    planted[key] = JSON.stringify(object);
                } catch {
                    // a row whose value is not an object keeps it as it is
                }
            };
            withUserInfo("gitops-platform:sync", "url", syncUser ?? "");
            withUserInfo("gitops-platform:platformRepository", "url", repoUser ?? "");
            let text = "";
            try {
                parseConfig(planted, { stack: "dev", ...ctx, env: { GITLAB_TOKEN: envToken } });
            } catch (e) {
                text = e instanceof ConfigError ? `${e.message}\n${e.problems.map((p) => `${p.key}: ${p.message}`).join("\n")}` : String(e);
            }
            // Every row is refused (the credentials in the URLs alone would do it): there is always a message to search.
            expect(text).toMatch(/config problem/);
            expect(plants.filter((plant) => text.includes(plant))).toEqual([]);
        },
    );
});

describe("stack files as the CLI hands them over (PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS)", () => {
    const HEAD = "config:\n  gitops-platform:environment: development\n  gitops-platform:cluster: {backend: kind}\n";
    const REPO =
        "  gitops-platform:sync: {url: https://gitlab.com/gitops-platform/gitops-platform.git}\n  gitops-platform:platformRepository: {type: git, url: https://gitlab.com/gitops-platform/gitops-platform.git}\n";
    /** The problems the program reports for a stack file, as `key: message`, given what the CLI hands it. */
    const refusals = (text: string): string[] => {
        const { config, secretKeys } = handedOver(text);
        try {
            parseConfig(config, { stack: "dev", secretKeys, env: { GITLAB_TOKEN: "from-the-environment" }, stackFileText: text });
            return [];
        } catch (e) {
            if (!(e instanceof ConfigError)) throw e;
            return e.problems.map((p) => `${p.key}: ${p.message}`);
        }
    };
    const plain = (key: string) =>
        `gitops-platform:${key}: is stored in plain text in stacks/Pulumi.dev.yaml. Fix: remove it from the file and run 'pulumi config set --secret ${key} <value> -s dev'`;

    it.each<[string, string, string[]]>([
        ["a token in plain text under a bare key", `${HEAD}${REPO}  token: glxx-not-a-token\n`, [plain("token")]],
        ["a token in plain text under the legacy ns:config:key", `${HEAD}${REPO}  gitops-platform:config:token: glxx-not-a-token\n`, [plain("token")]],
        ["an encrypted token written once under an anchor and aliased", `x-secret: &t {secure: v1:AAAA}\n${HEAD}${REPO}  gitops-platform:token: *t\n`, []],
        ["an encrypted token under a bare key", `${HEAD}${REPO}  token: {secure: v1:AAAA}\n`, []],
    ])("secrets, whatever the spelling: %s", (_what, text, expected) => {
        expect(refusals(text)).toEqual(expected);
    });

    it("never quotes what the user encrypted, nor what is built from it", () => {
        const text = `config:\n  gitops-platform:environment: {secure: v1:ENV}\n  gitops-platform:cluster: {backend: kind}\n${REPO}`;
        const { config, secretKeys } = handedOver(text, () => "sb-secret-name");
        let messages = "";
        try {
            parseConfig(config, { stack: "dev", secretKeys, env: { GITLAB_TOKEN: "t" } });
        } catch (e) {
            messages = (e as ConfigError).problems.map((p) => p.message).join("\n");
        }
        expect(messages).toContain("is stored as a secret, but it is not one");
        expect(messages).toContain("clusters/[secret]");
        expect(messages).not.toContain("sb-secret-name");
    });

    it("reads an unquoted time the CLI hands over as Go's time.String()", () => {
        const text = `${HEAD.replace("development", "sb-x")}${REPO}  gitops-platform:sandbox: {source: development, createdAt: 2026-11-24T18:00:00Z}\n`;
        const { config } = handedOver(text);
        expect(JSON.parse(config["gitops-platform:sandbox"] ?? "{}")).toEqual({ source: "development", createdAt: "2026-11-24 18:00:00 +0000 UTC" });
        const sandbox = (values: Record<string, string>) => {
            try {
                parseConfig(values, { stack: "dev", env: { GITLAB_TOKEN: "t" }, secretKeys: [] });
            } catch (e) {
                return (e as ConfigError).problems.map((p) => p.key);
            }
            return [];
        };
        // Whatever else this sandbox lacks (its folder), its createdAt is fine.
        expect(sandbox(config)).not.toContain("gitops-platform:sandbox.createdAt");
    });

    it.each<[string, string, string]>([
        [
            "a readyTimeout longer than Go's time.Duration holds",
            `${HEAD}${REPO}  gitops-platform:flux: {readyTimeout: 3000000h}\n`,
            "gitops-platform:flux.readyTimeout: is longer than Go's time.Duration holds (about 292 years), so Flux could not parse it. Fix: e.g. '1h'",
        ],
        [
            "a syncInterval longer than Go's time.Duration holds",
            `${HEAD}${REPO}  gitops-platform:flux: {syncInterval: 9999999999s}\n`,
            "gitops-platform:flux.syncInterval: is longer than Go's time.Duration holds (about 292 years), so Flux could not parse it. Fix: e.g. '1h'",
        ],
        [
            "a sandbox TTL beyond a year",
            `${HEAD.replace("development", "sb-x")}${REPO}  gitops-platform:sandbox: {source: development, createdAt: "2026-11-24T18:00:00Z", ttl: 99999999d}\n`,
            "gitops-platform:sandbox.ttl: is longer than a year, and a sandbox is short-lived. Fix: e.g. '3d', or make it a long-lived environment",
        ],
        [
            "a Flux release the pinned flux-operator never shipped",
            `${HEAD}${REPO}  gitops-platform:flux: {version: "2.1.x"}\n`,
            "gitops-platform:flux.version: '2.1.x' matches no Flux release flux-operator v0.58.0 ships (2.2.3 to 2.9.4). Fix: allow one of them",
        ],
        [
            "an operator whose Flux releases this project does not know",
            `${HEAD}${REPO}  gitops-platform:flux: {operatorVersion: "0.57.0"}\n`,
            "gitops-platform:flux.operatorVersion: is 0.57.0, but this project knows which Flux releases flux-operator 0.58.0 ships, and no other's (schemas/flux-served-apis.json). Fix: use 0.58.0, or vendor 0.57.0's data with npm run schemas:update -- 0.57.0",
        ],
        [
            "a repository host with look-alike letters",
            `${HEAD}  gitops-platform:sync: {url: "https://gіtlab.com/gitops-platform/gitops-platform.git"}\n  gitops-platform:platformRepository: {type: git, url: https://gitlab.com/gitops-platform/gitops-platform.git}\n`,
            "gitops-platform:sync.url: 'https://gіtlab.com/gitops-platform/gitops-platform.git' names the host xn--gtlab-n2e.com (its letters are not all ASCII, and may only look like a familiar name). Fix: if that host is really meant, write it as xn--gtlab-n2e.com",
        ],
        [
            "production following staging's folder",
            `config:\n  gitops-platform:environment: production\n  gitops-platform:cluster: {backend: kind}\n  gitops-platform:flux: {version: "2.8.8"}\n  gitops-platform:protect: true\n  gitops-platform:sync: {url: https://gitlab.com/gitops-platform/gitops-platform.git, path: clusters/staging}\n  gitops-platform:platformRepository: {type: oci, server: registry.gitlab.com, url: "oci://registry.gitlab.com/gitops-platform/gitops-platform/platform", username: r}\n`,
            "gitops-platform:sync.path: 'clusters/staging' is the folder of the environment 'staging', so 'production' would run its objects on its cadence. Fix: sync clusters/production (the default), or fork a sandbox to run a copy",
        ],
    ])("bounds and one rule: %s", (_what, text, expected) => {
        expect(refusals(text)).toContain(expected);
    });

    const eks = (cluster: string) =>
        `config:\n  gitops-platform:environment: development\n  gitops-platform:cluster: {backend: eks, region: eu-west-1, kubernetesVersion: "1.35", deployRoleArn: "arn:aws:iam::123456789012:role/platform-deployer", ${cluster}}\n${REPO}`;
    it.each<[string, string, string]>([
        [
            "one admin role listed twice",
            eks('adminRoleArns: ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/a"], publicAccessCidrs: [203.0.113.0/24]'),
            "gitops-platform:cluster.adminRoleArns.1: 'arn:aws:iam::123456789012:role/a' is listed already: EKS takes one access entry per role. Fix: remove the duplicate",
        ],
        [
            "a role of another partition than the cluster's region",
            eks('adminRoleArns: ["arn:aws-cn:iam::123456789012:role/a"], publicAccessCidrs: [203.0.113.0/24]'),
            "gitops-platform:cluster.adminRoleArns.0: is a role of the aws-cn partition, but eu-west-1 is in aws, where it does not exist. Fix: use the role's ARN in aws",
        ],
        [
            "a private range on the public endpoint",
            eks('adminRoleArns: ["arn:aws:iam::123456789012:role/a"], publicAccessCidrs: [10.1.0.0/16]'),
            "gitops-platform:cluster.publicAccessCidrs.0: '10.1.0.0/16' is a private range, which never reaches a public endpoint (the private endpoint is always on). Fix: list public egress ranges only",
        ],
        [
            "a range inside another",
            eks('adminRoleArns: ["arn:aws:iam::123456789012:role/a"], publicAccessCidrs: [203.0.113.0/24, 203.0.113.128/25]'),
            "gitops-platform:cluster.publicAccessCidrs.1: '203.0.113.128/25' is inside '203.0.113.0/24', listed too. Fix: remove the narrower one",
        ],
        [
            "a node group beyond EKS's quota",
            eks('adminRoleArns: ["arn:aws:iam::123456789012:role/a"], publicAccessCidrs: [203.0.113.0/24], nodeGroup: {maxSize: 500}'),
            "gitops-platform:cluster.nodeGroup.maxSize: is more than the 450 nodes EKS allows in one managed node group. Fix: at most 450, or ask AWS to raise the quota",
        ],
    ])("cross-field sense: %s", (_what, text, expected) => {
        expect(refusals(text)).toContain(expected);
    });
});
