import * as fs from "fs";
import * as path from "path";
import { parseAllDocuments, type Document } from "yaml";
import { findPlatformSource, followBranch, Manifest } from "../../lib/gitops-tree";
import { diffTrees } from "../diff/diff";
import { DEFAULT_BRANCH, DEFAULT_SANDBOX_TTL, defaultSyncPath, ENVIRONMENTS } from "../../lib/project";
import { CommandResult } from "../../lib/run-command";
import { publishedPorts } from "../../lib/host-ports";
import { FORK_POINT, forkPointOf, mergeConfig, mergeTree, readForkPoint } from "./merge";
import { configString, configValue, listStacks, removeConfigValue, setConfigValue, stackFilePath } from "../../lib/stack-files";
import { DNS_LABEL, gitBranchProblem, TTL } from "../../lib/validators";
import {
    checkLinks,
    checkStackName,
    clusterFolder,
    dropSecureValues,
    readStackFile,
    recoverInterrupted,
    withLocks,
    retargetTree,
    SandboxError,
    sourceRefs,
    staged,
} from "./tree";

export interface SandboxContext {
    /** The repository root. */
    root: string;
    now: Date;
    /** Runs a command; `stream` shows its output live (long pulumi runs). Rejects with ENOENT when missing. */
    run(command: string, args: string[], options?: { stream?: boolean }): Promise<CommandResult>;
    print(line: string): void;
}

/**
 * Settings a throwaway cluster must not inherit from its source, and what they become. `protect` would
 * make the sandbox undeletable; per-zone NAT gateways only pay off for production's availability.
 */
export const PRODUCTION_ONLY: { key: string; sandboxValue: unknown; why: string }[] = [
    { key: "protect", sandboxValue: false, why: "a sandbox must be deletable in one command" },
    { key: "cluster.natGateways", sandboxValue: "single", why: "per-zone NAT gateways cost money for availability a sandbox does not need" },
];

export interface ForkOptions {
    sandbox: string;
    from: string;
    branch?: string;
    /** How long it is meant to live, e.g. 8h or 3d. @default "7d" */
    ttl?: string;
    /** Keep the source's alerts (channel and webhook). @default false */
    keepAlerts?: boolean;
    createBranch?: boolean;
    allowNested?: boolean;
    /** Who the sandbox belongs to (its owner tag). @default git's user.email, else $USER */
    owner?: string;
}

/** A config key the fork sets, or (value undefined) removes; a numeric segment of the key is a list index. */
export interface Override {
    key: string;
    value: string | boolean | number | undefined;
}

/** What a fork drops unless asked: alerts from a sandbox would land in the source's channel. */
const SOURCE_ONLY = ["alerts", "alertWebhookUrl"];

interface SourceStack {
    doc: Document;
    environment: string;
    branch: string;
    treePath: string;
    isSandbox: boolean;
}

