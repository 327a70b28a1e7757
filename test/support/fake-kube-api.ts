import * as http from "http";
import type { FluxObject } from "../../components/flux-teardown-provider";

// A stand-in for the Kubernetes API server, speaking the few calls the Flux teardown makes.

export interface Request {
    method: string;
    path: string;
    query?: string;
    contentType?: string;
    body?: unknown;
}

/** A fake API server holding Flux objects; a deleted object disappears after `finaliseAfter` reads. */
export function fakeKubeApi(objects: FluxObject[], finaliseAfter: number | "never") {
    const requests: Request[] = [];
    const live = new Map<string, { object: FluxObject; reads: number; deleting: boolean }>();
    const plural = { Kustomization: "kustomizations", HelmRelease: "helmreleases" } as const;
    for (const o of objects) live.set(`${plural[o.kind]}/${o.metadata.namespace}/${o.metadata.name}`, { object: o, reads: 0, deleting: false });
    const server = http.createServer((req, res) => {
        let raw = "";
        req.on("data", (c) => (raw += c));
        req.on("end", () => {
            const url = new URL(req.url ?? "/", "http://localhost");
            requests.push({
                method: req.method ?? "",
                path: url.pathname,
                query: url.search || undefined,
                contentType: req.headers["content-type"],
                body: raw ? JSON.parse(raw) : undefined,
            });
            const send = (code: number, body: object) => {
                res.writeHead(code, { "content-type": "application/json" });
                res.end(JSON.stringify(body));
            };
            const list = /^\/apis\/[^/]+\/[^/]+\/(kustomizations|helmreleases)$/.exec(url.pathname);
            if (list && req.method === "GET") {
                return send(200, { items: [...live.entries()].filter(([k]) => k.startsWith(list[1] ?? "")).map(([, v]) => v.object) });
            }
            const one = /^\/apis\/[^/]+\/[^/]+\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
            if (!one) return send(404, { kind: "Status", code: 404 });
            if (one[2] === "fluxinstances") return send(200, { kind: "FluxInstance" });
            const entry = live.get(`${one[2]}/${one[1]}/${one[3]}`);
            if (!entry) return send(404, { kind: "Status", code: 404, reason: "NotFound" });
            if (req.method === "DELETE") entry.deleting = true;
            if (req.method === "GET" && entry.deleting && finaliseAfter !== "never" && ++entry.reads >= finaliseAfter) {
                live.delete(`${one[2]}/${one[1]}/${one[3]}`);
                return send(404, { kind: "Status", code: 404, reason: "NotFound" });
            }
            return send(200, entry.object);
        });
    });
    return { server, requests, live };
}

/** A kubeconfig for a fake API server listening on 127.0.0.1:`port`. */
export function kubeconfigFor(port: number): string {
    return [
        "apiVersion: v1",
        "kind: Config",
        // client-node accepts a plain-HTTP server only with TLS verification off, which is all a local fake needs.
        `clusters: [{name: fake, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]`,
        "users: [{name: fake, user: {token: not-a-real-token}}]",
        "contexts: [{name: fake, context: {cluster: fake, user: fake}}]",
        "current-context: fake",
    ].join("\n");
}
