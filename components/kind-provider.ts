import type * as pulumi from "@pulumi/pulumi";
import { KIND_CLUSTER_DEFAULTS, KIND_RELEASE } from "../lib/project";
import { CommandResult, CommandRunner, spawnCommand } from "../lib/run-command";

// A Pulumi dynamic provider that drives the `kind` CLI. No kind provider plugin exists, and a
// dynamic provider needs no binary beyond `kind` and Docker on the machine that runs `pulumi up`.
// Pulumi serialises the provider object with the functions it references, by value (this file's and
// lib/run-command.ts's): nothing it calls may capture a large module, so modules are required inside
// the functions that use them.
// Errors are plain `Error`s: the serialiser rewrites `super(...)` in a class extending Error into
// `Error.call(this, ...)`, which sets no message (pulumi/pulumi#10974), and the engine would print
// "Unknown Error".

/** One `extraPortMappings` entry of the control-plane node. */
export interface KindPortMapping {
    containerPort: number;
    hostPort: number;
    protocol: "TCP" | "UDP" | "SCTP";
    listenAddress?: string;
}

/**
 * Where the API server listens and how clients reach it, when that is not this machine's 127.0.0.1: in
 * Docker-in-Docker (a CI job) the nodes run on the `docker` service's host, so the API server must listen
 * on all its addresses, carry that host name in its certificate, and the kubeconfig must point there.
 */
export interface KindApiServer {
    /** `networking.apiServerAddress`, e.g. "0.0.0.0". */
    listenAddress: string;
    /** The host clients use, e.g. "docker": added to the certificate and written into the kubeconfig. */
    host: string;
}

/** The desired cluster; every field forces a replacement when it changes. */
export interface KindClusterInputs {
    name: string;
    nodeImage: string;
    controlPlaneNodes: number;
    workers: number;
    portMappings: KindPortMapping[];
    apiServer?: KindApiServer;
}

export interface KindClusterOutputs extends KindClusterInputs {
    /** Admin kubeconfig for the cluster's API server on localhost. Secret. */
    kubeconfig: string;
    /** The context kind writes into the user's kubeconfig. */
    context: string;
}

export const KIND_CONFIG_API_VERSION = "kind.x-k8s.io/v1alpha4";
const INPUT_FIELDS: (keyof KindClusterInputs)[] = ["name", "nodeImage", "controlPlaneNodes", "workers", "portMappings", "apiServer"];

/** The kind cluster config (`kind.x-k8s.io/v1alpha4`) for the inputs, as YAML kind reads from stdin. */
export function renderKindConfig(inputs: KindClusterInputs): string {
    // Plain YAML by hand: JSON is valid YAML, and it keeps the yaml library out of the serialised provider.
    const nodes: Record<string, unknown>[] = [];
    for (let i = 0; i < inputs.controlPlaneNodes; i++) {
        const node: Record<string, unknown> = { role: "control-plane", image: inputs.nodeImage };
        // Host ports can only be bound once: they go on the first control-plane node.
        if (i === 0 && inputs.portMappings.length > 0) {
            node.extraPortMappings = inputs.portMappings.map((m) => ({
                containerPort: m.containerPort,
                hostPort: m.hostPort,
                protocol: m.protocol,
                ...(m.listenAddress ? { listenAddress: m.listenAddress } : {}),
            }));
        }
        nodes.push(node);
    }
    for (let i = 0; i < inputs.workers; i++) {
        nodes.push({ role: "worker", image: inputs.nodeImage });
    }
    const apiServer = inputs.apiServer
        ? {
              networking: { apiServerAddress: inputs.apiServer.listenAddress },
              // kubeadm signs the API server's certificate for these names too (kind applies the patch to
              // its generated ClusterConfiguration).
              kubeadmConfigPatches: [`kind: ClusterConfiguration\napiServer:\n  certSANs:\n  - "${inputs.apiServer.host}"\n`],
          }
        : {};
    return JSON.stringify({ kind: "Cluster", apiVersion: KIND_CONFIG_API_VERSION, name: inputs.name, ...apiServer, nodes }, null, 2) + "\n";
}