function readSource(root: string, stack: string): SourceStack {
    const doc = readStackFile(root, stack);
    const environment = configString(doc, "environment") ?? "";
    return {
        doc,
        environment,
        branch: configString(doc, "sync.branch") ?? DEFAULT_BRANCH,
        treePath: (configString(doc, "sync.path") ?? defaultSyncPath(environment)).replace(/^\.\//, ""),
        isSandbox: configValue(doc, "sandbox") !== undefined || !(ENVIRONMENTS as readonly string[]).includes(environment),
    };
}

/** Refusals that need no file written: each names what is wrong and what to do instead. */
function checkFork(ctx: SandboxContext, o: ForkOptions, source: SourceStack, gitSource: boolean): void {
    if (!DNS_LABEL.test(o.sandbox) || o.sandbox.length > 50) {
        throw new SandboxError(`'${o.sandbox}' is not a valid sandbox name: use lowercase letters, digits and '-' (at most 50), e.g. 'sandbox-a'.`);
    }
    if ((ENVIRONMENTS as readonly string[]).includes(o.sandbox)) {
        throw new SandboxError(`'${o.sandbox}' is a long-lived environment, not a sandbox name. Pick another name, e.g. 'sandbox-a'.`);
    }
    if (fs.existsSync(stackFilePath(ctx.root, o.sandbox))) {
        throw new SandboxError(`A stack named '${o.sandbox}' already exists (stacks/Pulumi.${o.sandbox}.yaml). Pick another name or delete it first.`);
    }
    if (fs.existsSync(path.join(ctx.root, "clusters", o.sandbox))) {
        throw new SandboxError(`clusters/${o.sandbox} already exists. Pick another name or remove that folder first.`);
    }
    if (source.isSandbox && !o.allowNested) {
        throw new SandboxError(`'${o.from}' is itself a sandbox. Fork its source instead, or pass --allow-nested to fork a fork.`);
    }
    if (!fs.existsSync(path.join(ctx.root, source.treePath))) {
        throw new SandboxError(`${source.treePath}, the folder '${o.from}' syncs, does not exist; there is nothing to copy.`);
    }
    if (o.branch !== undefined) {
        const problem = gitBranchProblem(o.branch);
        if (problem) throw new SandboxError(`--branch ${problem}`);
    }
    if (gitSource && (o.branch === undefined || o.branch === source.branch)) {
        throw new SandboxError(
            `'${o.from}' follows the ${source.branch} branch, so a sandbox of it is a platform change and needs its own branch. ` +
                `Pass --branch <name> (e.g. --branch ${o.sandbox}).`,
        );
    }
    if (o.ttl !== undefined && !TTL.test(o.ttl)) {
        throw new SandboxError(`--ttl '${o.ttl}' is not a duration. Use minutes, hours or days, e.g. 8h or 3d.`);
    }
}

/**
 * The config changes that turn a copy of the source's stack config into the sandbox's: its own name,
 * folder and branch, none of production's settings, none of the source's alerts, its own identity (AWS
 * tags naming the sandbox, its owner and expiry instead of the source's cost centre) and host ports no
 * other stack in stacks/ publishes (`taken`), so two clusters run side by side on one laptop.
 */
export function forkOverrides(source: Document, o: ForkOptions, branch: string, createdAt: string, taken: Set<number> = new Set()): Override[] {
    const overrides: Override[] = [
        { key: "environment", value: o.sandbox },
        { key: "cluster.name", value: o.sandbox },
        { key: "sync.path", value: `clusters/${o.sandbox}` },
        { key: "sync.branch", value: branch },
    ];
    for (const p of PRODUCTION_ONLY) {
        const current = configValue(source, p.key);
        if (current !== undefined && current !== p.sandboxValue) overrides.push({ key: p.key, value: p.sandboxValue as string | boolean });
    }
    if (!o.keepAlerts) {
        for (const key of SOURCE_ONLY) if (configValue(source, key) !== undefined) overrides.push({ key, value: undefined });
    }
    const ttl = o.ttl ?? DEFAULT_SANDBOX_TTL;
    const cluster = (configValue(source, "cluster") ?? {}) as { backend?: string; tags?: Record<string, unknown>; portMappings?: { hostPort?: number }[] };
    if (cluster.backend === "eks") {
        if (cluster.tags?.["cost-center"] !== undefined) overrides.push({ key: "cluster.tags.cost-center", value: undefined });
        overrides.push({ key: "cluster.tags.sandbox", value: o.sandbox }, { key: "cluster.tags.expires", value: expiryOf(createdAt, ttl) });
        if (o.owner) overrides.push({ key: "cluster.tags.owner", value: o.owner });
    }
    (cluster.portMappings ?? []).forEach((m, i) => {
        let port = (m.hostPort ?? 1023) + 1;
        while (taken.has(port)) port++;
        taken.add(port);
        overrides.push({ key: `cluster.portMappings.${i}.hostPort`, value: port });
    });
    overrides.push({ key: "sandbox.source", value: o.from }, { key: "sandbox.createdAt", value: createdAt });
    // Every sandbox has a lifetime, so `list` flags the forgotten ones and `expire` destroys them.
    overrides.push({ key: "sandbox.ttl", value: ttl });
    if (o.owner) overrides.push({ key: "sandbox.owner", value: o.owner });
    return overrides;
}

/** When a sandbox created at `createdAt` with `ttl` expires, as an ISO time. */
export function expiryOf(createdAt: string, ttl: string): string {
    return new Date(Date.parse(createdAt) + parseTtl(ttl)).toISOString();
}

/** Applies overrides to a stack file's YAML, and makes its header describe the sandbox, not the source. */
function applyOverrides(doc: Document, overrides: Override[], header: string): void {
    for (const ov of overrides) {
        if (ov.value === undefined) removeConfigValue(doc, ov.key);
        else setConfigValue(doc, ov.key, ov.value);
    }
    doc.commentBefore = header;
    if (doc.contents) doc.contents.commentBefore = null;
    const first = (doc.contents as { items?: { key?: { commentBefore?: string | null } }[] } | null)?.items?.[0]?.key;
    if (first) first.commentBefore = null;
}

/**
 * The CLI command that creates the sandbox stack with the source's config, secrets re-encrypted for it.
 * The other changes are then made in the stack file it writes: they are plain values.
 */
export function pulumiForkCommand(o: ForkOptions): string[] {
    return ["stack", "init", o.sandbox, "--copy-config-from", o.from];
}

/**
 * Stack tags a fork writes into the backend, so `expire` finds a sandbox whose stack file lives on
 * another branch (the pipeline's checkout of main has none). Every backend keeps stack tags: Pulumi Cloud,
 * and self-managed ones since Pulumi 3.18x (pkg/backend/diy/stack_tags.go, a `.pulumi-tags` file per stack).
 */
export const SANDBOX_TAGS = {
    source: "gitops-platform:sandbox-source",
    owner: "gitops-platform:sandbox-owner",
    createdAt: "gitops-platform:sandbox-created-at",
    ttl: "gitops-platform:sandbox-ttl",
    backend: "gitops-platform:sandbox-backend",
} as const;

/** The tags for a sandbox forked from `source` by `owner` at `createdAt`. */
export function sandboxTags(o: ForkOptions, owner: string | undefined, createdAt: string, backend: string): [string, string][] {
    return [
        [SANDBOX_TAGS.source, o.from],
        [SANDBOX_TAGS.owner, owner ?? "-"],
        [SANDBOX_TAGS.createdAt, createdAt],
        [SANDBOX_TAGS.ttl, o.ttl ?? DEFAULT_SANDBOX_TTL],
        [SANDBOX_TAGS.backend, backend],
    ];
}

/** Who runs the fork: git's user.email, else the login name; undefined when neither says. */
async function ownerOf(ctx: SandboxContext): Promise<string | undefined> {
    const email = await ctx.run("git", ["config", "user.email"]).catch(() => undefined);
    const value = email?.code === 0 ? email.stdout.trim() : "";
    return value || process.env["USER"] || undefined;
}

async function pulumiAvailable(ctx: SandboxContext): Promise<boolean> {
    try {
        return (await ctx.run("pulumi", ["version"])).code === 0;
    } catch {
        return false;
    }
}

async function mustSucceed(ctx: SandboxContext, command: string, args: string[], stream = false): Promise<CommandResult> {
    const result = await ctx.run(command, args, { stream });
    if (result.code !== 0) {
        throw new SandboxError(`\`${command} ${args.join(" ")}\` failed (exit ${result.code}):\n${result.stderr.trim() || result.stdout.trim()}`);
    }
    return result;
}

export async function fork(ctx: SandboxContext, o: ForkOptions): Promise<void> {
    await withLocks(ctx.root, [checkStackName(o.sandbox, "The sandbox name"), checkStackName(o.from, "--from")], () => forkLocked(ctx, o));
}

async function forkLocked(ctx: SandboxContext, o: ForkOptions): Promise<void> {
    const source = readSource(ctx.root, checkStackName(o.from, "--from"));
    const sourceTree = clusterFolder(ctx.root, source.treePath, `The sync.path of stacks/Pulumi.${o.from}.yaml`);
    if (fs.existsSync(sourceTree)) checkLinks(ctx.root, sourceTree);
    const platform = fs.existsSync(path.join(ctx.root, source.treePath)) ? findPlatformSource(ctx.root, source.treePath) : undefined;
    const gitSource = platform?.kind === "GitRepository";
    checkFork(ctx, o, source, gitSource);
    const branch = o.branch ?? source.branch;
    const createdAt = ctx.now.toISOString();
    const owner = o.owner ?? (await ownerOf(ctx));
    const taken = new Set(listStacks(ctx.root).flatMap((s) => publishedPorts(ctx.root, s).map((p) => p.hostPort)));
    const overrides = forkOverrides(source.doc, { ...o, owner }, branch, createdAt, taken);
    const header = ` Sandbox ${o.sandbox}${owner ? ` of ${owner}` : ""}, forked from ${o.from} at ${createdAt} by \`npm run sandbox -- fork\`; expires ${expiryOf(createdAt, o.ttl ?? DEFAULT_SANDBOX_TTL)}.`;
    const useCli = await pulumiAvailable(ctx);

    for (const line of recoverInterrupted(ctx.root)) ctx.print(line);
    await staged(ctx.root, async (staging) => {
        // The tree: a copy of the source's folder, retargeted at the sandbox's branch and name.
        const tree = path.join(staging.dir, "tree");
        // Links inside the tree (checked above) become regular files, so nothing is written through one.
        fs.cpSync(sourceTree, tree, { recursive: true, dereference: true });
        const retargeted = retargetTree(tree, {
            clusterEnv: o.sandbox,
            // A Git source of this repository follows the sandbox's branch; an OCI one keeps its semver or tag.
            sourceRef: (kind, ref) => followBranch(kind, ref, { branch }),
        });
        for (const other of retargeted.leftAlone) ctx.print(`Left alone (another repository, not this branch): ${other}`);
        // What the source was at the fork: promote merges the sandbox's changes since then with the source's.
        const forkPoint = forkPointOf(o.from, sourceTree, source.doc, platform?.kind === "OCIRepository" ? platform.ref : undefined);
        fs.writeFileSync(path.join(tree, FORK_POINT), JSON.stringify(forkPoint, null, 2) + "\n");

        if (o.createBranch) {
            const started = (await mustSucceed(ctx, "git", ["rev-parse", "--abbrev-ref", "HEAD"])).stdout.trim();
            ctx.print(`Creating branch ${branch}...`);
            await mustSucceed(ctx, "git", ["switch", "-c", branch]);
            // A fork that fails after this leaves the user where they started, without the new branch.
            staging.onRollback(async () => {
                await ctx.run("git", ["switch", started]);
                await ctx.run("git", ["branch", "-D", branch]);
            });
        }
        staging.place(tree, path.join(ctx.root, "clusters", o.sandbox));

        if (useCli) {
            ctx.print(`Creating stack ${o.sandbox} with the config of ${o.from} (secrets re-encrypted for it)...`);
            await mustSucceed(ctx, "pulumi", pulumiForkCommand(o));
            // From here the stack exists in the backend: remove it too if a later step fails.
            staging.onRollback(() => ctx.run("pulumi", ["stack", "rm", "--yes", "--force", "--stack", o.sandbox]));
            staging.onRollback(() => fs.rmSync(stackFilePath(ctx.root, o.sandbox), { force: true }));
            for (const [tag, value] of sandboxTags(o, owner, createdAt, configString(source.doc, "cluster.backend") ?? "-")) {
                await mustSucceed(ctx, "pulumi", ["stack", "tag", "set", tag, value, "--stack", o.sandbox]);
            }
            const doc = readStackFile(ctx.root, o.sandbox);
            applyOverrides(doc, overrides, header);
            // Replaces the file the CLI just wrote (rolled back above), in one rename.
            const file = path.join(staging.dir, "stack.yaml");
            fs.writeFileSync(file, doc.toString());
            fs.renameSync(file, stackFilePath(ctx.root, o.sandbox));
        } else {
            const doc = source.doc.clone();
            const dropped = dropSecureValues(doc);
            applyOverrides(doc, overrides, header);
            const file = path.join(staging.dir, "stack.yaml");
            fs.writeFileSync(file, doc.toString());
            staging.place(file, stackFilePath(ctx.root, o.sandbox));
            ctx.print(`The pulumi CLI is not on PATH: stacks/Pulumi.${o.sandbox}.yaml was written without encrypted values. With the CLI, run:`);
            ctx.print(`  pulumi stack init ${o.sandbox}`);
            for (const key of dropped) ctx.print(`  pulumi config set --secret ${key.replace(/^[^:]+:/, "")} <value> --stack ${o.sandbox}`);
            if (dropped.length === 0) ctx.print(`  pulumi config set --secret token <token> --stack ${o.sandbox}   # or export GITLAB_TOKEN`);
        }
    });

    ctx.print(`Forked ${o.sandbox} from ${o.from}: clusters/${o.sandbox} and stacks/Pulumi.${o.sandbox}.yaml, following branch ${branch}.`);
    ctx.print("Next: commit both to that branch and push it, then `pulumi up -s " + o.sandbox + "`.");
}

function readSandbox(root: string, name: string): { doc: Document; source: string } {
    if (!fs.existsSync(stackFilePath(root, name))) {
        const sandboxes = listStacks(root).filter((s) => configValue(readStackFile(root, s), "sandbox") !== undefined);
        throw new SandboxError(`There is no sandbox '${name}'. Sandboxes: ${sandboxes.join(", ") || "none"}.`);
    }
    const doc = readStackFile(root, name);
    const source = configValue(doc, "sandbox.source");
    if (typeof source !== "string") {
        throw new SandboxError(`'${name}' is not a sandbox (stacks/Pulumi.${name}.yaml has no sandbox.source), and this command only touches sandboxes.`);
    }
    return { doc, source };
}

/** Whether the backend holds the stack; undefined when it cannot be asked. */
async function stackExists(ctx: SandboxContext, stack: string): Promise<boolean | undefined> {
    return (await backendStacks(ctx))?.includes(stack);
}

export interface PromoteOptions {
    /** Write the change. @default false (show it only) */
    yes?: boolean;
    /** Promote although the backend cannot be asked whether the sandbox's stack is gone. @default false */
    force?: boolean;
    /**
     * Other stacks that sync the source's folder (its kind or EKS twin) to carry the config change to too.
     * @default [] (they are named, and keep their config)
     */
    also?: string[];
}

export async function promote(ctx: SandboxContext, name: string, options: PromoteOptions = {}): Promise<void> {
    // Locked with its source too: a fork of that source must not copy a folder being replaced.
    const source = configString(readSandbox(ctx.root, name).doc, "sandbox.source") ?? "";
    await withLocks(ctx.root, [name, checkStackName(source, `The sandbox.source of stacks/Pulumi.${name}.yaml`)], () => promoteLocked(ctx, name, options));
}

const show = (v: unknown) => (v === undefined ? "(unset)" : JSON.stringify(v));
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Carries what the sandbox changed since its fork back into its source: files of its cluster folder and
 * stack config, merged with what the source changed meanwhile. Shows the change; writes it with `yes`.
 */
async function promoteLocked(ctx: SandboxContext, name: string, options: PromoteOptions): Promise<void> {
    const { doc } = readSandbox(ctx.root, name);
    const sourceStack = checkStackName(configString(doc, "sandbox.source") ?? "", `The sandbox.source of stacks/Pulumi.${name}.yaml`);
    const source = readSource(ctx.root, sourceStack);
    // Both folders come from stack files, which arrive in merge requests: neither may lead anywhere else.
    const sandboxPath = configString(doc, "sync.path") ?? defaultSyncPath(name);
    const sandboxTree = clusterFolder(ctx.root, sandboxPath, `The sync.path of stacks/Pulumi.${name}.yaml`);
    if (path.relative(ctx.root, sandboxTree) !== path.join("clusters", name)) {
        throw new SandboxError(
            `The sync.path of stacks/Pulumi.${name}.yaml is '${sandboxPath}', not the sandbox's own folder clusters/${name}. Fix the stack file; nothing was changed.`,
        );
    }
    const targetTree = clusterFolder(ctx.root, source.treePath, `The sync.path of stacks/Pulumi.${sourceStack}.yaml`);
    if (fs.existsSync(sandboxTree)) checkLinks(ctx.root, sandboxTree);
    if (!fs.existsSync(sandboxTree)) throw new SandboxError(`${path.relative(ctx.root, sandboxTree)} does not exist; there is nothing to promote.`);
    let targetPlatform: ReturnType<typeof findPlatformSource>;
    let sandboxPlatform: ReturnType<typeof findPlatformSource>;
    try {
        targetPlatform = fs.existsSync(targetTree) ? findPlatformSource(ctx.root, source.treePath) : undefined;
        sandboxPlatform = findPlatformSource(ctx.root, path.relative(ctx.root, sandboxTree));
    } catch (e) {
        const reason = ((e as Error).message.split("\n")[0] ?? "").split(`${ctx.root}${path.sep}`).join("").replace(/:$/, "");
        throw new SandboxError(`${reason}. Repair that file before promoting into ${source.treePath}; nothing was changed.`);
    }

    if (options.yes) {
        // Promote rewrites the target folder: edits nobody committed there (or in the sandbox) would vanish.
        const relative = [
            path.relative(ctx.root, targetTree),
            path.relative(ctx.root, sandboxTree),
            path.relative(ctx.root, stackFilePath(ctx.root, name)),
            path.relative(ctx.root, stackFilePath(ctx.root, sourceStack)),
        ];
        const status = await ctx.run("git", ["status", "--porcelain", "--", ...relative]).catch(() => undefined);
        const dirty = status?.code === 0 ? status.stdout.split("\n").filter((l) => l.trim() !== "") : [];
        if (dirty.length > 0) {
            throw new SandboxError(
                `Uncommitted changes would be lost: ${dirty.map((l) => l.slice(3)).join(", ")}. Commit or stash them, then promote again; nothing was changed.`,
            );
        }
        // Removing the files of a stack that still runs would orphan its cluster: its stack file is the
        // only record of how to destroy it. Not knowing is not the same as gone.
        const backend = await askBackend(ctx);
        if ("why" in backend && !options.force) {
            throw new SandboxError(
                `Cannot tell whether the sandbox's stack ${name} still exists: ${backend.why}. Check with pulumi stack ls; ` +
                    `if it is there, destroy it keeping the files (npm run sandbox -- delete ${name} --keep-files); if you know it is gone, promote again with --force. Nothing was changed.`,
            );
        }
        if ("stacks" in backend && backend.stacks.includes(name)) {
            throw new SandboxError(
                `The sandbox's stack still exists. Destroy its cluster first, keeping the files to promote: npm run sandbox -- delete ${name} --keep-files`,
            );
        }
    }

    for (const line of recoverInterrupted(ctx.root)) ctx.print(line);
    await staged(ctx.root, async (staging) => {
        const forkPoint = readForkPoint(sandboxTree);
        const theirs = path.join(staging.dir, "theirs");
        fs.cpSync(sandboxTree, theirs, { recursive: true, dereference: true });
        fs.rmSync(path.join(theirs, FORK_POINT), { force: true });
        // The source keeps its own cadence: its branch, semver range or tag, and its name.
        // Each source of this repository goes back to the ref the source's folder gives it.
        const targetRefs = sourceRefs(targetTree);
        retargetTree(theirs, { clusterEnv: source.environment, sourceRef: (_kind, ref, id) => targetRefs.get(id) ?? targetPlatform?.ref ?? ref });

        const tree = mergeTree(targetTree, theirs, forkPoint?.files);
        const config = mergeConfig(source.doc, doc, forkPoint?.config);
        const conflicts = [...tree.conflicts.map((f) => `${source.treePath}/${f}`), ...config.conflicts.map((k) => `stacks/Pulumi.${sourceStack}.yaml: ${k}`)];
        if (conflicts.length > 0) {
            throw new SandboxError(
                `Both ${name} and ${sourceStack} changed these since the fork, differently: ${conflicts.join(", ")}. ` +
                    `Bring the sandbox up to date with its source by hand (or the other way round), then promote again; nothing was changed.`,
            );
        }

        // A kind stack and its EKS twin sync one folder: the folder's change reaches both on merge, the
        // config only the stack file it is written to. Cluster settings are the backend's own, never carried.
        const twins = listStacks(ctx.root).filter((s) => {
            if (s === sourceStack || s === name) return false;
            const t = readSource(ctx.root, s);
            return !t.isSandbox && t.treePath === source.treePath;
        });
        const also = options.also ?? [];
        for (const a of also) {
            if (!twins.includes(a))
                throw new SandboxError(
                    `--also ${a}: ${a} does not sync ${source.treePath}. ${twins.length > 0 ? `Stacks that do: ${twins.join(", ")}` : `No other stack does`}; nothing was changed.`,
                );
        }
        const shared = config.changes.filter((c) => !c.key.startsWith("cluster."));
        const twinChanges = also.map((stack) => {
            const twinDoc = readStackFile(ctx.root, stack);
            return { stack, doc: twinDoc, changes: shared.map((c) => ({ ...c, from: configValue(twinDoc, c.key) })).filter((c) => !same(c.from, c.to)) };
        });

        ctx.print(`Promoting ${name} into ${source.treePath} and stacks/Pulumi.${sourceStack}.yaml (${sourceStack}):`);
        if (!forkPoint)
            ctx.print(`  (no fork point recorded: the sandbox's folder replaces the source's, and changes made to the source since the fork are reverted)`);
        for (const [rel, content] of tree.writes) {
            const verb = content === undefined ? "removed" : fs.existsSync(path.join(targetTree, rel)) ? "changed" : "added  ";
            ctx.print(`  ${verb}  ${source.treePath}/${rel}`);
        }
        for (const c of config.changes) ctx.print(`  config   ${c.key}: ${show(c.from)} -> ${show(c.to)}`);
        for (const t of twinChanges)
            for (const c of t.changes) ctx.print(`  config   stacks/Pulumi.${t.stack}.yaml: ${c.key}: ${show(c.from)} -> ${show(c.to)}`);
        if (tree.writes.size + config.changes.length === 0) ctx.print("  no changes");
        for (const twin of twins.filter((t) => !also.includes(t))) {
            if (tree.writes.size + config.changes.length === 0) break;
            const carried =
                shared.length > 0 ? `; its stack file keeps its own config (${shared.map((c) => c.key).join(", ")}): add --also ${twin} to carry it` : "";
            ctx.print(`  note     ${twin} syncs ${source.treePath} too: it gets the folder's changes on merge${carried}`);
        }
        // A perf clone that moved its artifact ref tested something the source does not pull: say so.
        const forkRef = forkPoint?.ociRef;
        if (forkRef && sandboxPlatform?.kind === "OCIRepository" && JSON.stringify(sandboxPlatform.ref) !== JSON.stringify(forkRef)) {
            ctx.print(
                `  note     the sandbox pulls the platform at ${JSON.stringify(sandboxPlatform.ref)}, ${sourceStack} at ${JSON.stringify(targetPlatform?.ref ?? forkRef)}; ` +
                    `${sourceStack} keeps its own. Change ${source.treePath}/platform.yaml in the merge request if it should move too.`,
            );
        }
        const merged = path.join(staging.dir, "merged");
        if (fs.existsSync(targetTree)) fs.cpSync(targetTree, merged, { recursive: true, dereference: true });
        else fs.mkdirSync(merged);
        for (const [rel, content] of tree.writes) {
            if (content === undefined) fs.rmSync(path.join(merged, rel), { force: true });
            else {
                fs.mkdirSync(path.dirname(path.join(merged, rel)), { recursive: true });
                fs.writeFileSync(path.join(merged, rel), content);
            }
        }
        if (tree.writes.size > 0) printBuiltChanges(ctx, staging.dir, merged, tree.writes, source.treePath, source.environment);
        if (!options.yes) {
            ctx.print("Preview only: nothing was written. Run again with --yes to write it.");
            return;
        }

        if (config.changes.length > 0) {
            const sourceDoc = readStackFile(ctx.root, sourceStack);
            for (const c of config.changes) {
                if (c.to === undefined) removeConfigValue(sourceDoc, c.key);
                else setConfigValue(sourceDoc, c.key, c.to);
            }
            const file = path.join(staging.dir, "source-stack.yaml");
            fs.writeFileSync(file, sourceDoc.toString());
            staging.setAside(stackFilePath(ctx.root, sourceStack));
            staging.place(file, stackFilePath(ctx.root, sourceStack));
        }
        for (const t of twinChanges) {
            if (t.changes.length === 0) continue;
            for (const c of t.changes) {
                if (c.to === undefined) removeConfigValue(t.doc, c.key);
                else setConfigValue(t.doc, c.key, c.to);
            }
            const file = path.join(staging.dir, `twin-${t.stack}.yaml`);
            fs.writeFileSync(file, t.doc.toString());
            staging.setAside(stackFilePath(ctx.root, t.stack));
            staging.place(file, stackFilePath(ctx.root, t.stack));
        }
        if (fs.existsSync(targetTree)) staging.setAside(targetTree);
        staging.place(merged, targetTree);
        staging.setAside(sandboxTree);
        staging.setAside(stackFilePath(ctx.root, name));
    });
    if (!options.yes) return;

    ctx.print(`Removed ${path.relative(ctx.root, sandboxTree)} and stacks/Pulumi.${name}.yaml.`);
    ctx.print("Next: open a merge request into main:");
    ctx.print(`  git add -A clusters stacks && git commit -m "Promote ${name} into ${source.environment}" && git push`);
    ctx.print(`Once merged, ${source.environment} reconciles it; check with kubectl get kustomizations -A.`);
}

/**
 * The promotion as Flux would apply it: the source's folder built from the checkout, then with the
 * merge in place, by the builder `npm run diff` uses. File names alone hide what a patch or a
 * substitution does to the objects.
 */
function printBuiltChanges(
    ctx: SandboxContext,
    scratch: string,
    merged: string,
    writes: Map<string, string | undefined>,
    treePath: string,
    environment: string,
): void {
    // The "after" side is the checkout's tree (all but hidden folders and npm's) with the merge
    // in the source's place, so paths the cluster folder points at resolve as they would after merge.
    const after = path.join(scratch, "built-after");
    fs.mkdirSync(after);
    for (const entry of fs.readdirSync(ctx.root)) {
        if (entry.startsWith(".") || entry === "node_modules") continue;
        fs.cpSync(path.join(ctx.root, entry), path.join(after, entry), { recursive: true, dereference: true });
    }
    fs.rmSync(path.join(after, treePath), { recursive: true, force: true });
    fs.cpSync(merged, path.join(after, treePath), { recursive: true });
    const diff = diffTrees(ctx.root, after, treePath);
    const summary = (c: string) => diff.changes.filter((x) => x.change === c).length;
    ctx.print(
        `What ${environment} will apply, as Flux builds it: +${summary("added")} ~${summary("changed")} -${summary("removed")}` +
            (diff.changes.length === 0 ? " (the files change, the objects do not)" : ""),
    );
    for (const danger of diff.dangers) ctx.print(`  !        ${danger}`);
    // A manifest file nothing applies is the commonest promotion slip: the kustomization.yaml was not told.
    for (const [rel, content] of writes) {
        const file = path.posix.join(treePath, rel);
        if (content === undefined || diff.sources.has(file) || !/\.ya?ml$/.test(rel)) continue;
        let objects: Manifest[] = [];
        try {
            objects = parseAllDocuments(content).map((d) => d.toJS() as Manifest);
        } catch {
            continue;
        }
        if (objects.some((m) => m?.apiVersion && m.kind && !m.apiVersion.startsWith("kustomize.config.k8s.io/")))
            ctx.print(`  !        ${file} is applied by nothing: list it in the resources of its folder's kustomization.yaml`);
    }
    for (const error of diff.errors) ctx.print(`  x        does not build: ${error}`);
    for (const c of diff.changes) {
        ctx.print(`  ${c.change.padEnd(8)} ${c.id}`);
        for (const line of c.diff.split("\n")) if (line !== "") ctx.print(`           ${line}`);
    }
}

export interface SandboxListing {
    name: string;
    source: string;
    owner: string;
    branch: string;
    age: string;
    ttl: string;
    expired: boolean;
    /** Whether the Pulumi backend has a stack of that name: undefined when it could not be asked. */
    inBackend?: boolean;
    /** Whether this branch has its stack file (false: a stack in the backend that no file here describes). */
    hasFile: boolean;
    backend: string;
}

function parseTtl(ttl: string): number {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[ttl.slice(-1) as "m" | "h" | "d"];
    return Number(ttl.slice(0, -1)) * unit;
}

function humanAge(ms: number): string {
    if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m`;
    if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)}h`;
    return `${Math.floor(ms / 86_400_000)}d`;
}

/** The sandboxes this branch's stack files describe. */
export function listSandboxes(ctx: Pick<SandboxContext, "root" | "now">): SandboxListing[] {
    return listStacks(ctx.root).flatMap((stack) => {
        const doc = readStackFile(ctx.root, stack);
        const source = configValue(doc, "sandbox.source");
        if (typeof source !== "string") return [];
        const age = ctx.now.getTime() - Date.parse(String(configValue(doc, "sandbox.createdAt")));
        // A sandbox forked before TTLs existed lives the default lifetime, as the program reads it.
        const ttl = configString(doc, "sandbox.ttl") ?? DEFAULT_SANDBOX_TTL;
        return [
            {
                name: stack,
                source,
                owner: configString(doc, "sandbox.owner") ?? "-",
                branch: configString(doc, "sync.branch") ?? DEFAULT_BRANCH,
                age: humanAge(Math.max(0, age)),
                ttl,
                expired: age > parseTtl(ttl),
                hasFile: true,
                backend: configString(doc, "cluster.backend") ?? "-",
            },
        ];
    });
}

/** The stacks the Pulumi backend holds for this project, or undefined when it cannot be asked. */
async function backendStacks(ctx: SandboxContext): Promise<string[] | undefined> {
    const answer = await askBackend(ctx);
    return "stacks" in answer ? answer.stacks : undefined;
}

/** The backend's stacks, or why it could not be asked (no CLI, not logged in, unreachable). */
async function askBackend(ctx: SandboxContext): Promise<{ stacks: string[] } | { why: string }> {
    try {
        const result = await ctx.run("pulumi", ["stack", "ls", "--json"]);
        if (result.code !== 0) return { why: (result.stderr.trim().split("\n").pop() ?? "") || `pulumi stack ls exited ${result.code}` };
        return { stacks: (JSON.parse(result.stdout) as { name: string }[]).map((s) => s.name.split("/").pop() ?? s.name) };
    } catch (e) {
        return { why: (e as NodeJS.ErrnoException).code === "ENOENT" ? "the pulumi CLI is not installed" : (e as Error).message };
    }
}

/** A sandbox as its stack tags in the backend describe it, or undefined for a stack without them. */
async function sandboxFromTags(ctx: SandboxContext, stack: string): Promise<SandboxListing | undefined> {
    const result = await ctx.run("pulumi", ["stack", "tag", "ls", "--json", "--stack", stack]).catch(() => undefined);
    if (!result || result.code !== 0) return undefined;
    let tags: Record<string, string>;
    try {
        tags = JSON.parse(result.stdout) as Record<string, string>;
    } catch {
        return undefined;
    }
    const createdAt = tags[SANDBOX_TAGS.createdAt];
    const ttl = tags[SANDBOX_TAGS.ttl] ?? DEFAULT_SANDBOX_TTL;
    if (!createdAt || Number.isNaN(Date.parse(createdAt)) || !TTL.test(ttl)) return undefined;
    const age = ctx.now.getTime() - Date.parse(createdAt);
    return {
        name: stack,
        source: tags[SANDBOX_TAGS.source] ?? "?",
        owner: tags[SANDBOX_TAGS.owner] ?? "?",
        branch: "?",
        age: humanAge(Math.max(0, age)),
        ttl,
        expired: age > parseTtl(ttl),
        inBackend: true,
        hasFile: false,
        backend: tags[SANDBOX_TAGS.backend] ?? "?",
    };
}

/**
 * Every sandbox the repository knows: from this branch's stack files and, when the CLI can ask, the
 * backend, which also holds sandboxes whose files live on other branches (described by their stack tags).
 */
export async function listWithBackend(ctx: SandboxContext): Promise<{ rows: SandboxListing[]; backendAsked: boolean }> {
    const rows = listSandboxes(ctx);
    const inBackend = await backendStacks(ctx);
    if (!inBackend) return { rows, backendAsked: false };
    const known = new Set(listStacks(ctx.root));
    for (const r of rows) r.inBackend = inBackend.includes(r.name);
    for (const name of inBackend.filter((n) => !known.has(n)).sort()) {
        rows.push(
            (await sandboxFromTags(ctx, name)) ?? {
                name,
                source: "?",
                owner: "?",
                branch: "?",
                age: "?",
                ttl: "?",
                expired: false,
                inBackend: true,
                hasFile: false,
                backend: "?",
            },
        );
    }
    return { rows, backendAsked: true };
}

export async function list(ctx: SandboxContext): Promise<void> {
    const { rows, backendAsked } = await listWithBackend(ctx);
    if (rows.length === 0) {
        ctx.print("No sandboxes. Create one with: npm run sandbox -- fork <name> --from development --branch <branch>");
        return;
    }
    const note = (r: SandboxListing) =>
        [
            r.expired ? "EXPIRED" : "",
            !r.hasFile ? "no stack file on this branch" : "",
            r.hasFile && r.inBackend === false ? "no stack in the backend (never brought up, or deleted)" : "",
        ]
            .filter(Boolean)
            .join("; ");
    const header = ["NAME", "OWNER", "SOURCE", "BRANCH", "AGE", "TTL", ""];
    const table = [header, ...rows.map((r) => [r.name, r.owner, r.source, r.branch, r.age, r.ttl, note(r)])];
    const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]?.length ?? 0)));
    for (const row of table)
        ctx.print(
            row
                .map((c, i) => c.padEnd(widths[i] ?? 0))
                .join("  ")
                .trimEnd(),
        );
    if (!backendAsked) ctx.print("(The Pulumi backend was not asked: the CLI is missing or not logged in. Only this branch's stack files are listed.)");
}

