// Checks of values people type (URLs, branch names, CIDRs, names), each returning why a value is not
// acceptable, or undefined. Pulumi-free: the program's config schema and the sandbox tool share them.

/** A DNS-1123 label: what names a kind cluster, a namespace or a sandbox. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A sandbox's time to live: minutes, hours or days. */
export const TTL = /^[1-9][0-9]*(m|h|d)$/;

/**
 * A URL as it may be quoted in a message, a log or a job output: any user-info (`user:token@`) replaced,
 * whether or not the rest parses as a URL.
 */
export function redactUrl(url: string): string {
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, "$1***@");
}

/** Why a URL cannot carry our token, or undefined when it can. */
export function httpsUrlProblem(url: string): string | undefined {
    // Flux gets the URL exactly as written: what a lenient parser would "repair" is refused, not passed on.
    // oxlint-disable-next-line no-control-regex -- control characters are exactly what is refused here
    if (/[\s\\]/.test(url) || /[\x00-\x1f\x7f]/.test(url)) {
        return `'${redactUrl(url)}' contains white space, a control character or a backslash. Fix: write the URL plainly, e.g. 'https://gitlab.com/group/project.git'`;
    }
    if (/^(ssh:\/\/|[\w.-]+@[\w.-]+:)/.test(url)) {
        return `'${redactUrl(url)}' is an SSH URL, but Flux authenticates here with a token over HTTPS. Fix: use the https:// URL of the repository`;
    }
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        return `'${redactUrl(url)}' is not a URL. Fix: use e.g. 'https://gitlab.com/group/project.git'`;
    }
    if (parsed.protocol !== "https:" || !url.startsWith("https://")) {
        return `'${redactUrl(url)}' is not https, and the token must not cross the network in clear text. Fix: use https://`;
    }
    // A host with letters outside ASCII can look like a familiar one and belong to someone else, who would
    // receive the token: shown as the name DNS really resolves (punycode), and taken only written so.
    const host = /^https:\/\/([^/?#]*)/.exec(url)?.[1] ?? "";
    if (/[^\u0020-\u007e]/.test(host)) {
        return `'${redactUrl(url)}' names the host ${parsed.hostname} (its letters are not all ASCII, and may only look like a familiar name). Fix: if that host is really meant, write it as ${parsed.hostname}`;
    }
    if (parsed.username || parsed.password) {
        return `'${redactUrl(url)}' embeds credentials. Fix: remove them from the URL; the token comes from the 'token' key`;
    }
    return undefined;
}

/** Why a name is not a usable Git branch (the rules of `git check-ref-format --branch`), or undefined. */
export function gitBranchProblem(branch: string): string | undefined {
    const fix = "Fix: use a branch name like 'main' or 'feature/sandbox-a'";
    if (branch.length === 0) return `is empty. ${fix}`;
    if (branch.startsWith("refs/")) return `'${branch}' is a full ref. Fix: give the branch name alone, e.g. 'main'`;
    if (/\s/.test(branch)) return `'${branch}' contains white space. ${fix}`;
    // oxlint-disable-next-line no-control-regex -- control characters are exactly what Git forbids here
    if (/[~^:?*[\\\x00-\x1f\x7f]/.test(branch)) return `'${branch}' contains a character Git forbids in ref names. ${fix}`;
    if (branch.includes("..") || branch.includes("@{") || branch.includes("//")) {
        return `'${branch}' contains '..', '@{' or '//', which Git forbids. ${fix}`;
    }
    if (/^[-/.]|[/.]$|\.lock$|\/\./.test(branch) || branch === "@") {
        return `'${branch}' starts or ends in a way Git forbids. ${fix}`;
    }
    return undefined;
}

/** Why a string is not an IPv4 CIDR block with its host bits clear, or undefined. */
export function cidrProblem(value: string): string | undefined {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
    const octets = m ? m.slice(1, 5).map(Number) : [];
    const prefix = m ? Number(m[5]) : -1;
    if (!m || octets.some((o) => o > 255) || prefix > 32) {
        return `'${value}' is not an IPv4 CIDR block. Fix: e.g. '203.0.113.0/24'`;
    }
    const address = octets.reduce((a, o) => a * 256 + o, 0);
    const size = 2 ** (32 - prefix);
    if (address % size !== 0) {
        const network = address - (address % size);
        const text = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join(".");
        return `'${value}' has host bits set. Fix: use '${text}/${prefix}'`;
    }
    return undefined;
}

/** Seconds in a Go duration such as "10m" or "1h30m" (as Flux and the operator write them). */
export function durationSeconds(duration: string): number {
    const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
    let total = 0;
    for (const [, amount, unit] of duration.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) total += Number(amount) * (units[unit ?? "s"] ?? 0);
    return total;
}

/**
 * Whether a name is a Pulumi stack name (letters, digits, '.', '_' and '-'), and so never a path, shell
 * syntax, a glob or two words.
 */
export function isStackName(name: string): boolean {
    return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) && !name.includes("..");
}