/**
 * The kubeconfig as clients must use it. kind writes the address Docker published the API server on
 * (pkg/cluster/internal/providers/docker/provider.go GetAPIServerEndpoint: the port mapping's HostIp),
 * which is the listen address itself, e.g. https://0.0.0.0:41235: the host is replaced, the port kept.
 */
export function reachableKubeconfig(kubeconfig: string, apiServer: KindApiServer | undefined): string {
    if (!apiServer) return kubeconfig;
    return kubeconfig.replace(/(server:\s*https:\/\/)(\[[^\]]+\]|[^:/\s]+)(:\d+)/g, `$1${apiServer.host}$3`);
}

/** Turns a failed or unstartable `kind` call into one message a person can act on. */
export function kindFailure(action: string, outcome: CommandResult | Error): Error {
    if (outcome instanceof Error) {
        if ((outcome as NodeJS.ErrnoException).code === "ENOENT") {
            return new Error(
                "The kind CLI is not on PATH. Install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), " +
                    "make sure `kind version` works in this shell, and run `pulumi up` again.",
            );
        }
        return new Error(`Could not run \`kind ${action}\`: ${outcome.message}`);
    }
    const stderr = outcome.stderr.trim();
    if (
        /Cannot connect to the Docker daemon|docker daemon is not running|failed to connect to the docker API|"docker": executable file not found|error during connect/i.test(
            stderr,
        )
    ) {
        return new Error(
            `\`kind ${action}\` needs a running Docker engine, and none answered. Start Docker (or Docker Desktop), ` +
                "check that `docker ps` works, and run `pulumi up` again.",
        );
    }
    const exists = /already exist for a cluster with the name "?([^"\s]+)"?/.exec(stderr);
    if (exists) {
        return new Error(
            `A kind cluster named "${exists[1]}" already exists and this stack did not create it. ` +
                `Delete it with \`kind delete cluster --name ${exists[1]}\`, or set cluster.name to another name.`,
        );
    }
    const tail = stderr.split("\n").slice(-10).join("\n");
    return new Error(`\`kind ${action}\` failed with exit code ${outcome.code}:\n${tail}`);
}

/**
 * Which nodes of a cluster are not Ready, from `kubectl get nodes` lines of "<name> <Ready status>", given
 * how many there should be; empty when all are.
 */
export function unreadyNodes(listing: string, expected: number): string[] {
    const lines = listing
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[0]);
    const unready = lines.filter(([, status]) => status !== "True").map(([name, status]) => `${name} (Ready=${status ?? "unknown"})`);
    const missing = expected - lines.length;
    if (missing > 0) unready.push(`${missing} node${missing === 1 ? "" : "s"} not registered yet`);
    return unready;
}

/**
 * Why the kind CLI that answered `kind version` cannot run the default node image, or undefined. kind
 * supports only the node images built for its own release, and the default image is kind
 * ${KIND_RELEASE}'s.
 */
