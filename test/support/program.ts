import * as fs from "fs";
import * as path from "path";
import type * as pulumiType from "@pulumi/pulumi";
import { parse } from "yaml";

export const REPO_ROOT = path.resolve(__dirname, "../..");
export const PROJECT = "gitops-platform";
/** The key Pulumi's RPC layer uses to mark a secret value; mocks see secret inputs wrapped with it. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";
/** A token that only tests use; every assertion about leaks searches for it. */
export const TEST_TOKEN = "test-token-9f8e7d6c5b4a";
export const FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-key-data: FAKEKEY\n";

export interface DeclaredResource {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}

/** The shipped stack names, from the files in stacks/. */
export function shippedStacks(): string[] {
    return fs
        .readdirSync(path.join(REPO_ROOT, "stacks"))
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

/**
 * A stack file's config as the Pulumi CLI hands it to the program (PULUMI_CONFIG): every value a
 * string, objects and arrays JSON-encoded, booleans and numbers as their text.
 */
export function stackConfig(stack: string): Record<string, string> {
    const file = path.join(REPO_ROOT, "stacks", `Pulumi.${stack}.yaml`);
    const doc = parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    const config: Record<string, string> = {};
    for (const [key, value] of Object.entries(doc.config ?? {})) {
        config[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return config;
}

export interface RunOptions {
    /** Config overrides on top of the stack file, in the CLI's string form. */
    config?: Record<string, string>;
    /** Keys the CLI would mark secret. @default the token, when set */
    secretKeys?: string[];
    /** Set the token as a secret config value. @default true */
    withToken?: boolean;
    preview?: boolean;
}

export interface ProgramRun {
    resources: DeclaredResource[];
    /** The program module's exports (the stack outputs). */
    outputs: Record<string, unknown>;
    pulumi: typeof pulumiType;
    /** Modules the program required, by package name, for lazy-loading checks. */
    byType(type: string): DeclaredResource[];
    one(type: string): DeclaredResource;
}

/** Runs infra/index.ts for a stack under Pulumi's mocks, in a fresh module registry. */
export async function runProgram(stack: string, options: RunOptions = {}): Promise<ProgramRun> {
    const resources: DeclaredResource[] = [];
    let pulumi!: typeof pulumiType;
    let outputs: Record<string, unknown> = {};
    const config = { ...stackConfig(stack), ...options.config };
    const secretKeys = options.secretKeys ?? [];
    if (options.withToken !== false) {
        config[`${PROJECT}:token`] = TEST_TOKEN;
        secretKeys.push(`${PROJECT}:token`);
    }
    const saved = process.env.GITLAB_TOKEN;
    delete process.env.GITLAB_TOKEN;
    try {
        jest.isolateModules(() => {
            pulumi = require("@pulumi/pulumi");
            pulumi.runtime.setMocks(
                {
                    newResource: (args) => {
                        resources.push({ type: args.type, name: args.name, inputs: args.inputs });
                        const state = { ...args.inputs };
                        if (args.type === "pulumi-nodejs:dynamic/kind:Cluster") {
                            state.kubeconfig = FAKE_KUBECONFIG;
                            state.context = `kind-${args.inputs.name}`;
                        }
                        return { id: `${args.name}-id`, state };
                    },
                    call: (args) => args.inputs,
                },
                PROJECT,
                stack,
                options.preview ?? false,
            );
            pulumi.runtime.setAllConfig(config, secretKeys);
            outputs = require("../../infra/index");
        });
    } finally {
        if (saved !== undefined) process.env.GITLAB_TOKEN = saved;
    }
    await settle(outputs, pulumi);
    const byType = (type: string) => resources.filter((r) => r.type === type);
    return {
        resources,
        outputs,
        pulumi,
        byType,
        one(type: string) {
            const found = byType(type);
            if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
            return found[0];
        },
    };
}

/** Waits until every output has resolved and the mock monitor has seen every registration. */
async function settle(outputs: Record<string, unknown>, pulumi: typeof pulumiType): Promise<void> {
    await Promise.all(Object.values(outputs).map((o) => (pulumi.Output.isInstance(o) ? valueOf(o) : o)));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** Resolves an Output under mocks. */
export function valueOf<T>(output: pulumiType.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/** True when a mocked input carries Pulumi's secret signature. */
export function isSecretInput(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SECRET_SIG] !== undefined;
}
