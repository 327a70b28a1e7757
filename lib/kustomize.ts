import { spawnSync } from "child_process";
import { createHash } from "crypto";
import { privateCacheDir } from "./private-cache";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Manifest, parseManifests } from "./gitops-tree";

// `kubectl kustomize`, run the way the checks and the program need it: offline, bounded, and once per
// content of what it reads. kubectl bundles kustomize v5, the same kustomize API Flux builds with.

/** A kustomization entry kustomize would fetch: a URL, a git remote, or a `host/org/repo` path with a ref. */
export function isRemote(entry: string): boolean {
    return (
        /^[a-z][a-z0-9+.-]*:\/\//i.test(entry) ||
        /^git(@|::)/.test(entry) ||
        /^(github\.com|gitlab\.com|bitbucket\.org)\//.test(entry) ||
        /[?&]ref=/.test(entry)
    );
}

/** What one build gave: the objects, or why it failed ("missing": no kubectl on PATH). */
export type KustomizeResult = { manifests: Manifest[] } | { problem: string };

/** Builds the kustomization in an absolute folder. */
export type Kustomize = (dir: string) => KustomizeResult;

/**
 * Limits of one `kubectl kustomize` run: trees of tens of MB build well within them. Memory is capped as
 * address space (`ulimit -v`, where the shell supports it): Go reserves about 1 GiB of it at start, so
 * the cap must stay well above that.
 */
export const KUSTOMIZE_LIMITS = { timeoutMs: 60_000, maxOutputBytes: 256 * 1024 * 1024, maxAddressSpaceBytes: 4 * 1024 * 1024 * 1024 };

/**
 * kubectl logs a failure through klog, and a long error as a block: `E1124 … run.go:72] "command failed"
 * err=<` then tab-indented lines, then `>`; a short one on one line as `err="…"`. The whole reason, either way.
 */
export function klogReason(stderr: string): string {
    const block = /err=<\n([\s\S]*?)\n\s*>/.exec(stderr);
    if (block?.[1]) {
        return block[1]
            .split("\n")
            .map((l) => l.replace(/^\t/, "").trimEnd())
            .join("\n")
            .trim();
    }
    const line = stderr.trim().split("\n")[0] ?? "";
    return (/err="(.*)"$/.exec(line)?.[1] ?? line).replace(/\\"/g, '"').replace(/\\n/g, "\n");
}

function run(dir: string): KustomizeResult {
    const kib = Math.floor(KUSTOMIZE_LIMITS.maxAddressSpaceBytes / 1024);
    // sh sets the cap and becomes kubectl; a shell that cannot set it (macOS's for -v) runs kubectl uncapped.
    const capped = `if (ulimit -v ${kib}) 2>/dev/null; then ulimit -v ${kib}; fi; command -v kubectl >/dev/null || exit 127; exec kubectl "$@"`;
    const result = spawnSync("sh", ["-c", capped, "sh", "kustomize", "--load-restrictor", "LoadRestrictionsNone", dir], {
        encoding: "utf8",
        timeout: KUSTOMIZE_LIMITS.timeoutMs,
        maxBuffer: KUSTOMIZE_LIMITS.maxOutputBytes,
        // Offline by contract: a fetch kustomize might still try goes to a closed local port.
        env: {
            ...process.env,
            HTTP_PROXY: "http://127.0.0.1:9",
            HTTPS_PROXY: "http://127.0.0.1:9",
            NO_PROXY: "",
            http_proxy: "",
            https_proxy: "",
            no_proxy: "",
        },
    });
    const code = (result.error as NodeJS.ErrnoException | undefined)?.code;
    if (code === "ENOENT" || result.status === 127) return { problem: "missing" };
    // Go's runtime, short of address space, dies with one of these (at start, or when the heap grows).
    if (result.status !== 0 && /out of memory|cannot allocate memory|failed to reserve/i.test(result.stderr ?? "")) {
        return { problem: `it needed more than ${KUSTOMIZE_LIMITS.maxAddressSpaceBytes / 1024 / 1024} MiB of memory` };
    }
    if (code === "ENOBUFS") return { problem: `its output is larger than ${KUSTOMIZE_LIMITS.maxOutputBytes / 1024 / 1024} MiB` };
    if (code === "ETIMEDOUT") return { problem: `it did not finish within ${KUSTOMIZE_LIMITS.timeoutMs / 1000} s` };
    if (result.status !== 0) return { problem: klogReason(result.stderr || String(result.error)) };
    try {
        return { manifests: parseManifests(result.stdout, `kubectl kustomize ${dir}`) };
    } catch (e) {
        return { problem: `its output cannot be read: ${(e as Error).message}` };
    }
}

/**
 * A digest of everything under the folders a build reads (its own and the ones it names, transitively),
 * by their paths relative to the first: two copies of a tree build alike, and are built once.
 */
function digestOf(dirs: string[]): string {
    const hash = createHash("sha256");
    // A wrapper names its repository's folders by path from the temporary folder, so it differs per
    // copy of a tree; it is keyed by what it says relative to that repository instead.
    const wrapper = dirs[0] ? WRAPPERS.get(dirs[0]) : undefined;
    const walk = (dir: string): void => {
        if (!fs.existsSync(dir)) {
            hash.update(`missing:${dir}`);
            return;
        }
        for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            hash.update(e.name);
            if (e.isDirectory()) walk(path.join(dir, e.name));
            else if (e.isFile()) hash.update(fs.readFileSync(path.join(dir, e.name)));
        }
    };
    for (const d of dirs) {
        if (wrapper && d === dirs[0]) {
            hash.update(wrapper.identity);
            continue;
        }
        hash.update(path.relative(wrapper?.root ?? dirs[0] ?? d, d));
        walk(d);
    }
    return hash.digest("hex");
}

