import { describe, expect, it } from "@jest/globals";
import { parse } from "yaml";
import { CommandResult, spawnCommand } from "../lib/run-command";
import { KindClusterInputs, KindClusterOutputs, KindClusterProvider, kindReleaseProblem, renderKindConfig } from "./kind-provider";
import { KIND_CLUSTER_DEFAULTS } from "../lib/project";

interface Call {
    command: string;
    args: string[];
    stdin?: string;
}

/** Every node of a cluster Ready, the way kubectl lists them for the provider's jsonpath. */
const allReady = (): CommandResult => ({ code: 0, stdout: "development-control-plane True\ndevelopment-worker True\ndevelopment-worker2 True\n", stderr: "" });

/**
 * A stand-in for the kind CLI: answers each call from a script and remembers what it was asked. `docker`
 * answers the provider's node check, by the number of the poll (0, 1, ...): all Ready unless told.
 */
function fakeKind(answer: (args: string[]) => CommandResult | Error, docker: (poll: number) => CommandResult | Error = allReady) {
    const calls: Call[] = [];
    const dockerCalls: string[][] = [];
    const run = async (command: string, args: string[], stdin?: string) => {
        if (command === "docker") dockerCalls.push(args);
        else calls.push({ command, args, stdin });
        const result = command === "docker" ? docker(dockerCalls.length - 1) : answer(args);
        if (result instanceof Error) throw result;
        return result;
    };
    return { calls, dockerCalls, provider: new KindClusterProvider(run, { timeoutMs: 50, intervalMs: 5 }) };
}

const ok = (stdout = ""): CommandResult => ({ code: 0, stdout, stderr: "" });
const failed = (stderr: string, code = 1): CommandResult => ({ code, stdout: "", stderr });
const KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n";

const inputs: KindClusterInputs = {
    name: "development",
    nodeImage: "kindest/node:v1.35.0",
    controlPlaneNodes: 1,
    workers: 2,
    portMappings: [{ containerPort: 30080, hostPort: 8080, protocol: "TCP" }],
};

const kindHappy = (args: string[]) => (args[0] === "get" && args[1] === "kubeconfig" ? ok(KUBECONFIG) : ok());

describe("the generated kind config", () => {
    it("declares the control plane with the port mappings, then the workers, all on one image", () => {
        expect(parse(renderKindConfig(inputs))).toEqual({
            kind: "Cluster",
            apiVersion: "kind.x-k8s.io/v1alpha4",
            name: "development",
            nodes: [
                {
                    role: "control-plane",
                    image: "kindest/node:v1.35.0",
                    extraPortMappings: [{ containerPort: 30080, hostPort: 8080, protocol: "TCP" }],
                },
                { role: "worker", image: "kindest/node:v1.35.0" },
                { role: "worker", image: "kindest/node:v1.35.0" },
            ],
        });
    });

    it("binds host ports on the first control-plane node only", () => {
        const config = parse(renderKindConfig({ ...inputs, controlPlaneNodes: 3, workers: 0 })) as { nodes: Record<string, unknown>[] };
        expect(config.nodes.map((n) => [n.role, n.extraPortMappings !== undefined])).toEqual([
            ["control-plane", true],
            ["control-plane", false],
            ["control-plane", false],
        ]);
    });

    it("passes a listen address through when one is set", () => {
        const config = parse(
            renderKindConfig({ ...inputs, portMappings: [{ containerPort: 80, hostPort: 80, protocol: "TCP", listenAddress: "127.0.0.1" }] }),
        ) as { nodes: { extraPortMappings?: unknown[] }[] };
        expect(config.nodes[0]?.extraPortMappings).toEqual([{ containerPort: 80, hostPort: 80, protocol: "TCP", listenAddress: "127.0.0.1" }]);
    });
});

