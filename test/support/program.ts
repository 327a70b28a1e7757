import { jest } from "@jest/globals";
import type * as pulumiType from "@pulumi/pulumi";
import { cliConfig, listStacks, readStackFileText } from "../../lib/stack-files";
import { REPO_ROOT, tierOf } from "../../lib/project";
import { specialSecretSig, specialSigKey, unknownValue as UNKNOWN } from "@pulumi/pulumi/runtime/rpc";

// Each fresh copy of the Pulumi runtime adds process exit listeners; many runs in one worker are expected.
process.setMaxListeners(100);

export const PROJECT = "gitops-platform";
/** The key Pulumi's RPC layer marks special values with; mocks see secret inputs wrapped with it. */
export const SECRET_SIG = specialSigKey;
/** A token that only tests use; every assertion about leaks searches for it. */
export const TEST_TOKEN = "test-token-9f8e7d6c5b4a";
export const FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-key-data: FAKEKEY\n";

export interface DeclaredResource {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}

/** Records the URN of every registration (components included), as the mock monitor assigns it. */
interface UrnRecordingMonitor {
    registerResource(req: { getParent(): string; getType(): string; getName(): string }, callback: (...args: unknown[]) => void): unknown;
    newUrn(parent: string, type: string, name: string): string;
}

/** Every stack in stacks/, sandboxes committed for a branch included: each must pass the checks. */
export function shippedStacks(): string[] {
    return listStacks(REPO_ROOT);
}

/** The long-lived stacks: one per environment and backend, whatever sandboxes a branch carries. */
export function longLivedStacks(): string[] {
    return shippedStacks().filter((s) => !stackFacts(s).sandbox);
}

/** The environment and cluster backend a stack declares, whether it is a sandbox, and the branch it follows. */
export function stackFacts(stack: string, root = REPO_ROOT): { environment: string; backend: string; sandbox: boolean; branch: string } {
    const config = stackConfig(stack, root);
    const environment = config[`${PROJECT}:environment`] ?? "";
    return {
        environment,
        backend: (JSON.parse(config[`${PROJECT}:cluster`] ?? "{}") as { backend: string }).backend,
        sandbox: tierOf(environment) === "sandbox",
        branch: (JSON.parse(config[`${PROJECT}:sync`] ?? "{}") as { branch?: string }).branch ?? "main",
    };
}

/** Shipped stacks on one backend. */
export function stacksOn(backend: "kind" | "eks"): string[] {
    return shippedStacks().filter((s) => stackFacts(s).backend === backend);
}

/** The kubeconfig an existing `eks.Cluster` reports as `kubeconfigJson` (pulumi-eks generates it). */
export const FAKE_EKS_KUBECONFIG = JSON.stringify({ apiVersion: "v1", kind: "Config", "current-context": "aws", contexts: [{ name: "aws" }] });

/** A stack file's config the way the CLI hands it to the program. */
export function stackConfig(stack: string, root = REPO_ROOT): Record<string, string> {
    return cliConfig(root, stack);
}

export interface RunOptions {
    /** Config overrides on top of the stack file, in the CLI's string form. */
    config?: Record<string, string>;
    /** Set the token as a secret config value. @default true */
    withToken?: boolean;
    /** The token's value. @default TEST_TOKEN */
    token?: string;
    /** Config keys (in `config`) the stack holds encrypted, as the CLI lists them. @default the token only */
    secretKeys?: string[];
    preview?: boolean;
    /**
     * Nothing exists yet, as in the first preview of a new stack: resources get no id (the engine
     * leaves a to-be-created resource's id unknown), and the EKS cluster's outputs are unknown.
     * @default false
     */
    newStack?: boolean;
    /** Who `aws sts get-caller-identity` says runs the program. @default not answered (no check) */
    callerArn?: string;
    /** The partition `aws.getPartition` reports. @default "aws" */
    partition?: string;

