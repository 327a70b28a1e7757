import * as pulumi from "@pulumi/pulumi";
import { ConfigError, EnvironmentConfig, gitBranchProblem, httpsUrlProblem, parseConfig } from "./config";

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
    try {
        parse(values, stack, extra);
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems.map((p) => `${p.key}: ${p.message}`);
    }
    throw new Error("expected the config to be rejected");
}

function withKey(base: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
    const next = structuredClone(base);
    const parts = key.split(".");
    let node = next as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) node = node[p] as Record<string, unknown>;
    node[parts[parts.length - 1]] = value;
    return next;
}

describe("valid stack config", () => {
    it("fills in the documented defaults", () => {
        const config = parse(development());
        expect(config).toMatchObject<Partial<EnvironmentConfig>>({
            stack: "dev",
            stackFile: "stacks/Pulumi.dev.yaml",
            environment: "development",
            tier: "development",
            cluster: {
                backend: "kind",
                name: "development",
                nodeImage: "kindest/node:v1.35.0",
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

    it("a name outside the three environments is a sandbox", () => {
        const config = parse({ ...development(), environment: "sandbox-a", sync: { url: REPO_URL, path: "clusters/development" } });
        expect(config.tier).toBe("sandbox");
        expect(config.cluster.name).toBe("sandbox-a");
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
            "gitops-platform:cluster.backend: has an unknown backend. Fix: set cluster.backend to 'kind'",
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
            "gitops-platform:sync.url: 'https://user:pw@gitlab.com/gitops-platform/gitops-platform.git' embeds credentials. Fix: remove them from the URL; the token comes from the 'token' key",
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