describe("a kind cluster reached from a Docker-in-Docker job", () => {
    const dind = { ...inputs, apiServer: { listenAddress: "0.0.0.0", host: "docker" } };

    it("listens on every address of the Docker host and has kubeadm sign its certificate for that host", () => {
        const config = parse(renderKindConfig(dind)) as { networking?: unknown; kubeadmConfigPatches?: string[] };
        expect(config.networking).toEqual({ apiServerAddress: "0.0.0.0" });
        expect(config.kubeadmConfigPatches?.map((p) => parse(p) as unknown)).toEqual([{ kind: "ClusterConfiguration", apiServer: { certSANs: ["docker"] } }]);
        // Without the setting, kind's defaults stand: nothing about the API server in the config.
        expect(Object.keys(parse(renderKindConfig(inputs)) as object)).toEqual(["kind", "apiVersion", "name", "nodes"]);
    });

    it("hands out a kubeconfig pointing at that host, on the port Docker published", async () => {
        const published =
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Zm9v\n    server: https://0.0.0.0:41235\n  name: kind-development\n";
        const { provider } = fakeKind((args) => (args[1] === "kubeconfig" ? ok(published) : ok()));
        const created = await provider.create(dind);
        expect(created.outs?.kubeconfig).toBe(published.replace("https://0.0.0.0:41235", "https://docker:41235"));
        expect(created.outs?.apiServer).toEqual({ listenAddress: "0.0.0.0", host: "docker" });
    });

    it("keeps a cluster created before the setting existed: no change, no replacement", async () => {
        const { provider } = fakeKind(kindHappy);
        const old: KindClusterOutputs = { ...inputs, kubeconfig: KUBECONFIG, context: "kind-development" };
        expect(await provider.diff("development", old, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: true });
        expect((await provider.diff("development", old, dind)).replaces).toEqual(["apiServer"]);
    });
});

describe("KindClusterProvider", () => {
    it("creates the cluster from the generated config on stdin, then reads its kubeconfig", async () => {
        const { calls, provider } = fakeKind(kindHappy);
        const result = await provider.create(inputs);
        expect(calls).toEqual([
            {
                command: "kind",
                args: ["create", "cluster", "--name", "development", "--config=-", "--wait", "120s"],
                stdin: renderKindConfig(inputs),
            },
            { command: "kind", args: ["get", "kubeconfig", "--name", "development"], stdin: undefined },
        ]);
        expect(result).toEqual({ id: "development", outs: { ...inputs, kubeconfig: KUBECONFIG, context: "kind-development" } });
    });

    it("reads a cluster that still exists with a fresh kubeconfig", async () => {
        const { calls, provider } = fakeKind((args) => (args[1] === "clusters" ? ok("staging\ndevelopment\n") : ok(KUBECONFIG)));
        const old: KindClusterOutputs = { ...inputs, kubeconfig: "stale", context: "kind-development" };
        const result = await provider.read("development", old);
        expect(calls.map((c) => c.args)).toEqual([
            ["get", "clusters"],
            ["get", "kubeconfig", "--name", "development"],
        ]);
        expect(result).toEqual({ id: "development", props: { ...inputs, kubeconfig: KUBECONFIG, context: "kind-development" } });
    });

    it("reports a cluster deleted outside Pulumi as gone", async () => {
        const { calls, provider } = fakeKind(() => ok("staging\n"));
        expect(await provider.read("development")).toEqual({});
        expect(calls).toHaveLength(1);
    });

    it("sees no change when nothing changed", async () => {
        const { provider } = fakeKind(kindHappy);
        const olds: KindClusterOutputs = { ...inputs, kubeconfig: KUBECONFIG, context: "kind-development" };
        expect(await provider.diff("development", olds, { ...inputs })).toEqual({ changes: false, replaces: [], deleteBeforeReplace: true });
    });

    it.each<[string, Partial<KindClusterInputs>, string[]]>([
        ["a new node image", { nodeImage: "kindest/node:v1.34.0" }, ["nodeImage"]],
        ["another worker", { workers: 3 }, ["workers"]],
        ["an HA control plane", { controlPlaneNodes: 3 }, ["controlPlaneNodes"]],
        ["a new port mapping", { portMappings: [] }, ["portMappings"]],
        ["a new name", { name: "dev2" }, ["name"]],
    ])("replaces the cluster, deleting first, for %s", async (_what, change, replaces) => {
        const { provider } = fakeKind(kindHappy);
        const olds: KindClusterOutputs = { ...inputs, kubeconfig: KUBECONFIG, context: "kind-development" };
        expect(await provider.diff("development", olds, { ...inputs, ...change })).toEqual({
            changes: true,
            replaces,
            deleteBeforeReplace: true,
        });
    });

    it("deletes the cluster by name", async () => {
        const { calls, provider } = fakeKind(() => ok());
        await provider.delete("development");
        expect(calls.map((c) => c.args)).toEqual([["delete", "cluster", "--name", "development"]]);
    });
});

