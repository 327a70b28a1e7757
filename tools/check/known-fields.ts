import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as ts from "typescript";
import { privateCacheDir } from "../../lib/private-cache";
import { REPO_ROOT } from "../../lib/project";

// The fields each kind has, read from the type declarations of the same models that validate it
// (@kubernetes-models/flux-cd, generated from Flux's CRDs; kubernetes-models, from the Kubernetes
// OpenAPI). Their JSON-schema validators accept fields they do not know, as the CRDs do; the API server
// then drops such a field without a word, so `spec.dependOn` silently loses the ordering. Knowing the
// fields lets the check call an unknown one an error.

/** A kind's fields: a name to its own fields, or "open" where any key is allowed (maps, free-form values). */
export type FieldTree = { fields: Map<string, FieldTree> } | "open";

const MAX_DEPTH = 16;

function treeOf(checker: ts.TypeChecker, type: ts.Type, depth: number, seen: Map<ts.Type, FieldTree>): FieldTree {
    const known = seen.get(type);
    if (known) return known;
    if (depth > MAX_DEPTH) return "open";
    const flags = type.getFlags();
    if (flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return "open";
    if (type.isUnion()) {
        const objects = type.types.filter((t) => t.getFlags() & ts.TypeFlags.Object);
        if (objects.length === 0) return "open";
        if (objects.length === 1) return treeOf(checker, objects[0]!, depth, seen);
        // Several shapes (rare in generated models): any field of any of them.
        const merged = new Map<string, FieldTree>();
        for (const t of objects) {
            const sub = treeOf(checker, t, depth, seen);
            if (sub === "open") return "open";
            for (const [k, v] of sub.fields) merged.set(k, v);
        }
        return { fields: merged };
    }
    if (checker.isArrayType(type)) {
        const element = checker.getTypeArguments(type as ts.TypeReference)[0];
        return element ? treeOf(checker, checker.getNonNullableType(element), depth + 1, seen) : "open";
    }
    if (!(flags & ts.TypeFlags.Object)) return "open";
    if (checker.getIndexInfosOfType(type).length > 0) return "open";
    const properties = type.getProperties();
    if (properties.length === 0) return "open";
    const tree: { fields: Map<string, FieldTree> } = { fields: new Map() };
    seen.set(type, tree);
    for (const p of properties) {
        const t = checker.getNonNullableType(checker.getTypeOfSymbol(p));
        if (t.getCallSignatures().length > 0) continue;
        tree.fields.set(p.name, treeOf(checker, t, depth + 1, seen));
    }
    return tree;
}

/**
 * The field trees of the given kinds, each as `module specifier` + kind (the model's interface is
 * `I<Kind>`), read in one TypeScript program. A kind whose declaration cannot be read is left out.
 */
export function knownFields(wanted: { specifier: string; kind: string }[], options: { cacheDir?: string } = {}): Map<string, FieldTree> {
    const dir = options.cacheDir ?? path.join(os.tmpdir(), "gitops-platform-known-fields");
    const cacheDir = privateCacheDir(dir) ? dir : undefined;
    // On disk, by the model package's version: reading the declarations takes a TypeScript program
    // (about a second); a tree read once serves every later `npm run check` on this machine.
    for (const k of wanted) {
        const id = `${k.specifier}/${k.kind}`;
        if (cache.has(id)) continue;
        const stored = cacheDir ? readStored(cacheDir, k) : undefined;
        if (stored) cache.set(id, stored);
    }
    // One TypeScript program per process for what is new: checking several trees reads each kind once.
    const kinds = wanted.filter((k) => !cache.has(`${k.specifier}/${k.kind}`));
    if (kinds.length > 0) {
        for (const [k, v] of readTrees(kinds)) {
            cache.set(k, v);
            const kind = kinds.find((x) => `${x.specifier}/${x.kind}` === k);
            if (kind && cacheDir) store(cacheDir, kind, v);
        }
    }
    return new Map(
        wanted.flatMap((k) => (cache.has(`${k.specifier}/${k.kind}`) ? [[`${k.specifier}/${k.kind}`, cache.get(`${k.specifier}/${k.kind}`)!] as const] : [])),
    );
}

const cache = new Map<string, FieldTree>();

/** The version of the package a model specifier is in (`@scope/name/...` or `name/...`). */
function packageVersion(specifier: string): string {
    const parts = specifier.split("/");
    const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
    try {
        return (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
    } catch {
        return "unknown";
    }
}

/**
 * Where a kind's tree is kept: the key names the model, its package's version and this format (raise
 * `v1` whenever `treeOf` changes what it reads, or trees of the old reading would be served).
 */
function storedFile(cacheDir: string, k: { specifier: string; kind: string }): string {
    const key = `v1:${k.specifier}/${k.kind}@${packageVersion(k.specifier)}`;
    return path.join(cacheDir, `${createHash("sha256").update(key).digest("hex").slice(0, 32)}.json`);
}

/** A tree as a list of nodes (types recur and refer to themselves): each a list of [field, node], -1 for open. */
type StoredTree = { root: number; nodes: [string, number][][] };

function store(cacheDir: string, k: { specifier: string; kind: string }, tree: FieldTree): void {
    const ids = new Map<FieldTree, number>();
    const nodes: [string, number][][] = [];
    const idOf = (t: FieldTree): number => {
        if (t === "open") return -1;
        const known = ids.get(t);
        if (known !== undefined) return known;
        const id = nodes.length;
        ids.set(t, id);
        const fields: [string, number][] = [];
        nodes.push(fields);
        for (const [name, sub] of t.fields) fields.push([name, idOf(sub)]);
        return id;
    };
    const stored: StoredTree = { root: idOf(tree), nodes };
    try {
        const file = storedFile(cacheDir, k);
        fs.writeFileSync(`${file}.${process.pid}`, JSON.stringify(stored), { mode: 0o600 });
        fs.renameSync(`${file}.${process.pid}`, file);
    } catch {
        // A cache that cannot be written is only slower.
    }
}

function readStored(cacheDir: string, k: { specifier: string; kind: string }): FieldTree | undefined {
    let stored: StoredTree;
    try {
        stored = JSON.parse(fs.readFileSync(storedFile(cacheDir, k), "utf8")) as StoredTree;
    } catch {
        return undefined;
    }
    const trees: { fields: Map<string, FieldTree> }[] = stored.nodes.map(() => ({ fields: new Map() }));
    stored.nodes.forEach((fields, i) => {
        for (const [name, sub] of fields) trees[i]!.fields.set(name, sub === -1 ? "open" : trees[sub]!);
    });
    return stored.root === -1 ? "open" : trees[stored.root];
}

function readTrees(kinds: { specifier: string; kind: string }[]): Map<string, FieldTree> {
    const out = new Map<string, FieldTree>();
    const file = path.join(REPO_ROOT, "__known_fields__.ts");
    const text = kinds.map((k, i) => `import type { I${k.kind} as T${i} } from "${k.specifier}/${k.kind}";\nexport declare const k${i}: T${i};`).join("\n");
    const host = ts.createCompilerHost({});
    const read = host.getSourceFile.bind(host);
    host.getSourceFile = (f, language) => (f === file ? ts.createSourceFile(f, text, language) : read(f, language));
    const exists = host.fileExists.bind(host);
    host.fileExists = (f) => f === file || exists(f);
    const program = ts.createProgram(
        [file],
        {
            noEmit: true,
            skipLibCheck: true,
            types: [],
            module: ts.ModuleKind.Node16,
            moduleResolution: ts.ModuleResolutionKind.Node16,
            target: ts.ScriptTarget.ES2022,
        },
        host,
    );
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(file);
    const module = source ? checker.getSymbolAtLocation(source) : undefined;
    if (!module) return out;
    const seen = new Map<ts.Type, FieldTree>();
    for (const symbol of checker.getExportsOfModule(module)) {
        const i = Number(symbol.name.slice(1));
        const k = kinds[i];
        const type = checker.getTypeOfSymbol(symbol);
        // An unresolved import is an error type with no properties: no tree, so nothing is called unknown.
        if (!k || type.getProperties().length === 0) continue;
        out.set(`${k.specifier}/${k.kind}`, treeOf(checker, type, 0, seen));
    }
    return out;
}

/** The fields of `value` its tree does not know, as dotted paths (lists indexed), `status` aside. */
export function unknownFields(value: unknown, tree: FieldTree, at = ""): string[] {
    if (tree === "open" || value === null || typeof value !== "object") return [];
    if (Array.isArray(value)) return value.flatMap((v, i) => unknownFields(v, tree, `${at}[${i}]`));
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
        const here = at ? `${at}.${k}` : k;
        if (!at && k === "status") return [];
        const sub = tree.fields.get(k);
        return sub === undefined ? [here] : unknownFields(v, sub, here);
    });
}