export function kindReleaseProblem(versionOutput: string): string | undefined {
    const found = /\bv\d+\.\d+\.\d+\S*/.exec(versionOutput)?.[0];
    if (found?.startsWith(`${KIND_RELEASE}.`)) return undefined;
    return (
        `kind ${found ?? `(\`kind version\` said "${versionOutput.trim()}")`} is on PATH, but the default node image (${KIND_CLUSTER_DEFAULTS.nodeImage}) ` +
        `is the one published for kind ${KIND_RELEASE}, and kind supports the images of its own release only. ` +
        `Fix: install kind ${KIND_RELEASE}.x (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), or set cluster.nodeImage ` +
        "to an image your kind's release notes list."
    );
}

/** How long and how often the provider looks for every node to be Ready after `kind create`. */
export interface NodeWait {
    timeoutMs: number;
    intervalMs: number;
}

export class KindClusterProvider implements pulumi.dynamic.ResourceProvider<KindClusterInputs, KindClusterOutputs> {
    constructor(
        private readonly run: CommandRunner = spawnCommand,
        private readonly nodeWait: NodeWait = { timeoutMs: 300_000, intervalMs: 2_000 },
    ) {}

    async create(inputs: KindClusterInputs): Promise<pulumi.dynamic.CreateResult<KindClusterOutputs>> {
        if (inputs.nodeImage === KIND_CLUSTER_DEFAULTS.nodeImage) {
            const problem = kindReleaseProblem(await this.kind(["version"]));
            if (problem) throw new Error(problem);
        }
        await this.kind(["create", "cluster", "--name", inputs.name, "--config=-", "--wait", "120s"], renderKindConfig(inputs));
        let kubeconfig: string;
        try {
            kubeconfig = reachableKubeconfig(await this.kind(["get", "kubeconfig", "--name", inputs.name]), inputs.apiServer);
        } catch (e) {
            throw initFailure(inputs, "", `kind created the cluster "${inputs.name}" but could not read its kubeconfig: ${(e as Error).message}`);
        }
        try {
            await this.waitForNodes(inputs);
        } catch (e) {
            throw initFailure(inputs, kubeconfig, (e as Error).message);
        }
        return { id: inputs.name, outs: { ...pick(inputs), kubeconfig, context: `kind-${inputs.name}` } };
    }

    /**
     * Waits until every node is Ready. `kind create cluster --wait` waits for the control-plane nodes
     * only, and when they are late it warns and exits 0 (kind's
     * pkg/cluster/internal/create/actions/waitforready/waitforready.go): the workers, where Flux runs,
     * may not be Ready yet. Asked the way kind asks, with the kubectl inside the control-plane node.
     */
    private async waitForNodes(inputs: KindClusterInputs): Promise<void> {
        const expected = inputs.controlPlaneNodes + inputs.workers;
        const deadline = Date.now() + this.nodeWait.timeoutMs;
        const container = `${inputs.name}-control-plane`;
        const args = [
            "exec",
            container,
            "kubectl",
            "--kubeconfig=/etc/kubernetes/admin.conf",
            "get",
            "nodes",
            "-o",
            'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
        ];
        let last = "no answer yet";
        for (;;) {
            let result: CommandResult;
            try {
                result = await this.run("docker", args, undefined, 30_000);
            } catch (e) {
                if ((e as NodeJS.ErrnoException).code === "ENOENT") {
                    throw new Error(
                        "The docker CLI is not on PATH, so the nodes of the new kind cluster cannot be checked. Install Docker and run `pulumi up` again.",
                    );
                }
                result = { code: -1, stdout: "", stderr: (e as Error).message };
            }
            if (result.code === 0) {
                const unready = unreadyNodes(result.stdout, expected);
                if (unready.length === 0) return;
                last = unready.join(", ");
            } else {
                last = `\`docker ${args.slice(0, 2).join(" ")} kubectl get nodes\` failed: ${result.stderr.trim().split("\n").slice(-1)[0] ?? ""}`;
            }
            if (Date.now() + this.nodeWait.intervalMs > deadline) {
                throw new Error(
                    `The nodes of kind cluster "${inputs.name}" were not all Ready within ${Math.round(this.nodeWait.timeoutMs / 1000)} s: ${last}. ` +
                        `See \`kubectl --context kind-${inputs.name} describe nodes\` and \`docker logs ${container}\`, then run \`pulumi up\` again.`,
                );
            }
            await new Promise((resolve) => setTimeout(resolve, this.nodeWait.intervalMs));
        }
    }

    async read(id: string, props?: KindClusterOutputs): Promise<pulumi.dynamic.ReadResult<KindClusterOutputs>> {
        const clusters = (await this.kind(["get", "clusters"])).split("\n").map((l) => l.trim());
        if (!clusters.includes(id)) {
            // An empty result tells Pulumi the cluster is gone (deleted outside Pulumi).
            return {};
        }
        const known: KindClusterInputs = props ?? { name: id, nodeImage: "", controlPlaneNodes: 1, workers: 0, portMappings: [] };
        const kubeconfig = reachableKubeconfig(await this.kind(["get", "kubeconfig", "--name", id]), known.apiServer);
        return { id, props: { ...pick(known), name: id, kubeconfig, context: `kind-${id}` } };
    }

    async diff(_id: string, olds: KindClusterOutputs, news: KindClusterInputs): Promise<pulumi.dynamic.DiffResult> {
        const replaces = INPUT_FIELDS.filter((f) => JSON.stringify(olds[f]) !== JSON.stringify(news[f]));
        // A new version of this provider's code is an in-place update, never a new cluster: `refresh`
        // and `destroy` run the code stored in state, so only an update brings the fix into the stack.
        const changes = replaces.length > 0 || providerCodeChanged(olds, news);
        // kind cannot change nodes in place, and two clusters cannot share a name: delete, then create.
        return { changes, replaces, deleteBeforeReplace: true };
    }

    /** Reached only when no node changed: a new provider version, or a retry after a failed create. */
    async update(id: string, _olds: KindClusterOutputs, news: KindClusterInputs): Promise<pulumi.dynamic.UpdateResult<KindClusterOutputs>> {
        const kubeconfig = reachableKubeconfig(await this.kind(["get", "kubeconfig", "--name", id]), news.apiServer);
        await this.waitForNodes({ ...news, name: id });
        return { outs: { ...pick(news), name: id, kubeconfig, context: `kind-${id}` } };
    }

    async delete(id: string): Promise<void> {
        // `kind delete cluster` succeeds when the cluster is already gone, so a retry is safe.
        await this.kind(["delete", "cluster", "--name", id]);
    }

    private async kind(args: string[], stdin?: string): Promise<string> {
        const action = args
            .filter((a) => !a.startsWith("-"))
            .slice(0, 2)
            .join(" ");
        let result: CommandResult;
        try {
            // Creating waits for the nodes itself (--wait 120s); anything else answers in seconds.
            result = await this.run("kind", args, stdin, args[0] === "create" ? 300_000 : 120_000);
        } catch (e) {
            throw kindFailure(action, e as Error);
        }
        if (result.code !== 0) throw kindFailure(action, result);
        return result.stdout;
    }
}