describe("KindClusterProvider failures are one clear message", () => {
    it("says how to install kind when it is not on PATH", async () => {
        const enoent = Object.assign(new Error("spawn kind ENOENT"), { code: "ENOENT" });
        const { provider } = fakeKind(() => enoent);
        await expect(provider.create(inputs)).rejects.toThrow(
            "The kind CLI is not on PATH. Install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), " +
                "make sure `kind version` works in this shell, and run `pulumi up` again.",
        );
    });

    it("says to start Docker when the daemon does not answer", async () => {
        const { calls, provider } = fakeKind(() =>
            failed(
                'ERROR: failed to create cluster: failed to list nodes: command "docker ps -a" failed with error: exit status 1\n' +
                    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            ),
        );
        await expect(provider.create(inputs)).rejects.toThrow(
            "`kind create cluster` needs a running Docker engine, and none answered. Start Docker (or Docker Desktop), " +
                "check that `docker ps` works, and run `pulumi up` again.",
        );
        expect(calls).toHaveLength(1);
    });

    it("refuses to adopt a cluster of the same name that this stack did not create", async () => {
        const { provider } = fakeKind(() => failed('ERROR: failed to create cluster: node(s) already exist for a cluster with the name "development"'));
        await expect(provider.create(inputs)).rejects.toThrow(
            'A kind cluster named "development" already exists and this stack did not create it. ' +
                "Delete it with `kind delete cluster --name development`, or set cluster.name to another name.",
        );
    });

    it("passes any other failure on with the exit code and kind's last words", async () => {
        const { provider } = fakeKind(() => failed("Creating cluster ...\nERROR: failed to pull image", 2));
        await expect(provider.delete("development")).rejects.toThrow(
            "`kind delete cluster` failed with exit code 2:\nCreating cluster ...\nERROR: failed to pull image",
        );
    });
});

describe("the default command runner", () => {
    it("feeds stdin and collects stdout, stderr and the exit code of a real process", async () => {
        const script = "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{console.log(s.toUpperCase());console.error('warn');process.exit(3)})";
        expect(await spawnCommand(process.execPath, ["-e", script], "kind: Cluster")).toEqual({
            code: 3,
            stdout: "KIND: CLUSTER\n",
            stderr: "warn\n",
        });
    });

    it("stops a command that hangs past its time limit and says so", async () => {
        const result = await spawnCommand(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], undefined, 200);
        expect(result.code).toBe(124);
        expect(result.stderr).toMatch(/did not finish within 0s and was stopped$/);
    });

    it("rejects with ENOENT for a missing binary, which the provider turns into its install hint", async () => {
        await expect(spawnCommand("kind-binary-that-does-not-exist", [])).rejects.toMatchObject({ code: "ENOENT" });
    });
});

