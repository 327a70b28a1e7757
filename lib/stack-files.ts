import * as fs from "fs";
import * as path from "path";
import { Document, isCollection, parse as parseYaml, parseDocument, Scalar } from "yaml";
import { PROJECT } from "./project";

// Stack files (`stacks/Pulumi.<stack>.yaml`, via `stackConfigDir` in Pulumi.yaml): where they are,
// which exist, and their config read two ways: as the CLI hands it to the program, and as an editable
// YAML document (comments kept) for the sandbox commands.

/** A stack's file, relative to the repository root. */
export function stackFile(stack: string): string {
    return `stacks/Pulumi.${stack}.yaml`;
}

/** A stack's file, absolute, in the repository at `root`. */
export function stackFilePath(root: string, stack: string): string {
    return path.join(root, stackFile(stack));
}

/** The stack names, from the files in `<root>/stacks`. */
export function listStacks(root: string): string[] {
    const dir = path.join(root, "stacks");
    if (!fs.existsSync(dir)) return [];
    return fs
        .readdirSync(dir)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

/** A stack file's text, or undefined when the stack has no file. */
export function readStackFileText(root: string, stack: string): string | undefined {
    const file = stackFilePath(root, stack);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
}

/**
 * A stack file's config as the Pulumi CLI hands it to the program (PULUMI_CONFIG): every value a
 * string, objects and arrays JSON-encoded, booleans and numbers as their text.
 */
export function cliConfig(root: string, stack: string): Record<string, string> {
    const doc = parseYaml(fs.readFileSync(stackFilePath(root, stack), "utf8")) as { config?: Record<string, unknown> } | null;
    return Object.fromEntries(Object.entries(doc?.config ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

/** A stack file as a YAML document, comments kept; parse errors are in `errors`. */
export function readStackDocument(root: string, stack: string): Document {
    return parseDocument(fs.readFileSync(stackFilePath(root, stack), "utf8"));
}

/** Why a stack file cannot be read, naming it and the fix; undefined when it parses. */
export function stackFileProblem(root: string, stack: string): string | undefined {
    const error = readStackDocument(root, stack).errors[0];
    return error ? `${stackFile(stack)} is not valid YAML (${error.message.split("\n")[0] ?? ""}). Fix: repair the file` : undefined;
}

/** A config value of our namespace, as plain data; `key` may be dotted (`sync.branch`). */
export function configValue(doc: Document, key: string): unknown {
    const [top, ...rest] = key.split(".");
    const value = doc.getIn(["config", `${PROJECT}:${top}`, ...rest], false) as unknown;
    return isCollection(value) ? (value.toJSON() as unknown) : value;
}

/** A config value that is a scalar, as the string the CLI would hand the program; else undefined. */
export function configString(doc: Document, key: string): string | undefined {
    const value = configValue(doc, key);
    return typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : undefined;
}

/** The YAML path of a dotted key under the project namespace; a numeric segment is a list index. */
function yamlPath(key: string): (string | number)[] {
    const [top, ...rest] = key.split(".");
    return ["config", `${PROJECT}:${top}`, ...rest.map((seg) => (/^\d+$/.test(seg) ? Number(seg) : seg))];
}

/** Removes a config key (dotted path under the project namespace), if present. */
export function removeConfigValue(doc: Document, key: string): void {
    const pathTo = yamlPath(key);
    if (doc.hasIn(pathTo)) doc.deleteIn(pathTo);
}

export function setConfigValue(doc: Document, key: string, value: unknown): void {
    // Strings are quoted: a branch like "1.10" or a time stamp must not turn into a number or a date.
    const node = typeof value === "string" ? new Scalar(value) : doc.createNode(value);
    if (node instanceof Scalar && typeof value === "string") node.type = Scalar.QUOTE_DOUBLE;
    doc.setIn(yamlPath(key), node);
}
