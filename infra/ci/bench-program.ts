// Child of bench.ts: loads the Pulumi SDK and the Kubernetes package, then evaluates one stack's
// program under Pulumi's mocks, and prints both times as JSON. A fresh process per measurement.
import { performance } from "perf_hooks";

const start = performance.now();
/* eslint-disable @typescript-eslint/no-require-imports */
const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
require("@pulumi/kubernetes");
const loaded = performance.now();

async function main(): Promise<void> {
    const [stack, configJson] = process.argv.slice(2);
    let resources = 0;
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                resources++;
                return { id: `${args.name}-id`, state: { ...args.inputs, kubeconfig: "apiVersion: v1", arn: "arn:aws:mock" } };
            },
            call: (args) => ({ ...args.inputs, endpoint: "https://mock", certificateAuthorities: [{ data: "" }] }),
        },
        "gitops-platform",
        stack,
        false,
    );
    pulumi.runtime.setAllConfig({ ...JSON.parse(configJson), "gitops-platform:token": "bench-token" }, ["gitops-platform:token"]);
    const { declareStack } = require("../program") as typeof import("../program");
    const outputs = declareStack();
    await new Promise<void>((resolve) => outputs.kubeconfig.apply(() => resolve()));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    const done = performance.now();
    console.log(JSON.stringify({ loadMs: loaded - start, evalMs: done - loaded, resources }));
    process.exit(0);
}

void main();
