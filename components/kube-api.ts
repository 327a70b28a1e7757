// What the two providers that talk to a cluster's API (the Flux teardown and the Flux readiness gate)
// share: loading @kubernetes/client-node, telling a transient fault from an answer, and retrying within
// a deadline. Self-contained like them: Pulumi serialises each provider with what it references.

/** @kubernetes/client-node, loaded the one way that works in a serialised provider. */
export async function importClientNode(): Promise<typeof import("@kubernetes/client-node", { with: { "resolution-mode": "import" } })> {
    // client-node is an ES module: import it dynamically (a CommonJS `require` fails on older Node 20s).
    // oxlint-disable-next-line typescript/no-implied-eval -- a real import(), which neither a CommonJS build nor the closure serialiser may rewrite
    const importEsm = new Function("specifier", "return import(specifier)") as (
        s: string,
    ) => Promise<typeof import("@kubernetes/client-node", { with: { "resolution-mode": "import" } })>;
    return importEsm("@kubernetes/client-node");
}

/** The HTTP status of a failed client-node call, if it got that far. */
export function statusOf(error: unknown): number | undefined {
    const code = (error as { code?: unknown }).code;
    return typeof code === "number" ? code : undefined;
}

/** The API's own words for a failed request: the Status message when there is one. */
export function apiMessage(error: unknown): string {
    const body = (error as { body?: unknown }).body;
    if (typeof body === "string") {
        try {
            const message = (JSON.parse(body) as { message?: unknown }).message;
            if (typeof message === "string") return message;
        } catch {
            // not JSON: fall back to the error itself
        }
    }
    return (error as Error)?.message ?? String(error);
}

/**
 * A fault worth trying again: the API server is busy, electing a leader, behind a flaky proxy, or the
 * request timed out. Anything else (401, 403, 422, a 404 the caller did not expect) is the answer.
 */
export function isTransient(error: unknown): boolean {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "number") return code >= 500 || code === 409 || code === 429;
    return isUnreachable(error) || /ECONNRESET|EPIPE|request timed out/.test(`${String(code)} ${(error as Error)?.message ?? ""}`);
}

/** True for errors that mean the API server cannot be reached at all (e.g. the cluster is gone). */
export function isUnreachable(error: unknown): boolean {
    const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
    const text = [(error as { code?: string })?.code, (error as Error)?.message, cause?.code, cause?.message].join(" ");
    return /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|getaddrinfo|socket hang up|fetch failed/.test(text);
}

/**
 * Time as the providers see it: real in `pulumi up` and `pulumi destroy`, a virtual one in the tests, which
 * drive simulated controllers with it instead of waiting (and so never assert wall-clock time).
 */
export interface Clock {
    now(): number;
    sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RetryOptions {
    /** Nothing is retried past this instant (ms since the epoch). */
    deadline: number;
    /** The first backoff; doubled on each try, at most 5 s. */
    pollMs: number;
    /** How long one request may take before it counts as failed (and is retried). @default 30000 */
    requestTimeoutMs?: number;
    log?: (line: string) => void;
    /** @default realClock */
    clock?: Clock;
}

/**
 * Makes one API call with a time limit, retried with backoff while the fault is transient and the
 * deadline allows; then one plain Error (never a subclass: Pulumi's closure serialiser drops a subclass's
 * message, pulumi/pulumi#10974) saying `${prefix} ${what}`, the API's message and the number of tries.
 */
export async function withRetries<T>(prefix: string, what: string, call: () => Promise<T>, options: RetryOptions): Promise<T> {
    const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    const clock = options.clock ?? realClock;
    let lastAnswer: unknown;
    for (let tries = 1; ; tries++) {
        // The request's own limit is real time: it bounds a connection that never answers.
        const limit = Math.max(1, Math.min(requestTimeoutMs, options.deadline - clock.now()));
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
            return await Promise.race([
                call(),
                new Promise<never>((_, reject) => {
                    timer = setTimeout(() => reject(new Error(`request timed out after ${Math.round(limit / 1000)}s`)), limit);
                }),
            ]);
        } catch (caught) {
            // A last try cut short by the deadline says less than the API's own answer before it.
            const e = (caught as Error)?.message?.startsWith("request timed out") && lastAnswer !== undefined ? lastAnswer : caught;
            if (!(caught as Error)?.message?.startsWith("request timed out")) lastAnswer = caught;
            const backoff = Math.min(5_000, options.pollMs * 2 ** (tries - 1));
            if (!isTransient(e) || clock.now() + backoff >= options.deadline) {
                throw Object.assign(new Error(`${prefix} ${what}: ${apiMessage(e)} (${tries} attempt${tries === 1 ? "" : "s"})`), {
                    cause: e,
                    code: (e as { code?: unknown }).code,
                });
            }
            options.log?.(`retrying ${what}: ${apiMessage(e)}`);
            await clock.sleep(backoff);
        } finally {
            clearTimeout(timer);
        }
    }
}
