import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { fluxReleaseProblem, productionPinProblem, readFluxServedApis } from "../../lib/flux-apis";
import { buildEnvironment, readyOrderOf, sharedKustomize } from "../../lib/flux-build";
import { findPlatformSource, FluxObjectRef, normaliseRepoPath, PlatformSourceKind } from "../../lib/gitops-tree";
import { defaultSyncPath, type Tier } from "../../lib/project";
import { gitBranchProblem, redactUrl } from "../../lib/validators";
import type { AlertsConfig, ClusterConfig, StackConfig, SyncConfig } from "./schema";

// The rules a schema cannot express: the config against the GitOps tree it points at (the sync path
// exists, the platform source agrees with the secret), and what production and EKS demand.

export function checkAlerts(config: StackConfig, syncPath: string, report: Report, repoRoot: string, stack: string): AlertsConfig | undefined {
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
    // What Flux applies in this environment, every layer built as Flux builds it (lib/flux-build.ts).
    const build = buildEnvironment(repoRoot, syncPath, { kustomize: sharedKustomize() });
    reportBuildProblems(build.findings, report);
    const synced = build.objects.map((b) => b.manifest);
    const namespacesOf = (kinds: string[]) =>
        [...new Set(synced.filter((m) => kinds.includes(m.kind ?? "") && m.metadata?.namespace).map((m) => m.metadata?.namespace ?? ""))].sort();
    return {
        ...config.alerts,
        webhookUrl: pulumi.secret(url),
        helmReleaseNamespaces: namespacesOf(["HelmRelease"]),
        // Sources live where their releases do (cert-manager's chart repository in cert-manager): watched there.
        sourceNamespaces: namespacesOf(["GitRepository", "OCIRepository", "HelmRepository"]).filter((ns) => ns !== "flux-system"),
    };
}

export type Report = (key: string, message: string) => void;

/** Why a block cannot be a VPC's: AWS takes the private ranges of RFC 1918 (and 100.64.0.0/10). */
function privateCidrProblem(cidr: string): string | undefined {
    const [a = 0, b = 0] = cidr.split(/[./]/).map(Number);
    const isPrivate = a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
    return isPrivate ? undefined : `'${cidr}' is not a private range. Fix: use a /16 of 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, e.g. '10.20.0.0/16'`;
}

export function clusterConfig(config: StackConfig): ClusterConfig {
    const name = config.cluster.name ?? config.environment;
    if (config.cluster.backend === "kind") return { ...config.cluster, name };
    const region = config.cluster.region;
    return { ...config.cluster, name, zones: config.cluster.zones.map((z) => (z.length <= 2 ? `${region}${z}` : z)) };
}

/** The AWS partition of a region code (ARNs of roles must be in the cluster's). */
export function partitionOf(region: string): string {
    if (region.startsWith("cn-")) return "aws-cn";
    if (region.startsWith("us-gov-")) return "aws-us-gov";
    if (region.startsWith("us-isob-")) return "aws-iso-b";
    if (region.startsWith("us-iso-")) return "aws-iso";
    return "aws";
}

/** An IPv4 block as [first, last] address numbers. */
function blockOf(cidr: string): [number, number] {
    const [address = "", prefix = "32"] = cidr.split("/");
    const start = address.split(".").reduce((a, o) => a * 256 + Number(o), 0);
    return [start, start + 2 ** (32 - Number(prefix)) - 1];
}

const PRIVATE_BLOCKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8"].map(blockOf);

