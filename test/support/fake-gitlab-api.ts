import { afterAll, beforeAll } from "@jest/globals";
import * as http from "http";
import { listen } from "./node-child";

/** What a stand-in route answers with: a status and a JSON body. */
export type Reply = (status: number, value: unknown) => void;

/**
 * A stand-in for GitLab's REST API on a local port for the test file's lifetime. As GitLab does, a
 * request without the project token in PRIVATE-TOKEN gets 401 before any route sees it; a route left
 * unanswered gets 404. Returns the `/api/v4` base URL, known once the file's tests start.
 */
export function fakeGitLabApi(token: string, route: (req: { method: string; url: URL; body: Record<string, string> }, reply: Reply) => boolean): () => string {
    const server = http.createServer((req, res) => {
        let raw = "";
        req.on("data", (c: Buffer) => (raw += c.toString()));
        req.on("end", () => {
            const reply: Reply = (status, value) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
            if (req.headers["private-token"] !== token) return reply(401, { message: "401 Unauthorized" });
            const body = JSON.parse(raw || "{}") as Record<string, string>;
            if (!route({ method: req.method ?? "GET", url: new URL(req.url ?? "/", "http://gitlab.test"), body }, reply))
                reply(404, { message: "404 Not Found" });
        });
    });
    let apiUrl = "";
    beforeAll(async () => {
        apiUrl = `http://127.0.0.1:${await listen(server)}/api/v4`;
    });
    afterAll(() => {
        server.close();
    });
    return () => apiUrl;
}
