import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";

// How config problems are reported: every problem at once, each naming its key and the fix.

export interface ConfigProblem {
    /** The full config key, e.g. `gitops-platform:cluster.workers`. */
    key: string;
    /** What is wrong and how to fix it. */
    message: string;
}

/** Every problem in one stack's config, reported together. A RunError so Pulumi prints no stack trace. */
export class ConfigError extends pulumi.RunError {
    constructor(
        readonly stackFile: string,
        readonly problems: ConfigProblem[],
    ) {
        super(
            `${stackFile} has ${problems.length} config problem${problems.length === 1 ? "" : "s"}:\n` +
                problems.map((p) => `  - ${p.key}: ${p.message}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

/** The dotted key(s) a zod issue is about; unknown keys are reported one by one. */
export function issueKeys(issue: z.core.$ZodIssue): string[] {
    const base = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
        return issue.keys.map((k) => (base ? `${base}.${k}` : k));
    }
    return [base || "(root)"];
}

const english = z.locales.en();

/**
 * Messages for the issues the schema does not word itself (its own messages, which take precedence,
 * already say how to fix the value): every message ends with a fix.
 */
export const configErrorMap: z.core.$ZodErrorMap = (issue) => {
    if (issue.code === "unrecognized_keys") return "is not a known key. Fix: check the spelling against Pulumi.yaml, or remove it";
    if (issue.code === "invalid_type" && issue.input === undefined) return "is required. Fix: set it (see its documentation in Pulumi.yaml)";
    const fallback = english.localeError(issue);
    const text = typeof fallback === "string" ? fallback : (fallback?.message ?? "is not valid");
    return `${text}. Fix: see the key's documentation in Pulumi.yaml`;
};
