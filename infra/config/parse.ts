import * as pulumi from "@pulumi/pulumi";
import { isMap, parseDocument } from "yaml";
import { PROJECT, REPO_ROOT, tierOf } from "../../lib/project";
import { stackFile as stackFileOf } from "../../lib/stack-files";
import { ConfigError, configErrorMap, ConfigProblem, issueKeys } from "./errors";
import { checkAlerts, checkEks, checkPlatformSource, fluxObjectsOf, checkProduction, checkSync, clusterConfig } from "./rules";
import { DEFAULTS, EnvironmentConfig, stackSchema } from "./schema";

// The config the Pulumi CLI hands the program, parsed once: schema first, then the rules, every
// problem collected before anything is thrown.

export interface ParseContext {
    stack: string;
    /** Where `clusters/` lives. @default the repository root */
    repoRoot?: string;
    /** Environment variables, for the token fallback. @default {} */
    env?: Record<string, string | undefined>;
    /** The stack file's text, to catch a token committed in plain text. @default not checked */
    stackFileText?: string;
    /** Keys the CLI says are secret (PULUMI_CONFIG_SECRET_KEYS), `project:key`. @default none */
    secretKeys?: string[];
}

const SECRET_KEYS = ["token", "alertWebhookUrl"] as const;

/**
 * Parses the config the Pulumi CLI hands the program (`project:key` to string, objects as JSON)
 * into an `EnvironmentConfig`, or throws one `ConfigError` listing every problem.
 */
export function parseConfig(raw: Record<string, string>, ctx: ParseContext): EnvironmentConfig {
    const stackFile = stackFileOf(ctx.stack);
    const repoRoot = ctx.repoRoot ?? REPO_ROOT;
    const problems: ConfigProblem[] = [];
    const report = (key: string, message: string) => problems.push({ key: `${PROJECT}:${key}`, message });

    const values: Record<string, unknown> = {};
    /** What the stack holds encrypted, decrypted: never quoted in a message, nor anything built from it. */
    const secretValues: string[] = [];
    for (const [rawKey, text] of Object.entries(raw)) {
        // The CLI's own spellings of a key: `key` (its project's namespace) and the legacy `ns:config:key`.
        const fullKey = normaliseKey(rawKey);
        const [namespace, key] = splitKey(fullKey);
        const isSecret = ctx.secretKeys?.some((k) => normaliseKey(k) === fullKey) ?? false;
        if (isSecret && text.length >= 2) secretValues.push(text);
        if (namespace !== PROJECT) {
            // Other namespaces belong to providers (aws:, kubernetes:); one a typo away from ours is a mistake.
            if (namespace && namespace !== PROJECT && editDistance(namespace, PROJECT) <= 2) {
                problems.push({ key: fullKey, message: `is in the namespace '${namespace}', which nothing reads. Fix: rename it to '${PROJECT}:${key}'` });
            }
            continue;
        }
        values[key] = decode(text);
        if (isSecret && !(SECRET_KEYS as readonly string[]).includes(key)) {
            report(
                key,
                `is stored as a secret, but it is not one, and reviewers could not read it. Fix: 'pulumi config set ${key} <value> -s ${ctx.stack}' without --secret`,
            );
        }
    }

    for (const key of SECRET_KEYS) {
        // What the CLI says is secret decides, whatever the file's spelling (a bare key, the legacy form, an
        // alias of a `secure:` map); the file is read only when the caller has no word from the CLI.
        const plain = ctx.secretKeys
            ? values[key] !== undefined && !ctx.secretKeys.some((k) => normaliseKey(k) === `${PROJECT}:${key}`)
            : storedInPlainText(ctx.stackFileText, key);
        if (plain) {
            report(
                key,
                `is stored in plain text in ${stackFile}. Fix: remove it from the file and run ` +
                    `'pulumi config set --secret ${key} <value> -s ${ctx.stack}'`,
            );
        }
    }

    // An unquoted time in an object reaches the program as Go's time.String() ("2026-11-24 18:00:00 +0000
    // UTC"): read as the time it is.
    const sandbox = values["sandbox"];
    if (sandbox && typeof sandbox === "object" && typeof (sandbox as Record<string, unknown>)["createdAt"] === "string") {
        const at = goTimeToIso((sandbox as Record<string, string>)["createdAt"] ?? "");
        if (at) (sandbox as Record<string, string>)["createdAt"] = at;
    }

    const parsed = stackSchema.safeParse(values, { error: configErrorMap });
    if (!parsed.success) {
        for (const issue of parsed.error.issues) {
            for (const key of issueKeys(issue)) report(key, issue.message);
        }
        throw new ConfigError(stackFile, redacted(problems, secretValues));
    }
    const config = parsed.data;
    const tier = tierOf(config.environment);

    const sync = checkSync(config, report, repoRoot);
    const platformSource = sync ? checkPlatformSource(config, sync.path, report, repoRoot) : undefined;
    checkProduction(config, tier, report, ctx.stack);
    checkEks(config, tier, report);
    const fluxObjects = sync && platformSource ? fluxObjectsOf(sync.path, report, repoRoot) : [];
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
        throw new ConfigError(stackFile, redacted(problems, secretValues));
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
        fluxObjects,
        token: pulumi.secret(tokenValue),
        protect: config.protect,
        alerts,
        sandbox: config.sandbox,
    };
}

