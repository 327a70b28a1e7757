import { execFile } from "child_process";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as path from "path";
import { transformSync } from "@swc/core";
import { REPO_ROOT } from "../../lib/project";

// The providers that talk to a cluster use @kubernetes/client-node, an ES module jest cannot load: their
// executors run in a plain Node child, compiled to CommonJS where Node resolves the project's packages.

const CACHE = path.join(REPO_ROOT, "node_modules", ".cache", "gitops-platform");

/** Compiles repository files (with what they import, listed too) to CommonJS; returns the first one's path. */
export function compiledForNode(files: string[]): string {
    for (const file of files) {
        const js = transformSync(fs.readFileSync(path.join(REPO_ROOT, file), "utf8"), {
            filename: path.basename(file),
            jsc: { parser: { syntax: "typescript" }, target: "es2022" },
            module: { type: "commonjs" },
        });
        fs.mkdirSync(path.join(CACHE, path.dirname(file)), { recursive: true });
        fs.writeFileSync(path.join(CACHE, file.replace(/\.ts$/, ".js")), js.code);
    }
    return path.join(CACHE, files[0]!.replace(/\.ts$/, ".js"));
}

/** Runs a Node script and parses the JSON on the last line it prints. */
export function runInNode<T>(script: string, env: Record<string, string>): Promise<T> {
    return new Promise((resolve, reject) => {
        execFile(process.execPath, ["-e", script], { env: { ...process.env, ...env }, timeout: 30000 }, (err, stdout, stderr) => {
            if (err) return reject(new Error(`${err.message}\n${stderr}`));
            resolve(JSON.parse(stdout.trim().split("\n").pop()!) as T);
        });
    });
}

export async function listen(server: http.Server): Promise<number> {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as AddressInfo).port;
}