/**
 * Destroys every sandbox past its TTL, by the same safe path as `delete`; without `yes` it only says
 * which. `backend` limits it to one kind of cluster (the pipeline expires EKS sandboxes; kind ones live on
 * laptops). In the pipeline the files stay (`keepFiles`): removing them is a commit for their owner.
 */
export async function expire(ctx: SandboxContext, options: { yes?: boolean; backend?: "kind" | "eks"; keepFiles?: boolean } = {}): Promise<string[]> {
    const { rows } = await listWithBackend(ctx);
    const expired = rows.filter((r) => r.expired && (!options.backend || r.backend === options.backend));
    if (expired.length === 0) {
        ctx.print("No sandbox is past its TTL.");
        return [];
    }
    for (const r of expired) ctx.print(`${r.name} (owner ${r.owner}, forked from ${r.source}) is ${r.age} old, past its TTL of ${r.ttl}.`);
    if (!options.yes) {
        ctx.print(`Nothing was destroyed. Run again with --yes to destroy ${expired.length === 1 ? "it" : "them"}.`);
        return [];
    }
    const failed: string[] = [];
    for (const r of expired) {
        try {
            if (r.hasFile) await remove(ctx, r.name, { keepFiles: options.keepFiles });
            else await destroyStack(ctx, r.name);
        } catch (e) {
            // One sandbox that cannot go must not keep the others alive.
            ctx.print(`Could not expire ${r.name}: ${(e as Error).message}`);
            failed.push(r.name);
        }
    }
    if (failed.length > 0) throw new SandboxError(`Expiring failed for ${failed.join(", ")}; the others were destroyed.`);
    return expired.map((r) => r.name);
}

