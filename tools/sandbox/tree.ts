import * as fs from "fs";
import * as path from "path";
import { Document, isMap, parseAllDocuments } from "yaml";
import { PLATFORM_SOURCE_NAME, type PlatformSourceKind, sameRepository, yamlFilesUnder } from "../../lib/gitops-tree";
import { listStacks, readStackDocument, stackFile } from "../../lib/stack-files";
import { isStackName } from "../../lib/validators";

// File work for the sandbox commands: stack files as YAML documents (comments kept), cluster folders
// copied and rewritten, and every change staged first so a failure leaves the repository untouched.

export class SandboxError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "SandboxError";
    }
}

/** A stack name as Pulumi allows it: never a path, so it cannot reach outside `stacks/`. */
export function checkStackName(name: string, what: string): string {
    if (!isStackName(name)) {
        throw new SandboxError(`${what} '${name}' is not a stack name (letters, digits, '.', '_' and '-'; no paths).`);
    }
    return name;
}

/**
 * A cluster folder a stack file names, resolved: it must lie under `clusters/` of this repository once
 * links are followed. `origin` says where the path came from, for the refusal.
 */
export function clusterFolder(root: string, relative: string, origin: string): string {
    const clusters = fs.realpathSync(path.join(root, "clusters"));
    const full = path.resolve(root, relative);
    const real = fs.existsSync(full) ? fs.realpathSync(full) : path.resolve(clusters, path.relative(path.join(root, "clusters"), full));
    if (!real.startsWith(clusters + path.sep)) {
        throw new SandboxError(
            `${origin} is '${relative}', which is not a folder under clusters/ of this repository. Fix the stack file; nothing was changed.`,
        );
    }
    return full;
}

/** Refuses a tree holding a link that leads outside `clusters/` or `platform/`: copying it would write through it. */
export function checkLinks(root: string, dir: string): void {
    const allowed = ["clusters", "platform"].map((d) => fs.realpathSync(path.join(root, d)) + path.sep);
    const walk = (current: string) => {
        for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
            const full = path.join(current, entry.name);
            if (entry.isSymbolicLink()) {
                const target = fs.existsSync(full) ? fs.realpathSync(full) : "";
                if (!allowed.some((a) => target.startsWith(a))) {
                    throw new SandboxError(
                        `${path.relative(root, full)} is a link to ${target || "nothing"}, outside clusters/ and platform/. Replace it with a file; nothing was changed.`,
                    );
                }
            } else if (entry.isDirectory()) walk(full);
        }
    };
    walk(dir);
}

/** A stack file, parsed with its comments. */
export function readStackFile(root: string, stack: string): Document {
    const file = stackFile(stack);
    if (!fs.existsSync(path.join(root, file))) {
        const known = listStacks(root);
        throw new SandboxError(`There is no stack '${stack}' (no ${file}). Stacks: ${known.join(", ") || "none"}.`);
    }
    const doc = readStackDocument(root, stack);
    if (doc.errors.length > 0) throw new SandboxError(`${file} is not valid YAML: ${doc.errors[0]?.message ?? ""}`);
    return doc;
}

/** Removes every encrypted (`secure:`) value, which only decrypts in the stack that wrote it. */
export function dropSecureValues(doc: Document): string[] {
    const dropped: string[] = [];
    const config = doc.get("config");
    if (!isMap(config)) return dropped;
    for (const pair of config.items) {
        const value = pair.value;
        if (isMap(value) && value.has("secure")) {
            dropped.push(String(pair.key));
            config.delete(pair.key);
        }
    }
    for (const key of ["encryptionsalt", "secretsprovider", "encryptedkey"]) doc.delete(key);
    return dropped;
}

export interface Retarget {
    /**
     * Replaces `spec.ref` of the `platform` GitRepository / OCIRepository and of every other source of
     * the same repository (`id` is `Kind/namespace/name`), when given.
     */
    sourceRef?: (kind: PlatformSourceKind, ref: Record<string, string>, id: string) => Record<string, string>;
    /** Replaces `postBuild.substitute.cluster_env` in Kustomizations. */
    clusterEnv: string;
}

export interface Retargeted {
    /** Files rewritten, relative to the folder. */
    changed: string[];
    /** Sources of other repositories, kept as they are: `Kind namespace/name (url)`. */
    leftAlone: string[];
}

const isSourceKind = (kind: unknown): kind is PlatformSourceKind => kind === "GitRepository" || kind === "OCIRepository";
/** A scalar of a parsed document as text; anything else (a map where a name belongs) as `fallback`. */
const text = (v: unknown, fallback: string) => (typeof v === "string" || typeof v === "number" ? String(v) : fallback);

