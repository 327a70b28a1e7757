// @ts-check
// Preloaded (`node -r`) into the process that runs Pulumi's own `@pulumi/pulumi/cmd/run`, the way the
// Node.js language host starts a program. It stands in for the engine only: Pulumi's unit-test mocks
// answer resource registrations, while run.js itself still picks the tsconfig, registers ts-node and
// requires the program from the cwd it was given. On exit it writes what happened to REPORT_FILE.
"use strict";
const fs = require("fs");
const { performance } = require("perf_hooks");

const started = performance.now();
const pulumi = require("@pulumi/pulumi");
const argv = process.argv;
/** @param {string} name */
const flag = (name) => {
    const at = argv.indexOf(`--${name}`);
    return at >= 0 ? argv[at + 1] : undefined;
};

/** @type {{ type: string, name: string }[]} */
const resources = [];
/** The serialised dynamic providers, as the engine would store them (`__provider`), by resource type. */
/** @type {Record<string, string>} */
const providers = {};
void pulumi.runtime.setMocks(
    {
        newResource: (args) => {
            resources.push({ type: args.type, name: args.name });
            if (args.type.startsWith("pulumi-nodejs:dynamic/")) providers[args.type] = args.inputs.__provider;
            // What the real providers would report once created: enough for the program's applies to run.
            return {
                id: `${args.name}-id`,
                state: { ...args.inputs, kubeconfig: "apiVersion: v1\nkind: Config\n", arn: "arn:aws:iam::123456789012:role/mock" },
            };
        },
        call: (args) =>
            args.token === "aws:index/getCallerIdentity:getCallerIdentity"
                ? { arn: process.env.MOCK_CALLER_ARN ?? "" }
                : { ...args.inputs, endpoint: "https://mock.example", certificateAuthorities: [{ data: "" }], certificateAuthority: { data: "" } },
    },
    flag("project") ?? "project",
    flag("stack") ?? "stack",
    argv.includes("--dry-run"),
);

// The SDK asks a real monitor to wait for outstanding work at shutdown; the mock has nothing to wait for.
const monitor = /** @type {any} */ (require("@pulumi/pulumi/runtime/settings").getMonitor());
if (monitor && !monitor.signalAndWaitForShutdown) {
    /** @type {(req: unknown, callback: (error: null, response: object) => void) => void} */
    const answerAtOnce = (_req, callback) => callback(null, {});
    monitor.signalAndWaitForShutdown = answerAtOnce;
}

process.on("exit", (code) => {
    const tsNode = /** @type {any} */ (process)[Symbol.for("ts-node.register.instance")];
    const report = {
        code,
        cwd: process.cwd(),
        resources,
        providers,
        // Every installed package the process loaded, as the lockfile names it (node_modules/<name>, nested kept).
        packages: [
            ...new Set(
                Object.keys(require.cache)
                    .map((file) => /^.*?\/(node_modules\/(?:@[^/]+\/)?[^/]+(?:\/node_modules\/(?:@[^/]+\/)?[^/]+)*)\//.exec(file)?.[1])
                    .filter((name) => name !== undefined),
            ),
        ].sort(),
        elapsedMs: performance.now() - started,
        maxRssMb: process.resourceUsage().maxRSS / 1024,
        tsNode: tsNode
            ? {
                  transpileOnly: tsNode.options.transpileOnly === true,
                  swc: tsNode.options.swc === true,
                  configFile: tsNode.configFilePath ?? null,
                  module: tsNode.config.options.module,
                  target: tsNode.config.options.target,
              }
            : null,
    };
    if (process.env.REPORT_FILE) fs.writeFileSync(process.env.REPORT_FILE, JSON.stringify(report));
});