/** A key as the CLI resolves it: a bare key is in its project's namespace, `ns:config:key` is `ns:key`. */
function normaliseKey(key: string): string {
    if (!key.includes(":")) return `${PROJECT}:${key}`;
    const legacy = /^([^:]+):config:(.+)$/.exec(key);
    return legacy ? `${legacy[1]}:${legacy[2]}` : key;
}

/** Problems with every decrypted value, and so anything built from one, replaced. */
function redacted(problems: ConfigProblem[], secrets: string[]): ConfigProblem[] {
    const longestFirst = [...secrets].sort((a, b) => b.length - a.length);
    return problems.map((p) => ({ ...p, message: longestFirst.reduce((m, s) => m.split(s).join("[secret]"), p.message) }));
}

/** Go's `time.Time.String()` ("2006-01-02 15:04:05.999999999 -0700 MST") as ISO 8601, or undefined. */
export function goTimeToIso(text: string): string | undefined {
    const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)? ([+-])(\d\d)(\d\d) \S+$/.exec(text);
    if (!m) return undefined;
    const date = new Date(`${m[1]}T${m[2]}${(m[3] ?? "").slice(0, 4)}${m[4]}${m[5]}:${m[6]}`);
    return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function splitKey(fullKey: string): [string, string] {
    const i = fullKey.indexOf(":");
    return i < 0 ? ["", fullKey] : [fullKey.slice(0, i), fullKey.slice(i + 1)];
}

/** The CLI passes every value as a string; objects, arrays, numbers and booleans as JSON. */
function decode(text: string): unknown {
    // Objects, lists and booleans come JSON-encoded. A scalar stays the string it is: an environment
    // name `123` or a token of digits is text, not a number.
    if (!/^\s*[[{]/.test(text) && text !== "true" && text !== "false") return text;
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/**
 * Whether the stack file holds `key` other than as `{secure: ...}`, in whatever YAML form (a string,
 * a number, a `!!binary` scalar). Read from the document, so aliases are not expanded.
 */
function storedInPlainText(stackFileText: string | undefined, key: string): boolean {
    if (!stackFileText) return false;
    const config = parseDocument(stackFileText).get("config");
    if (!isMap(config)) return false;
    const node = config.get(`${PROJECT}:${key}`, true);
    if (node === undefined) return false;
    return !(isMap(node) && node.has("secure"));
}

/** Levenshtein distance: how many single-character edits turn `a` into `b`. */
function editDistance(a: string, b: string): number {
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const next = [i];
        for (let j = 1; j <= b.length; j++) {
            next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
        }
        row = next;
    }
    return row[b.length] ?? 0;
}