export async function remove(ctx: SandboxContext, name: string, options: { keepFiles?: boolean } = {}): Promise<void> {
    await withLocks(ctx.root, [checkStackName(name, "The sandbox name")], () => removeLocked(ctx, name, options));
}

async function removeLocked(ctx: SandboxContext, name: string, options: { keepFiles?: boolean }): Promise<void> {
    for (const line of recoverInterrupted(ctx.root)) ctx.print(line);
    readSandbox(ctx.root, name);
    try {
        await ctx.run("pulumi", ["version"]);
    } catch {
        throw new SandboxError(
            `The pulumi CLI is not on PATH. Install it, or run by hand: pulumi destroy --stack ${name} && pulumi stack rm --preserve-config --stack ${name}. ` +
                `If the sandbox was forked without the CLI and never brought up, it has no stack, only files: git rm -r clusters/${name} stacks/Pulumi.${name}.yaml`,
        );
    }
    // A fork written without the CLI, or never brought up, has no stack: only its files are left to remove.
    // When the backend cannot be asked, destroy runs and says what is wrong.
    const hasStack = (await stackExists(ctx, name)) !== false;
    if (!hasStack) {
        ctx.print(`The stack ${name} does not exist in the Pulumi backend (pulumi stack ls): there is no cluster to destroy.`);
    } else {
        await destroyStack(ctx, name);
    }
    if (options.keepFiles) {
        ctx.print(`Kept clusters/${name} and stacks/Pulumi.${name}.yaml: promote them with npm run sandbox -- promote ${name}`);
        return;
    }
    // Set aside, then dropped with the staging area: a kill half-way leaves both files or neither.
    await staged(ctx.root, async (staging) => {
        for (const target of [path.join(ctx.root, "clusters", name), stackFilePath(ctx.root, name)]) {
            if (fs.existsSync(target)) staging.setAside(target);
        }
    });
    ctx.print(`Deleted ${name}: ${hasStack ? "its cluster, its stack, " : ""}clusters/${name} and stacks/Pulumi.${name}.yaml.`);
}

/**
 * Destroys a sandbox's stack (Flux's objects, then Flux, then the cluster: the teardown in its state does
 * that in order) and removes it from the backend. Needs no stack file: destroy works from the state.
 */
async function destroyStack(ctx: SandboxContext, name: string): Promise<void> {
    ctx.print(`Destroying ${name}: Flux's objects first, then Flux, then the cluster. This takes a few minutes...`);
    await mustSucceed(ctx, "pulumi", ["destroy", "--yes", "--skip-preview", "--stack", name], true);
    ctx.print(`Removing the stack ${name} from the Pulumi backend...`);
    await mustSucceed(ctx, "pulumi", ["stack", "rm", "--yes", "--preserve-config", "--stack", name]);
}