/**
 * Rewrites a copied cluster folder in place: the refs of the sources that follow this repository and
 * the environment name the platform layers substitute. YAML is parsed and edited, so comments and
 * layout survive. A second GitRepository of this repository (another path, another interval) must move
 * with the `platform` one, or the sandbox would run half its layers from the source's branch.
 */
export function retargetTree(dir: string, change: Retarget): Retargeted {
    const files = yamlFilesUnder(dir, "").map((rel) => {
        const content = fs.readFileSync(path.join(dir, rel), "utf8");
        const docs = parseAllDocuments(content);
        if (!Array.isArray(docs)) return { rel, docs: [] };
        for (const doc of docs) if (doc.errors.length > 0) throw new SandboxError(`${rel} is not valid YAML: ${doc.errors[0]?.message ?? ""}`);
        return { rel, docs };
    });
    const platformUrl = files
        .flatMap((f) => f.docs)
        .filter((d) => isSourceKind(d.get("kind")) && d.getIn(["metadata", "name"]) === PLATFORM_SOURCE_NAME)
        .map((d) => d.getIn(["spec", "url"]))
        .find((u): u is string => typeof u === "string");
    const out: Retargeted = { changed: [], leftAlone: [] };
    for (const { rel, docs } of files) {
        let touched = false;
        for (const doc of docs) {
            const kind = doc.get("kind");
            const name = text(doc.getIn(["metadata", "name"]), "");
            const namespace = text(doc.getIn(["metadata", "namespace"]), "default");
            if (isSourceKind(kind)) {
                const url = doc.getIn(["spec", "url"]);
                const ours = name === PLATFORM_SOURCE_NAME || (typeof url === "string" && platformUrl !== undefined && sameRepository(url, platformUrl));
                if (!ours) out.leftAlone.push(`${kind} ${namespace}/${name} (${typeof url === "string" ? url : "no url"})`);
                else if (change.sourceRef) {
                    const ref = (doc.getIn(["spec", "ref"]) as { toJSON(): Record<string, string> } | undefined)?.toJSON() ?? {};
                    const next = change.sourceRef(kind, ref, `${kind}/${namespace}/${name}`);
                    if (JSON.stringify(next) !== JSON.stringify(ref)) {
                        doc.setIn(["spec", "ref"], doc.createNode(next));
                        touched = true;
                    }
                }
            }
            if (kind === "Kustomization" && doc.hasIn(["spec", "postBuild", "substitute", "cluster_env"])) {
                if (doc.getIn(["spec", "postBuild", "substitute", "cluster_env"]) !== change.clusterEnv) {
                    doc.setIn(["spec", "postBuild", "substitute", "cluster_env"], change.clusterEnv);
                    touched = true;
                }
            }
        }
        if (touched) {
            fs.writeFileSync(path.join(dir, rel), joinDocuments(docs.map((d) => d.toString())));
            out.changed.push(rel);
        }
    }
    return out;
}

/** Each source's ref in a cluster folder, by `Kind/namespace/name`. */
export function sourceRefs(dir: string): Map<string, Record<string, string>> {
    const refs = new Map<string, Record<string, string>>();
    if (!fs.existsSync(dir)) return refs;
    for (const rel of yamlFilesUnder(dir, "")) {
        for (const doc of parseAllDocuments(fs.readFileSync(path.join(dir, rel), "utf8"))) {
            const kind = doc.get("kind");
            if (!isSourceKind(kind)) continue;
            const ref = (doc.getIn(["spec", "ref"]) as { toJSON(): Record<string, string> } | undefined)?.toJSON?.() ?? {};
            refs.set(`${kind}/${text(doc.getIn(["metadata", "namespace"]), "default")}/${text(doc.getIn(["metadata", "name"]), "")}`, ref);
        }
    }
    return refs;
}

/** Joins documents with `---`, the way they were read (a document's own `---` is kept by `toString`). */
function joinDocuments(texts: string[]): string {
    return texts.map((t, i) => (i === 0 || t.startsWith("---") ? t : `---\n${t}`)).join("");
}

/**
 * A scratch folder inside the repository (so renames out of it stay on one file system), and a
 * journal of what was moved into place, undone in reverse if anything fails before `commit`.
 */
/** What a staging area has moved so far, written before each move, so an interrupted run can be undone. */
interface Journal {
    pid: number;
    /** In order: a path placed (to remove), or a path set aside (to restore from `aside`). */
    moves: ({ placed: string } | { target: string; aside: string })[];
}

export class Staging {
    readonly dir: string;
    private readonly undo: (() => void | Promise<unknown>)[] = [];
    private readonly journal: Journal = { pid: process.pid, moves: [] };

    constructor(readonly root: string) {
        this.dir = fs.mkdtempSync(path.join(root, ".sandbox-staging-"));
        this.record();
    }