    /** Packages whose loading is recorded in `loaded`; the first run of a test file decides. */
    recordLoads?: string[];
    /** Return a failing program's error in `error` instead of throwing it. @default false */
    allowError?: boolean;
    /** The checkout the stack file and the GitOps tree are in. @default the repository */
    root?: string;
}

export interface MockedRun<T> {
    resources: DeclaredResource[];
    /** The functions the program invoked (e.g. `aws:index/getPartition:getPartition`), in order. */
    calls: string[];
    /** The URN of every resource and component the program registered, in registration order. */
    urns: string[];
    pulumi: typeof pulumiType;
    /** What the body returned. */
    result: T;
    /** Which of `recordLoads` the test file has required so far. */
    loaded: string[];
    /** What the body threw, when `allowError` is set. */
    error?: unknown;
    /** The checkout whose stack file and tree the program read. */
    root: string;
    byType(type: string): DeclaredResource[];
    one(type: string): DeclaredResource;
}

/** Packages whose loading a test wants to see; set up once per test file, before anything loads them. */
const loadedPackages: string[] = [];
let recording: string[] | undefined;
function recordLoads(names: string[]): void {
    if (recording) return;
    recording = names;
    for (const name of names) {
        jest.doMock(name, () => {
            loadedPackages.push(name);
            return jest.requireActual(name);
        });
    }
}

/**
 * Runs `body` with Pulumi's mocks set for the stack and its stack file's config loaded the way the CLI
 * loads it. Every run in a test file shares one Pulumi runtime, reset by `setMocks`: loading the SDK
 * afresh for each run would cost most of a second.
 */
export async function runMocked<T>(stack: string, options: RunOptions, body: (load: (id: string) => unknown) => T): Promise<MockedRun<T>> {
    if (options.recordLoads) recordLoads(options.recordLoads);
    const resources: DeclaredResource[] = [];
    const calls: string[] = [];
    const pulumi = require("@pulumi/pulumi") as typeof pulumiType;
    let result!: T;
    let error: unknown;
    const config = { ...stackConfig(stack, options.root), ...options.config };
    const secretKeys: string[] = [...(options.secretKeys ?? [])];
    if (options.withToken !== false) {
        config[`${PROJECT}:token`] = options.token ?? TEST_TOKEN;
        secretKeys.push(`${PROJECT}:token`);
    }
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                resources.push({ type: args.type, name: args.name, inputs: args.inputs });
                const state = { ...args.inputs };
                // AWS assigns ARNs; resources that take one (the KMS key) must see a value.
                if (args.type.startsWith("aws:") && state.arn === undefined) {
                    state.arn = `arn:aws:mock:eu-west-1:123456789012:${args.name}`;
                }
                if (args.type === "eks:index:Cluster") {
                    // A remote component's outputs are unknown until it exists; the SDK reads this marker as unknown.
                    state.kubeconfigJson = options.newStack ? UNKNOWN : FAKE_EKS_KUBECONFIG;
                }
                if (args.type === "pulumi-nodejs:dynamic/kind:Cluster") {
                    state.kubeconfig = FAKE_KUBECONFIG;
                    state.context = `kind-${args.inputs.name}`;
                }
                return { id: options.newStack ? undefined : `${args.name}-id`, state };
            },
            call: (args) => {
                calls.push(args.token);
                if (args.token === "aws:index/getCallerIdentity:getCallerIdentity") return options.callerArn ? { arn: options.callerArn } : {};
                if (args.token === "aws:index/getPartition:getPartition") return { partition: options.partition ?? "aws", id: options.partition ?? "aws" };
                return args.inputs;
            },
        },
        PROJECT,
        stack,
        options.preview ?? false,
    );
    pulumi.runtime.setAllConfig(config, secretKeys);
    const urns: string[] = [];
    const monitor = (require("@pulumi/pulumi/runtime/settings") as { getMonitor(): UrnRecordingMonitor }).getMonitor();
    const register = monitor.registerResource.bind(monitor);
    // The mock monitor shortens a child's type to its parent's last type; the engine keeps the whole
    // chain (Environment$FluxBootstrap$Namespace), and so does this record.
    const engineUrns = new Map<string, string>();
    monitor.registerResource = (req, callback) => {
        const parent = req.getParent() ? engineUrns.get(req.getParent()) : undefined;
        const qualifiedType = parent ? `${parent.split("::")[2]}$${req.getType()}` : req.getType();
        const urn = `urn:pulumi:${stack}::${PROJECT}::${qualifiedType}::${req.getName()}`;
        engineUrns.set(monitor.newUrn(req.getParent(), req.getType(), req.getName()), urn);
        urns.push(urn);
        return register(req, callback);
    };
    const saved = process.env.GITLAB_TOKEN;
    delete process.env.GITLAB_TOKEN;
    try {
        result = body((id) => require(id));
    } catch (e) {
        error = e;
    } finally {
        if (saved !== undefined) process.env.GITLAB_TOKEN = saved;
    }
    if (error !== undefined && !options.allowError) throw error;
    // Registrations reach the mock monitor asynchronously; let them all arrive.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    const byType = (type: string) => resources.filter((r) => r.type === type);
    return {
        resources,
        calls,
        urns,
        pulumi,
        result,
        loaded: [...loadedPackages],
        error,
        root: options.root ?? REPO_ROOT,
        byType,
        one(type: string) {
            const [found, ...more] = byType(type);
            if (!found || more.length > 0) throw new Error(`expected one ${type}, found ${byType(type).length}`);
            return found;
        },
    };
}