/** Who may reach and administer the cluster, as AWS will read it: one entry per principal, one partition, real public ranges. */
function checkAccess(cluster: Extract<StackConfig["cluster"], { backend: "eks" }>, report: Report): void {
    const partition = partitionOf(cluster.region);
    const roles: [string, string][] = [
        ["cluster.deployRoleArn", cluster.deployRoleArn],
        ...cluster.adminRoleArns.map((a, i): [string, string] => [`cluster.adminRoleArns.${i}`, a]),
        ...cluster.viewerRoleArns.map((a, i): [string, string] => [`cluster.viewerRoleArns.${i}`, a]),
    ];
    for (const [key, arn] of roles) {
        const own = arn.split(":")[1];
        if (own && own !== partition) {
            report(
                key,
                `is a role of the ${own} partition, but ${cluster.region} is in ${partition}, where it does not exist. Fix: use the role's ARN in ${partition}`,
            );
        }
    }
    cluster.adminRoleArns.forEach((arn, i) => {
        if (cluster.adminRoleArns.indexOf(arn) !== i)
            report(`cluster.adminRoleArns.${i}`, `'${arn}' is listed already: EKS takes one access entry per role. Fix: remove the duplicate`);
    });
    const blocks = cluster.publicAccessCidrs.map(blockOf);
    cluster.publicAccessCidrs.forEach((cidr, i) => {
        const [start, end] = blocks[i]!;
        if (PRIVATE_BLOCKS.some(([ps, pe]) => start >= ps && end <= pe)) {
            report(
                `cluster.publicAccessCidrs.${i}`,
                `'${cidr}' is a private range, which never reaches a public endpoint (the private endpoint is always on). Fix: list public egress ranges only`,
            );
            return;
        }
        const same = cluster.publicAccessCidrs.indexOf(cidr);
        if (same !== i) return report(`cluster.publicAccessCidrs.${i}`, `'${cidr}' is listed already. Fix: remove the duplicate`);
        // (A block of under /8 is the production rule's to report, not a container of others.)
        const within = blocks.findIndex(
            ([s, e], j) =>
                j !== i && s <= start && end <= e && cluster.publicAccessCidrs[j] !== cidr && Number(cluster.publicAccessCidrs[j]?.split("/")[1]) >= 8,
        );
        if (within >= 0)
            report(`cluster.publicAccessCidrs.${i}`, `'${cidr}' is inside '${cluster.publicAccessCidrs[within]}', listed too. Fix: remove the narrower one`);
    });
}

