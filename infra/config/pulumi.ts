import * as pulumi from "@pulumi/pulumi";
import { REPO_ROOT } from "../../lib/project";
import { readStackFileText } from "../../lib/stack-files";
import { parseConfig } from "./parse";
import type { EnvironmentConfig } from "./schema";

/** Reads this stack's config the way the CLI handed it over, once. The only place that reads it. */
export function loadConfig(): EnvironmentConfig {
    const stack = pulumi.getStack();
    const all = pulumi.runtime.allConfig();
    // Which keys the stack holds encrypted, as the CLI hands them over (PULUMI_CONFIG_SECRET_KEYS, which the
    // SDK keeps in its store: @pulumi/pulumi runtime/config.js `isConfigSecret`, internal but exported).
    const isSecret = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    const secretKeys = isSecret ? Object.keys(all).filter((k) => isSecret(k)) : (JSON.parse(process.env.PULUMI_CONFIG_SECRET_KEYS ?? "[]") as string[]);
    return parseConfig(all, { stack, env: process.env, stackFileText: readStackFileText(REPO_ROOT, stack), secretKeys });
}