/**
 * Runs the real program for a shipped stack: what infra/index.ts runs and exports. `result` holds the
 * stack outputs.
 */
export async function runProgram(stack: string, options: RunOptions = {}): Promise<MockedRun<Record<string, unknown>>> {
    const run = await runMocked(stack, options, (load) => {
        const { declareStack } = load("../../infra/program") as typeof import("../../infra/program");
        if (!options.root) return declareStack() as unknown as Record<string, unknown>;
        // Another checkout: its config read as loadConfig reads Pulumi's, checked against that checkout's tree.
        const { parseConfig } = load("../../infra/config") as typeof import("../../infra/config");
        const pulumi = load("@pulumi/pulumi") as typeof pulumiType;
        const root = options.root;
        const config = parseConfig(pulumi.runtime.allConfig(), {
            stack,
            repoRoot: root,
            env: {},
            stackFileText: readStackFileText(root, stack),
            secretKeys: [`${PROJECT}:token`],
        });
        return declareStack(config) as unknown as Record<string, unknown>;
    });
    if (run.error === undefined) await settle(run.result, run.pulumi);
    return run;
}

/** Waits until every output has resolved and the mock monitor has seen every registration. */
async function settle(outputs: Record<string, unknown>, pulumi: typeof pulumiType): Promise<void> {
    // An output a preview cannot know (its resource is still to be created) never calls `apply`.
    // Every Output carries `isKnown` at runtime (output.js); the typings leave it out as internal.
    const known = async (o: pulumiType.Output<unknown>) => ((await (o as unknown as { isKnown: Promise<boolean> }).isKnown) ? valueOf(o) : undefined);
    await Promise.all(Object.values(outputs).map((o) => (pulumi.Output.isInstance(o) ? known(o) : o)));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** Resolves an Output under mocks. */
export function valueOf<T>(output: pulumiType.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/** The value at a dotted path in mocked inputs (which are untyped JSON). */
export function field(value: unknown, dotted: string): unknown {
    let node = value;
    for (const key of dotted.split(".")) {
        if (node === null || typeof node !== "object") return undefined;
        node = (node as Record<string, unknown>)[key];
    }
    return node;
}

/** True when a mocked input carries Pulumi's secret signature. */
export function isSecretInput(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SECRET_SIG] === specialSecretSig;
}