/** Wrapper folders of this process, with the repository they build from and what they say relative to it. */
const WRAPPERS = new Map<string, { root: string; identity: string }>();

/** Stands for the built folder's path in a stored result. */
const HERE = "\u0000here\u0000";

/**
 * `kubectl kustomize`, each distinct content built once per process (and, given `cacheDir`, once per
 * machine: the program reads the same folders on every preview). `reads` lists the folders a build of
 * `dir` may read besides its own, so the cache key changes when a base changes.
 */
export function kubectlKustomize(options: { cacheDir?: string; reads?: (dir: string) => string[] } = {}): Kustomize {
    const memo = new Map<string, KustomizeResult>();
    const cacheDir = options.cacheDir && privateCacheDir(options.cacheDir) ? options.cacheDir : undefined;
    return (dir) => {
        const key = `${digestOf([dir, ...(options.reads?.(dir) ?? [])])}:${JSON.stringify(KUSTOMIZE_LIMITS)}`;
        // Kept with the folder's own path left out, so a copy elsewhere reads its own path in a message.
        const here = (r: KustomizeResult): KustomizeResult => ("problem" in r ? { problem: r.problem.split(HERE).join(dir) } : r);
        const known = memo.get(key);
        if (known) return here(known);
        const file = cacheDir ? path.join(cacheDir, `${createHash("sha256").update(key).digest("hex")}.json`) : undefined;
        if (file && fs.existsSync(file)) {
            const cached = JSON.parse(fs.readFileSync(file, "utf8")) as KustomizeResult;
            memo.set(key, cached);
            return here(cached);
        }
        const built = run(dir);
        const result = "problem" in built ? { problem: built.problem.split(dir).join(HERE) } : built;
        memo.set(key, result);
        if (file && "manifests" in result) {
            // What a build yields may hold a Secret of the tree: readable by this user alone, in a shared tmp.
            const tmp = `${file}.${process.pid}`;
            fs.writeFileSync(tmp, JSON.stringify(result), { mode: 0o600 });
            fs.renameSync(tmp, file);
        }
        return here(result);
    };
}

let parent: string | undefined;

/**
 * Where wrapper kustomizations are written: one folder per machine, so a build is keyed alike in every
 * process; a private folder of this process when that one is not this user's alone.
 */
export function wrapperParent(): string {
    if (parent) return parent;
    const shared = path.join(os.tmpdir(), "gitops-platform-flux-build");
    parent = privateCacheDir(shared) ? shared : fs.mkdtempSync(path.join(os.tmpdir(), "gitops-platform-flux-build-"));
    return parent;
}

/**
 * A folder outside the repository holding a kustomization Flux would generate or extend, written once per
 * content: the same build gets the same folder (so the same cache key) in every process. A file found
 * there is used only if it says exactly that.
 */
export function wrapperDir(kustomization: string, repository?: { root: string; identity: string }): string {
    const dir = path.join(wrapperParent(), createHash("sha256").update(kustomization).digest("hex").slice(0, 24));
    if (repository) WRAPPERS.set(dir, repository);
    const file = path.join(dir, "kustomization.yaml");
    const found = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
    if (found !== kustomization) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const tmp = `${file}.${process.pid}`;
        fs.writeFileSync(tmp, kustomization, { mode: 0o600 });
        fs.renameSync(tmp, file);
    }
    return dir;
}
