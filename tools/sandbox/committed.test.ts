import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import Ajv from "ajv";
import * as fs from "fs";
import { parse, stringify } from "yaml";
import { hostPortClashes } from "../../lib/host-ports";
import { policies } from "../../policy/policies";
import { resource, violationsOfResource, violationsOfStack } from "../../policy/testing";
import { runProgram } from "../../test/support/program";
import { describeEveryStack, type StackRun } from "../../test/support/stack-checks";
import { COMMITTED_SANDBOXES, commitSandboxes } from "../../test/support/sandboxes";
import { copyOfRepo } from "../../test/support/temp-repo";
import { childPipeline, type PipelineEvent } from "../ci/pipeline";
import { readGitlabCiSchema } from "../schemas/vendored";
import { listSandboxes } from "./sandbox";

// A branch that commits a sandbox (a fork of staging or production follows main, so its files land on
// main) must keep every gate green: its stack runs, the policies judge it as a sandbox, the pipeline
// treats it as its owner's, and nothing clashes. The tree check over the same forks is in
// tools/check/tree-check.test.ts ("a committed sandbox of every stack").

let root: string;
let sandboxes: string[];
// Made once, on first use: the stack checks below are declared before any test runs.
let ready: Promise<string> | undefined;
const checkout = () =>
    (ready ??= (async () => {
        const dir = copyOfRepo("committed");
        sandboxes = await commitSandboxes(dir);
        root = dir;
        return dir;
    })());
beforeAll(async () => {
    await checkout();
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

// The checks every shipped stack passes, run on each committed sandbox as the program runs it there.
const runs = new Map<string, Promise<StackRun>>();
const sandboxRun = (stack: string) => {
    if (!runs.has(stack))
        runs.set(
            stack,
            checkout().then((dir) => runProgram(stack, { root: dir })),
        );
    return runs.get(stack)!;
};
describeEveryStack(
    COMMITTED_SANDBOXES.map((s) => s.sandbox),
    sandboxRun,
    (stack) => ({ environment: stack, sandbox: true, branch: COMMITTED_SANDBOXES.find((s) => s.sandbox === stack)?.branch ?? "main" }),
);

describe("a committed sandbox of every stack, kind and EKS", () => {
    it("passes every policy as a sandbox", async () => {
        for (const s of COMMITTED_SANDBOXES) {
            const run = await sandboxRun(s.sandbox);
            const declared = run.resources.map((r) => resource(r.type, r.name, r.inputs));
            const violations: string[] = [];
            for (const policy of policies) {
                if ("validateStack" in policy) violations.push(...(await violationsOfStack(policy, declared)));
                else for (const r of declared) violations.push(...(await violationsOfResource(policy, r)));
            }
            // A sandbox of production is unprotected and may follow a semver range: it is not production.
            expect({ sandbox: s.sandbox, violations }).toEqual({ sandbox: s.sandbox, violations: [] });
        }
    });

    it("is previewed in its own merge request when it runs on EKS, and never deployed or drift-checked by the pipeline", () => {
        const validate = new Ajv({ strict: false, validateFormats: false }).compile(readGitlabCiSchema());
        const image = `registry.example/ci-tools@sha256:${"c".repeat(64)}`;
        const jobs = (event: PipelineEvent, changed: string[]) => {
            const pipeline = parse(stringify(childPipeline({ event, changed, image, backend: { cloudOrg: "acme" }, root }))) as Record<string, unknown>;
            expect(validate(pipeline)).toBe(true);
            return Object.keys(pipeline).filter((k) => !["default", "variables", "stages", "workflow"].includes(k));
        };
        const ownFiles = sandboxes.map((s) => `stacks/Pulumi.${s}.yaml`);
        expect(jobs("merge_request", ownFiles).sort()).toEqual([
            "flux diff",
            "preview sb-aws-development",
            "preview sb-aws-production",
            "preview sb-aws-staging",
        ]);
        expect(jobs("merge_request", ["components/environment.ts"]).sort()).toEqual([
            "flux diff",
            "preview aws-development",
            "preview aws-production",
            "preview aws-staging",
        ]);
        expect(jobs("main", [...ownFiles, "components/environment.ts"]).sort()).toEqual([
            "deploy aws-development",
            "deploy aws-production",
            "deploy aws-staging",
        ]);
        expect(
            jobs("schedule", [])
                .filter((j) => !j.startsWith("reconcile "))
                .sort(),
        ).toEqual(["drift aws-development", "drift aws-production", "drift aws-staging", "expire sandboxes"]);
    });

    it("is listed with its source and lifetime, and publishes no host port another stack uses", () => {
        expect(listSandboxes({ root, now: new Date("2026-11-25T18:00:00.000Z") }).map((l) => `${l.name} ${l.source} ${l.age} ${l.ttl}`)).toEqual(
            COMMITTED_SANDBOXES.map((s) => `${s.sandbox} ${s.from} 1d 7d`).sort(),
        );
        expect(
            hostPortClashes(
                root,
                fs.readdirSync(`${root}/stacks`).map((f) => f.replace(/^Pulumi\.|\.yaml$/g, "")),
            ),
        ).toEqual([]);
    });
});
