import { afterAll, beforeEach, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { installFakes, runnerWith } from "../../test/support/fake-cli";
import { listen } from "../../test/support/node-child";
import { copyOfRepo } from "../../test/support/temp-repo";
import { PRODUCTION_OVERRIDE_LABEL } from "./pipeline";
import { previewStack } from "./preview";
import { pulumiAccessToken } from "./pulumi-token";

// A merge request's preview of one stack, against a stand-in Pulumi CLI: what it runs, what it reports
// to the merge request, and when it fails the job.

let root: string;
let state: string;
let printed: string[];
const roots: string[] = [];

beforeEach(() => {
    root = copyOfRepo("preview", ["stacks"]);
    roots.push(root);
    state = path.join(root, ".fake-state");
    fs.mkdirSync(state);
    installFakes(path.join(root, ".fake-pulumi", "bin"), ["pulumi"]);
    printed = [];
});
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

const urn = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::gitops-platform::gitops-platform:index:Environment$${type}::${name}`;

function planned(stack: string, steps: { op: string; type: string; name: string; replaceReasons?: string[] }[], exit = 0): void {
    const digest = { steps: steps.map((s) => ({ op: s.op, urn: urn(stack, s.type, s.name), replaceReasons: s.replaceReasons })), changeSummary: {} };
    fs.writeFileSync(path.join(state, `preview-${stack}.json`), JSON.stringify(digest));
    fs.writeFileSync(path.join(state, `preview-exit-${stack}`), String(exit));
}

async function preview(stack: string, env: NodeJS.ProcessEnv = {}): Promise<number> {
    const full = { PATH: path.join(root, ".fake-pulumi", "bin"), FAKE_STATE: state, ...env };
    return previewStack(stack, { root, env: full, run: runnerWith(full), print: (l) => printed.push(l) });
}

const calls = () =>
    fs
        .readFileSync(path.join(state, "calls"), "utf8")
        .trim()
        .split("\n")
        .map((c) => c.replace(/ \|.*/, ""));
const replacedCluster = { op: "replace", type: "eks:index:Cluster", name: "production-cluster", replaceReasons: ["version"] };

describe("the preview of one stack in a merge request", () => {
    it("reports its counts for the merge request widget and lists what would be replaced or deleted", async () => {
        fs.writeFileSync(path.join(state, "stack-aws-staging"), "");
        planned("aws-staging", [
            { op: "same", type: "aws:ec2/vpc:Vpc", name: "staging-vpc" },
            { op: "create", type: "kubernetes:core/v1:Secret", name: "staging-flux-platform-repository" },
            { op: "update", type: "kubernetes:fluxcd.controlplane.io/v1:FluxInstance", name: "staging-flux-instance" },
            { op: "replace", type: "aws:eks/nodeGroup:NodeGroup", name: "staging-cluster-nodes", replaceReasons: ["instanceTypes"] },
            { op: "delete", type: "kubernetes:core/v1:ConfigMap", name: "old" },
        ]);
        expect(await preview("aws-staging")).toBe(0);
        expect(JSON.parse(fs.readFileSync(path.join(root, "preview-aws-staging.json"), "utf8"))).toEqual({ create: 2, update: 1, delete: 2 });
        expect(fs.readFileSync(path.join(root, "preview-aws-staging.md"), "utf8")).toBe(
            [
                "## aws-staging: 2 to add, 1 to change, 2 to delete",
                "",
                "Replaced or deleted:",
                "- replace aws:eks/nodeGroup:NodeGroup staging-cluster-nodes (replaced because of instanceTypes)",
                "- delete kubernetes:core/v1:ConfigMap old",
                "",
            ].join("\n"),
        );
        expect(calls()).toEqual([
            "pulumi stack select aws-staging --non-interactive",
            "pulumi preview --json --stack aws-staging --policy-pack policy --non-interactive",
        ]);
    });

    it("prints each change with the properties it touches, never their values", async () => {
        fs.writeFileSync(path.join(state, "stack-aws-staging"), "");
        const digest = {
            steps: [
                {
                    op: "update",
                    urn: urn("aws-staging", "kubernetes:core/v1:Secret", "staging-flux-sync-credentials"),
                    detailedDiff: { "stringData.password": { kind: "update" } },
                    newState: { inputs: { stringData: { password: "stand-in-token-value" } } },
                },
                {
                    op: "replace",
                    urn: urn("aws-staging", "aws:eks/nodeGroup:NodeGroup", "staging-cluster-nodes"),
                    detailedDiff: { instanceTypes: { kind: "update-replace" }, "labels.tier": { kind: "add" } },
                },
            ],
        };
        fs.writeFileSync(path.join(state, "preview-aws-staging.json"), JSON.stringify(digest));
        expect(await preview("aws-staging")).toBe(0);
        expect(printed.slice(0, 5)).toEqual([
            "update             kubernetes:core/v1:Secret staging-flux-sync-credentials",
            "    ~ stringData.password",
            "replace            aws:eks/nodeGroup:NodeGroup staging-cluster-nodes",
            "    ~ instanceTypes (forces replacement)",
            "    + labels.tier",
        ]);
        expect(printed.join("\n")).not.toContain("stand-in-token-value");
    });

    it("previews a stack new in the merge request against an empty state, in a local backend of its own: the real one is never written", async () => {
        planned("aws-staging", [{ op: "create", type: "eks:index:Cluster", name: "staging-cluster" }]);
        expect(await preview("aws-staging", { PULUMI_BACKEND_URL: "s3://acme-state" })).toBe(0);
        const log = fs.readFileSync(path.join(state, "calls"), "utf8").trim().split("\n");
        expect(log[0]).toBe("pulumi stack select aws-staging --non-interactive | backend=s3://acme-state passphrase=");
        expect(log.slice(1).map((l) => l.replace(/file:\/\/\S+/, "file://<scratch>"))).toEqual([
            "pulumi stack init aws-staging --non-interactive | backend=file://<scratch> passphrase=set",
            "pulumi preview --json --stack aws-staging --policy-pack policy --non-interactive | backend=file://<scratch> passphrase=set",
        ]);
        const scratch = /file:\/\/(\S+)/.exec(log[1] ?? "")?.[1] ?? "";
        expect(scratch).toContain("preview-state-");
        expect(fs.existsSync(scratch)).toBe(false);
    });

    it("recognises production's stack file however its environment line is written", async () => {
        const file = path.join(root, "stacks", "Pulumi.aws-production.yaml");
        for (const spelling of ["  gitops-platform:environment: production # the real one", '  "gitops-platform:environment": "production"']) {
            fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/^ {2}\S*environment\S*: .*$/m, spelling));
            fs.writeFileSync(path.join(state, "stack-aws-production"), "");
            planned("aws-production", [replacedCluster]);
            printed = [];
            expect(await preview("aws-production")).toBe(1);
            expect(printed.at(-1)).toMatch(/^This change would replace eks:index:Cluster production-cluster in production\./);
        }
        fs.writeFileSync(file, `config: {"gitops-platform:environment": production}\n`);
        printed = [];
        expect(await preview("aws-production")).toBe(1);
    });

    it("fails, previewing nothing, when the backend cannot be reached or refuses the credentials", async () => {
        fs.writeFileSync(path.join(state, "backend-down"), "");
        expect(await preview("aws-staging")).toBe(1);
        expect(printed.join("\n")).toContain("Could not select stack aws-staging; nothing was previewed:\nerror: getting user info: 401 Unauthorized");
        expect(calls()).toEqual(["pulumi stack select aws-staging --non-interactive"]);
    });

    it("fails when the preview fails, with the counts it got that far", async () => {
        fs.writeFileSync(path.join(state, "stack-aws-staging"), "");
        planned("aws-staging", [{ op: "create", type: "kubernetes:core/v1:Secret", name: "s" }], 255);
        expect(await preview("aws-staging")).toBe(1);
        expect(fs.existsSync(path.join(root, "preview-aws-staging.json"))).toBe(true);
    });

    it("stops a change that replaces the production cluster, unless the merge request carries the override label", async () => {
        fs.writeFileSync(path.join(state, "stack-aws-production"), "");
        planned("aws-production", [
            replacedCluster,
            { op: "update", type: "kubernetes:fluxcd.controlplane.io/v1:FluxInstance", name: "production-flux-instance" },
        ]);
        expect(await preview("aws-production")).toBe(1);
        expect(printed.at(-1)).toBe(
            `This change would replace eks:index:Cluster production-cluster in production. If that is intended, add the label '${PRODUCTION_OVERRIDE_LABEL}' to the merge request and run the pipeline again.`,
        );
        expect(await preview("aws-production", { MERGE_REQUEST_LABELS: `docs,${PRODUCTION_OVERRIDE_LABEL}` })).toBe(0);
    });

    it("lets staging replace its cluster, and production update its FluxInstance in place", async () => {
        fs.writeFileSync(path.join(state, "stack-aws-staging"), "");
        planned("aws-staging", [{ ...replacedCluster, name: "staging-cluster" }]);
        expect(await preview("aws-staging")).toBe(0);
        fs.writeFileSync(path.join(state, "stack-aws-production"), "");
        planned("aws-production", [{ op: "update", type: "kubernetes:fluxcd.controlplane.io/v1:FluxInstance", name: "production-flux-instance" }]);
        expect(await preview("aws-production")).toBe(0);
        planned("aws-production", [{ op: "delete", type: "kubernetes:fluxcd.controlplane.io/v1:FluxInstance", name: "production-flux-instance" }]);
        expect(await preview("aws-production")).toBe(1);
    });
});

describe("Pulumi Cloud login from the job's OIDC token", () => {
    const requests: unknown[] = [];
    const server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
            const parsed = JSON.parse(body) as { subject_token?: string };
            requests.push({ path: req.url, ...parsed });
            if (parsed.subject_token === "expired-id-token") {
                res.writeHead(401, { "content-type": "application/json" }).end('{"error":"invalid_grant","error_description":"token expired"}');
            } else res.writeHead(200, { "content-type": "application/json" }).end('{"access_token":"short-lived-stand-in","expires_in":7200}');
        });
    });
    afterAll(() => {
        server.close();
    });

    it("exchanges the id_token for an organisation token, the RFC 8693 way Pulumi Cloud documents", async () => {
        const apiUrl = `http://127.0.0.1:${await listen(server)}`;
        expect(await pulumiAccessToken({ org: "acme", idToken: "gitlab-id-token", apiUrl })).toBe("short-lived-stand-in");
        expect(requests[0]).toEqual({
            path: "/api/oauth/token",
            audience: "urn:pulumi:org:acme",
            grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
            subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
            requested_token_type: "urn:pulumi:token-type:access_token:organization",
            subject_token: "gitlab-id-token",
            expiration: 7200,
        });
        await expect(pulumiAccessToken({ org: "acme", idToken: "expired-id-token", apiUrl })).rejects.toThrow(
            'Pulumi Cloud refused the OIDC token exchange for acme (401): {"error":"invalid_grant","error_description":"token expired"}',
        );
    });
});