describe("a new kind cluster is ready when all its nodes are", () => {
    const notReadyWorker = (): CommandResult => ({
        code: 0,
        stdout: "development-control-plane True\ndevelopment-worker False\ndevelopment-worker2 True\n",
        stderr: "",
    });

    it("asks the kubectl inside the control-plane node, as kind does, until every node is Ready", async () => {
        const { provider, dockerCalls } = fakeKind(kindHappy, (poll) => (poll < 2 ? notReadyWorker() : allReady()));
        const created = await provider.create(inputs);
        expect(created.outs?.kubeconfig).toBe(KUBECONFIG);
        expect(dockerCalls).toHaveLength(3);
        expect(dockerCalls[0]?.slice(0, 6)).toEqual([
            "exec",
            "development-control-plane",
            "kubectl",
            "--kubeconfig=/etc/kubernetes/admin.conf",
            "get",
            "nodes",
        ]);
    });

    it("fails naming the node that never got Ready, and keeps the cluster in state for the next up or destroy", async () => {
        const { provider } = fakeKind(kindHappy, notReadyWorker);
        const error = (await provider.create(inputs).catch((e: unknown) => e)) as Error & { id?: string; properties?: Record<string, unknown> };
        expect(error.message).toBe(
            'The nodes of kind cluster "development" were not all Ready within 0 s: development-worker (Ready=False). ' +
                "See `kubectl --context kind-development describe nodes` and `docker logs development-control-plane`, then run `pulumi up` again.",
        );
        expect(error.id).toBe("development");
        expect(error.properties).toMatchObject({ name: "development", kubeconfig: KUBECONFIG, context: "kind-development" });
    });

    it("counts a node kind only warned about, which has not even registered", async () => {
        const { provider } = fakeKind(kindHappy, () => ({ code: 0, stdout: "development-control-plane True\n", stderr: "" }));
        await expect(provider.create(inputs)).rejects.toThrow("were not all Ready within 0 s: 2 nodes not registered yet.");
    });

    it("waits again when a retry after a failed create goes through update", async () => {
        const { provider, dockerCalls } = fakeKind(kindHappy);
        await provider.update("development", { ...inputs, kubeconfig: "", context: "kind-development" }, inputs);
        expect(dockerCalls).toHaveLength(1);
    });

    it("says so when docker itself is missing", async () => {
        const { provider } = fakeKind(kindHappy, () => Object.assign(new Error("spawn docker ENOENT"), { code: "ENOENT" }));
        await expect(provider.create(inputs)).rejects.toThrow("The docker CLI is not on PATH, so the nodes of the new kind cluster cannot be checked.");
    });
});

describe("the kind release the default node image belongs to", () => {
    const pinned = { ...inputs, nodeImage: KIND_CLUSTER_DEFAULTS.nodeImage };
    const kindAt = (version: string) => (args: string[]) => (args[0] === "version" ? ok(`kind ${version} go1.25.5 linux/amd64\n`) : kindHappy(args));

    it("creates the cluster with kind v0.31.x, whose own image it is", async () => {
        const { provider, calls } = fakeKind(kindAt("v0.31.0"));
        await provider.create(pinned);
        expect(calls.map((c) => c.args.slice(0, 2).join(" "))).toEqual(["version", "create cluster", "get kubeconfig"]);
    });

    it("refuses another kind release before creating anything, saying what to install", async () => {
        const { provider, calls } = fakeKind(kindAt("v0.32.0"));
        await expect(provider.create(pinned)).rejects.toThrow(
            `kind v0.32.0 is on PATH, but the default node image (${KIND_CLUSTER_DEFAULTS.nodeImage}) is the one published for kind v0.31, and kind supports the images of its own release only. Fix: install kind v0.31.x`,
        );
        expect(calls.map((c) => c.args[0])).toEqual(["version"]);
    });

    it("does not ask when the stack chose its own node image", async () => {
        const { provider, calls } = fakeKind(kindAt("v0.32.0"));
        await provider.create(inputs);
        expect(calls.map((c) => c.args[0])).not.toContain("version");
    });

    it.each([
        ["kind v0.31.2 go1.25.5 linux/amd64", "ok"],
        ["kind v0.31.0-alpha+abc go1.25 darwin/arm64", "ok"],
        ["kind v0.30.0 go1.24 linux/amd64", "kind v0.30.0 is on PATH"],
        ["", 'kind (`kind version` said "") is on PATH'],
    ])("reads '%s'", (output, verdict) => {
        expect(kindReleaseProblem(output)?.split(", but")[0] ?? "ok").toBe(verdict);
    });
});