export function checkEks(config: StackConfig, tier: Tier, report: Report): void {
    const cluster = config.cluster;
    if (cluster.backend !== "eks") return;
    checkAccess(cluster, report);
    const seen = new Set<string>();
    cluster.zones.forEach((zone, i) => {
        const full = zone.length <= 2 ? `${cluster.region}${zone}` : zone;
        if (seen.has(full)) report(`cluster.zones.${i}`, `'${zone}' is ${full}, listed already. Fix: remove the duplicate`);
        seen.add(full);
        if (zone.length > 2 && !zone.startsWith(cluster.region)) {
            report(`cluster.zones.${i}`, `'${zone}' is not in ${cluster.region}. Fix: give the zone suffix, e.g. 'a', or a zone of ${cluster.region}`);
        } else if (!/^([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d)?[a-z]$/.test(zone)) {
            report(`cluster.zones.${i}`, `'${zone}' is not an availability zone. Fix: e.g. 'a' or '${cluster.region}a'`);
        }
    });
    // One principal, one access entry: EKS refuses a second entry for a principal, and the deploy role has
    // one already (it created the cluster).
    cluster.viewerRoleArns.forEach((arn, i) => {
        if (arn === cluster.deployRoleArn || cluster.adminRoleArns.includes(arn)) {
            report(
                `cluster.viewerRoleArns.${i}`,
                `'${arn}' is also ${arn === cluster.deployRoleArn ? "the deploy role" : "an admin role"}, and one role gets one access entry. Fix: remove it from viewerRoleArns`,
            );
        } else if (cluster.viewerRoleArns.indexOf(arn) !== i) {
            report(`cluster.viewerRoleArns.${i}`, `'${arn}' is listed already. Fix: remove the duplicate`);
        }
    });
    const vpcProblem = privateCidrProblem(cluster.vpcCidr);
    if (vpcProblem) report("cluster.vpcCidr", vpcProblem);
    if (tier !== "production") return;
    if (cluster.natGateways !== "perZone") {
        report("cluster.natGateways", "is 'single', so one zone failing cuts every node off. Fix: use 'perZone' in production");
    }
    cluster.publicAccessCidrs.forEach((c, i) => {
        const prefix = Number(c.split("/")[1]);
        if (prefix === 0) {
            report(`cluster.publicAccessCidrs.${i}`, `'${c}' opens the production API endpoint to the whole internet. Fix: list your VPN or CI egress CIDRs`);
        } else if (prefix < 8) {
            // Two /1 blocks are the whole internet too: no single egress range is that wide.
            report(
                `cluster.publicAccessCidrs.${i}`,
                `'${c}' opens the production API endpoint to a large part of the internet. Fix: list your VPN or CI egress CIDRs (/8 or narrower)`,
            );
        }
    });
    if (cluster.nodeGroup.minSize < 2) {
        report("cluster.nodeGroup.minSize", "is below 2, so production rides on a single node. Fix: use 2 or more");
    }
}

export function checkSync(config: StackConfig, report: Report, repoRoot: string): SyncConfig | undefined {
    // The URL itself was judged by the schema.
    let ok = true;
    const branchProblem = gitBranchProblem(config.sync.branch);
    if (branchProblem) {
        report("sync.branch", branchProblem);
        ok = false;
    }
    const syncPath = normaliseRepoPath(config.sync.path ?? defaultSyncPath(config.environment));
    if (path.isAbsolute(syncPath) || syncPath.split("/").includes("..")) {
        report("sync.path", `'${config.sync.path}' leaves the repository. Fix: use a path like 'clusters/${config.environment}'`);
        return undefined;
    }
    // Each environment syncs its own folder: another's would bring that environment's objects and cadence.
    const other = /^clusters\/([^/]+)$/.exec(syncPath)?.[1];
    if (other && other !== config.environment && fs.existsSync(path.join(repoRoot, syncPath))) {
        report(
            "sync.path",
            `'${syncPath}' is the folder of the environment '${other}', so '${config.environment}' would run its objects on its cadence. ` +
                `Fix: sync clusters/${config.environment} (the default), or fork a sandbox to run a copy`,
        );
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
    return ok
        ? {
              url: config.sync.url,
              branch: config.sync.branch,
              ...(config.sync.commit ? { commit: config.sync.commit } : {}),
              path: syncPath,
              username: config.sync.username,
          }
        : undefined;
}

/**
 * What `pulumi up` waits for: the Flux objects the cluster folder yields as Flux builds it (its
 * kustomization.yaml, the namespaces it sets), causes first. A folder that does not build is reported on
 * sync.path, with kustomize's own words.
 */
export function fluxObjectsOf(syncPath: string, report: Report, repoRoot: string): FluxObjectRef[] {
    const build = buildEnvironment(repoRoot, syncPath, { kustomize: sharedKustomize(), rootOnly: true });
    reportBuildProblems(build.findings, report);
    return readyOrderOf(build.root.map((b) => b.manifest));
}

/** The builder's errors, as config problems of sync.path (its warnings are `npm run check`'s). */
function reportBuildProblems(findings: { severity: string; file: string; message: string }[], report: Report): void {
    for (const f of findings.filter((x) => x.severity === "error")) report("sync.path", `${f.file}: ${f.message}. Fix: repair it, and run npm run check`);
}

export function checkPlatformSource(config: StackConfig, syncPath: string, report: Report, repoRoot: string): PlatformSourceKind | undefined {
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
        // A stack pinned to a commit retargets the Git platform source at platformRepository.url itself (the
        // root Kustomization's patches, components/flux-bootstrap.ts), so a fork may test its own copy.
        if (!config.sync.commit && stripGitSuffix(repo.url) !== stripGitSuffix(source.url)) {
            report("platformRepository.url", `is ${redactUrl(repo.url)} but ${source.file} pulls ${redactUrl(source.url)}. Fix: make them the same`);
        }
    } else {
        if (!repo.url.startsWith("oci://")) {
            report("platformRepository.url", `must start with oci://. Fix: e.g. 'oci://${repo.server}/group/project/platform'`);
        } else if (!repo.url.startsWith(`oci://${repo.server}/`)) {
            report("platformRepository.url", `is not on the registry ${repo.server}. Fix: make server the host of url`);
        } else if (repo.url !== source.url) {
            report("platformRepository.url", `is ${redactUrl(repo.url)} but ${source.file} pulls ${redactUrl(source.url)}. Fix: make them the same`);
        }
    }
    return source.kind;
}

export function checkProduction(config: StackConfig, tier: Tier, report: Report, stack: string): void {
    // The rule npm run check applies too (lib/flux-apis.ts): a Flux the pinned operator ships.
    const release = fluxReleaseProblem(config.flux.version, config.flux.operatorVersion, readFluxServedApis());
    if (release) report(release.key, release.message);
    if (config.sandbox && tier !== "sandbox") {
        report("sandbox", `marks a sandbox, but '${config.environment}' is a long-lived environment. Fix: remove the sandbox key`);
    }
    if (tier !== "production") return;
    const pin = productionPinProblem(config.flux.version);
    if (pin) report("flux.version", pin);
    if (!config.protect) {
        report(
            "protect",
            `must be true in production so 'pulumi destroy' cannot remove the cluster or Flux. ` + `Fix: 'pulumi config set protect true -s ${stack}'`,
        );
    }
}

function stripGitSuffix(url: string): string {
    return url.replace(/\.git$/, "").replace(/\/$/, "");
}