/**
 * A create that fails after kind made the cluster. Reported as an initialisation failure (the
 * dynamic-provider host turns `id` into ErrorResourceInitFailed), the cluster is kept in state, so the next
 * `pulumi up` retries through `update` and `pulumi destroy` deletes it: nothing is left outside state.
 */
function initFailure(inputs: KindClusterInputs, kubeconfig: string, message: string): Error {
    // The host adds `__provider` to what a create returns, but not to an init failure's properties:
    // without it in state, `pulumi destroy` could not load this provider.
    const providerText = (inputs as { __provider?: unknown }).__provider;
    return Object.assign(new Error(message), {
        id: inputs.name,
        properties: { ...pick(inputs), kubeconfig, context: `kind-${inputs.name}`, __provider: providerText },
        reasons: [message],
    });
}

/**
 * Whether the serialised provider in state (`__provider`, stored by the dynamic-provider host) differs
 * from the one this program would store. An unknown value during preview is not a change.
 */
function providerCodeChanged(olds: object, news: object): boolean {
    const before = (olds as { __provider?: unknown }).__provider;
    const after = (news as { __provider?: unknown }).__provider;
    const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // the RPC layer's unknown value
    return typeof before === "string" && typeof after === "string" && after !== unknown && before !== after;
}

function pick(from: KindClusterInputs): KindClusterInputs {
    return {
        name: from.name,
        nodeImage: from.nodeImage,
        controlPlaneNodes: from.controlPlaneNodes,
        workers: from.workers,
        portMappings: from.portMappings,
        // Absent, not undefined, when not set: state written before the field existed compares equal.
        ...(from.apiServer ? { apiServer: from.apiServer } : {}),
    };
}
