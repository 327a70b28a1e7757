import * as pulumi from "@pulumi/pulumi";
import { REPO_ROOT } from "../../lib/project";
import { readStackFileText } from "../../lib/stack-files";
import { parseConfig } from "./parse";
import type { EnvironmentConfig } from "./schema";

/** Reads this stack's config the way the CLI handed it over, once. The only place that reads it. */
export function loadConfig(): EnvironmentConfig {
    const stack = pulumi.getStack();
    return parseConfig(pulumi.runtime.allConfig(), {
        stack,
        env: process.env,
        stackFileText: readStackFileText(REPO_ROOT, stack),
        // Which keys the stack holds encrypted, as the language host passes them to the program.
        secretKeys: JSON.parse(process.env.PULUMI_CONFIG_SECRET_KEYS ?? "[]") as string[],
    });
}
