import * as grpc from "@grpc/grpc-js";
import { spawn } from "child_process";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { ResourceProviderClient } from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import { Status } from "@pulumi/pulumi/proto/status_pb";

// Pulumi's own dynamic-provider host (`@pulumi/pulumi/cmd/dynamic-provider`, what the engine starts
// as `pulumi-resource-pulumi-nodejs`), driven over gRPC the way the engine drives it. The provider
// travels as the engine sends it: the serialised text in the `__provider` property.

type Props = Record<string, unknown>;

/** What the engine receives when a call fails. */
export interface ProviderFailure {
    message: string;
    /** Present when the provider reported that the resource exists but did not initialise. */
    initFailure?: { id: string; properties: Props; reasons: string[] };
}

export type Answer<T> = { ok: T } | { failed: ProviderFailure };

export interface DiffAnswer {
    changes: "none" | "some" | "unknown";
    replaces: string[];
    deleteBeforeReplace: boolean;
}

export interface ProviderHost {
    check(olds: Props, news: Props): Promise<Answer<{ inputs: Props; failures: { property: string; reason: string }[] }>>;
    create(properties: Props): Promise<Answer<{ id: string; properties: Props }>>;
    read(id: string, properties: Props): Promise<Answer<{ id: string; properties: Props }>>;
    diff(id: string, olds: Props, news: Props): Promise<Answer<DiffAnswer>>;
    update(id: string, olds: Props, news: Props): Promise<Answer<{ properties: Props }>>;
    delete(id: string, properties: Props): Promise<Answer<null>>;
    /** What the host printed to stderr so far (the engine shows it as the provider's diagnostics). */
    stderr(): string;
    stop(): Promise<void>;
}

const URN = "urn:pulumi:test::gitops-platform::pulumi-nodejs:dynamic:Resource::r";
const struct = (props: Props) => Struct.fromJavaScript(props as Parameters<typeof Struct.fromJavaScript>[0]);
const plain = (s: Struct | undefined) => (s?.toJavaScript() ?? {}) as Props;

/** The failure as the engine decodes it: the message, and ErrorResourceInitFailed from the status details. */
function failure(error: grpc.ServiceError): ProviderFailure {
    const result: ProviderFailure = { message: error.details };
    const raw = error.metadata?.get("grpc-status-details-bin")[0];
    if (raw) {
        for (const detail of Status.deserializeBinary(new Uint8Array(raw as Buffer)).getDetailsList()) {
            if (detail.getTypeName() !== "pulumirpc.ErrorResourceInitFailed") continue;
            const init = provproto.ErrorResourceInitFailed.deserializeBinary(detail.getValue_asU8());
            result.initFailure = { id: init.getId(), properties: plain(init.getProperties()), reasons: init.getReasonsList() };
        }
    }
    return result;
}

/** Starts the host in a fresh Node.js process with `env` (e.g. a PATH holding a fake `kind`). */
export async function startProviderHost(env: NodeJS.ProcessEnv = process.env): Promise<ProviderHost> {
    const hostPath = require.resolve("@pulumi/pulumi/cmd/dynamic-provider");
    // The engine's address is required but only used for logging, which these calls do not reach.
    const child = spawn(process.execPath, [hostPath, "127.0.0.1:1"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const port = await new Promise<number>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (c: Buffer) => {
            out += c.toString();
            const line = /^(\d+)\n/.exec(out);
            if (line) resolve(Number(line[1]));
        });
        child.on("exit", (code) => reject(new Error(`the dynamic-provider host exited (${code}) before listening:\n${stderr}`)));
    });
    const client = new ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    /** One unary call; `send` makes it on the client, `map` turns the response into plain values. */
    const call = <Res, T>(send: (callback: (e: grpc.ServiceError | null, r: Res) => void) => unknown, map: (r: Res) => T) =>
        new Promise<Answer<T>>((resolve) => send((e, r) => resolve(e ? { failed: failure(e) } : { ok: map(r) })));

    // The engine configures every provider before its first call.
    await call(
        (cb) => client.configure(new provproto.ConfigureRequest().setArgs(struct({})), cb),
        () => null,
    );

    return {
        check: (olds, news) =>
            call(
                (cb) => client.check(new provproto.CheckRequest().setUrn(URN).setOlds(struct(olds)).setNews(struct(news)), cb),
                (r: provproto.CheckResponse) => ({
                    inputs: plain(r.getInputs()),
                    failures: r.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
                }),
            ),
        create: (properties) =>
            call(
                (cb) => client.create(new provproto.CreateRequest().setUrn(URN).setProperties(struct(properties)), cb),
                (r: provproto.CreateResponse) => ({ id: r.getId(), properties: plain(r.getProperties()) }),
            ),
        read: (id, properties) =>
            call(
                (cb) => client.read(new provproto.ReadRequest().setId(id).setUrn(URN).setProperties(struct(properties)), cb),
                (r: provproto.ReadResponse) => ({ id: r.getId(), properties: plain(r.getProperties()) }),
            ),
        diff: (id, olds, news) =>
            call(
                (cb) => client.diff(new provproto.DiffRequest().setId(id).setUrn(URN).setOlds(struct(olds)).setNews(struct(news)), cb),
                (r: provproto.DiffResponse) => ({
                    changes: ({ 0: "unknown", 1: "none", 2: "some" } as const)[r.getChanges()],
                    replaces: r.getReplacesList(),
                    deleteBeforeReplace: r.getDeletebeforereplace(),
                }),
            ),
        update: (id, olds, news) =>
            call(
                (cb) => client.update(new provproto.UpdateRequest().setId(id).setUrn(URN).setOlds(struct(olds)).setNews(struct(news)), cb),
                (r: provproto.UpdateResponse) => ({ properties: plain(r.getProperties()) }),
            ),
        delete: (id, properties) =>
            call(
                (cb) => client.delete(new provproto.DeleteRequest().setId(id).setUrn(URN).setProperties(struct(properties)), cb),
                () => null,
            ),
        stderr: () => stderr,
        stop: async () => {
            client.close();
            child.kill();
            await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on("exit", resolve)));
        },
    };
}