    /** Rewritten whole (temp file, then rename), so a kill never leaves half a journal. */
    private record(): void {
        const file = path.join(this.dir, "journal.json");
        fs.writeFileSync(`${file}.tmp`, JSON.stringify(this.journal));
        fs.renameSync(`${file}.tmp`, file);
    }

    /** Moves a staged path to `target`, which must not exist. */
    place(staged: string, target: string): void {
        if (fs.existsSync(target)) throw new SandboxError(`${path.relative(this.root, target)} appeared while working; nothing was changed.`);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        this.journal.moves.push({ placed: target });
        this.record();
        fs.renameSync(staged, target);
        this.undo.push(() => fs.rmSync(target, { recursive: true, force: true }));
    }

    /** Moves `target` aside so it can be replaced; restored on rollback, deleted on commit. */
    setAside(target: string): void {
        const aside = path.join(this.dir, `aside-${this.undo.length}`);
        this.journal.moves.push({ target, aside });
        this.record();
        fs.renameSync(target, aside);
        this.undo.push(() => {
            fs.rmSync(target, { recursive: true, force: true });
            fs.renameSync(aside, target);
        });
    }

    /** Something else to undo if a later step fails (e.g. a stack created in the Pulumi backend). */
    onRollback(step: () => void | Promise<unknown>): void {
        this.undo.push(step);
    }

    async rollback(): Promise<void> {
        for (const step of this.undo.reverse()) {
            try {
                await step();
            } catch {
                // keep undoing the rest
            }
        }
        fs.rmSync(this.dir, { recursive: true, force: true });
    }

    commit(): void {
        // The journal goes first: a run killed while its staging area is being removed has nothing to undo.
        fs.rmSync(path.join(this.dir, "journal.json"), { force: true });
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

/**
 * Runs `work` holding `.sandbox-lock-<name>` for each name (in name order, so two commands never wait on
 * each other): a second command on the same sandbox or stack is refused at once, whichever command it is.
 * A lock whose process is gone (killed) is taken over.
 */
export async function withLocks<T>(root: string, names: string[], work: () => Promise<T>): Promise<T> {
    const held: string[] = [];
    try {
        for (const name of [...new Set(names)].sort()) {
            const file = path.join(root, `.sandbox-lock-${name}`);
            for (let attempt = 0; ; attempt++) {
                try {
                    // O_EXCL: of two commands creating it at once, exactly one succeeds.
                    fs.writeFileSync(file, String(process.pid), { flag: "wx" });
                    held.push(file);
                    break;
                } catch (e) {
                    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
                    const holder = Number.parseInt(fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "", 10);
                    // Only a lock naming a process that is gone is stale; one without a process number may be
                    // a lock being written this instant.
                    if (attempt > 0 || !(holder > 0) || alive(holder)) {
                        throw new SandboxError(
                            holder > 0
                                ? `Another sandbox command (process ${holder}) is working on ${name}; nothing was changed. Run this again when it has finished.`
                                : `Another sandbox command is working on ${name}; nothing was changed. Run this again when it has finished; if none is running, delete ${path.relative(root, file)}.`,
                        );
                    }
                    fs.rmSync(file, { force: true });
                }
            }
        }
        return await work();
    } finally {
        for (const file of held) fs.rmSync(file, { force: true });
    }
}

/**
 * Undoes what an interrupted run (killed, its process gone) moved, from its journal, and removes its
 * staging folder. Returns one line per run it found. A run whose process still lives is left alone.
 */
export function recoverInterrupted(root: string): string[] {
    const found: string[] = [];
    for (const entry of fs.readdirSync(root)) {
        if (!entry.startsWith(".sandbox-staging-")) continue;
        const dir = path.join(root, entry);
        const file = path.join(dir, "journal.json");
        const journal = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as Journal) : { pid: 0, moves: [] };
        if (journal.pid && alive(journal.pid)) continue;
        for (const move of [...journal.moves].reverse()) {
            if ("placed" in move) {
                fs.rmSync(move.placed, { recursive: true, force: true });
            } else if (fs.existsSync(move.aside)) {
                fs.rmSync(move.target, { recursive: true, force: true });
                fs.renameSync(move.aside, move.target);
            }
        }
        fs.rmSync(dir, { recursive: true, force: true });
        found.push(`Found a sandbox run interrupted at step ${journal.moves.length} (process ${journal.pid || "unknown"}): undid it.`);
    }
    return found;
}

/** Runs `work` with a staging area: everything it placed is undone if it throws. */
export async function staged<T>(root: string, work: (s: Staging) => Promise<T>): Promise<T> {
    const staging = new Staging(root);
    try {
        const result = await work(staging);
        staging.commit();
        return result;
    } catch (e) {
        await staging.rollback();
        throw e;
    }
}
