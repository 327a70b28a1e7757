import { describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as path from "path";
import { parse, stringify } from "yaml";
import { REPO_ROOT } from "../../lib/project";
import { childRun, createPipeline, CreatedJob, dependStatus, evaluateIf, Pipeline, PipelineRun, statuses } from "../../test/support/gitlab";
import { childPipeline, inputFromEnvironment } from "./pipeline";

// Which jobs GitLab would create, and run, for each event: the parent pipeline as .gitlab-ci.yml says, the
// plan job running the real generator with the variables GitLab would give it, and the child pipeline it
// writes. The rules of GitLab this relies on are cited in test/support/gitlab.ts.

const parent = parse(fs.readFileSync(path.join(REPO_ROOT, ".gitlab-ci.yml"), "utf8")) as Record<string, unknown>;
const DIGEST = "0123456789abcdef".repeat(4);
const TOOLS_IMAGE = `registry.gitlab.com/acme/gitops-platform/ci-tools@sha256:${DIGEST}`;
/** The project's CI/CD variables (Settings > CI/CD > Variables) as the README asks for them. */
const PROJECT_VARIABLES = {
    PULUMI_BACKEND_URL: "s3://acme-pulumi-state",
    PULUMI_SECRETS_PROVIDER: "awskms://alias/gitops-platform-state?region=eu-west-1",
    STACK_RUNNER_TAG: "gitops-platform",
};

const MERGE_REQUEST: PipelineRun = {
    source: "merge_request_event",
    ref: { kind: "branch", name: "change-nodes" },
    mergeRequest: { iid: 7, labels: ["infra"], sourceBranch: "change-nodes", diffBaseSha: "b".repeat(40) },
};
const PUSH_TO_MAIN: PipelineRun = { source: "push", ref: { kind: "branch", name: "main" } };
const SCHEDULE: PipelineRun = { source: "schedule", ref: { kind: "branch", name: "main" } };
const TAG: PipelineRun = { source: "push", ref: { kind: "tag", name: "1.2.3" } };

const names = (p: Pipeline) => (p.created ? p.jobs.map((j) => j.name).sort() : []);
const created = (p: Pipeline) => {
    if (!p.created) throw new Error(`GitLab would create no pipeline: ${p.reason}`);
    return p;
};
const job = (p: Pipeline, name: string): CreatedJob => {
    const found = created(p).jobs.find((j) => j.name === name);
    if (!found) throw new Error(`no job ${name}`);
    return found;
};

/**
 * The parent pipeline for an event, then what its plan job writes (the generator reads exactly the plan
 * job's variables, with the tools image from the tools-image job's dotenv report) and the child pipeline
 * GitLab creates from it.
 */
function runEvent(run: PipelineRun, changed: string[] = []) {
    const top = created(createPipeline(parent, { ...run, pipelineVariables: { ...PROJECT_VARIABLES, ...run.pipelineVariables } }));
    const plan = top.jobs.find((j) => j.name === "plan");
    if (!plan) return { parent: top, child: undefined };
    // The dotenv report of tools-image ranks below pipeline variables (docs: CI/CD variable precedence).
    const env = { ...plan.variables, TOOLS_IMAGE, ...run.pipelineVariables, ...PROJECT_VARIABLES };
    const yaml = stringify(childPipeline(inputFromEnvironment(env, changed, REPO_ROOT)));
    const stacks = job(top, "stacks");
    return { parent: top, child: createPipeline(parse(yaml) as Record<string, unknown>, childRun(run, stacks)), yaml };
}

describe("GitLab's rules, as the model reads them", () => {
    it.each<[string, Record<string, string>, boolean]>([
        ['$CI_PIPELINE_SOURCE == "merge_request_event"', { CI_PIPELINE_SOURCE: "merge_request_event" }, true],
        ['$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH', { CI_PIPELINE_SOURCE: "push", CI_DEFAULT_BRANCH: "main" }, false],
        ["$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", { CI_COMMIT_BRANCH: "main", CI_DEFAULT_BRANCH: "main" }, true],
        ["$CI_COMMIT_TAG", { CI_COMMIT_TAG: "" }, false],
        ["$CI_COMMIT_TAG =~ /^\\d+\\.\\d+\\.\\d+$/", { CI_COMMIT_TAG: "1.2.3" }, true],
        ["$CI_COMMIT_TAG =~ /^\\d+\\.\\d+\\.\\d+$/", { CI_COMMIT_TAG: "v1.2.3" }, false],
        ['$A == "x" || ($B && $C != null)', { B: "1", C: "2" }, true],
    ])("%s with %j is %s", (expr, vars, expected) => {
        expect(evaluateIf(expr, vars)).toBe(expected);
    });
});

describe("the jobs GitLab creates for each event, at a glance", () => {
    const RUN_PIPELINE: PipelineRun = { source: "web", ref: { kind: "branch", name: "main" }, pipelineVariables: { EVENT: "main" } };
    const kinds = (jobs: string[]) => [...new Set(jobs.map((j) => j.split(" ")[0] ?? ""))].sort((a, b) => a.localeCompare(b));
    it.each<[string, PipelineRun, string[], string[]]>([
        ["merge request", MERGE_REQUEST, ["e2e", "plan", "stacks", "test", "test-with-own-tree", "test-with-sandboxes", "tools-image"], ["flux", "preview"]],
        ["push to main", PUSH_TO_MAIN, ["e2e", "plan", "stacks", "test", "test-with-own-tree", "test-with-sandboxes", "tools-image"], ["deploy"]],
        ["schedule", SCHEDULE, ["e2e", "plan", "stacks", "test", "test-with-own-tree", "test-with-sandboxes", "tools-image"], ["drift", "expire", "reconcile"]],
        [
            '"Run pipeline" on main with EVENT=main',
            RUN_PIPELINE,
            ["plan", "stacks", "test", "test-with-own-tree", "test-with-sandboxes", "tools-image"],
            ["drift", "expire", "reconcile"],
        ],
        ["tag 1.2.3", TAG, ["publish-platform", "release-guard", "test", "test-with-own-tree", "test-with-sandboxes"], []],
    ])("%s", (_event, run, parentJobs, childJobKinds) => {
        const { parent: top, child } = runEvent(run, ["components/eks-cluster.ts"]);
        expect(names(top)).toEqual(parentJobs);
        expect(child ? kinds(names(child)) : []).toEqual(childJobKinds);
    });
});

describe("the jobs GitLab creates for each event", () => {
    it("a merge request: the tests, the plan, and a preview of each affected stack in the child pipeline", () => {
        const { parent: top, child } = runEvent(MERGE_REQUEST, ["components/eks-cluster.ts"]);
        expect(names(top)).toEqual(["e2e", "plan", "stacks", "test", "test-with-own-tree", "test-with-sandboxes", "tools-image"]);
        expect(job(top, "e2e").when).toBe("manual");
        expect(names(child!)).toEqual(["flux diff", "preview aws-development", "preview aws-production", "preview aws-staging"]);
        // The production gate reads the labels the trigger job hands down.
        expect(job(child!, "preview aws-production").variables["MERGE_REQUEST_LABELS"]).toBe("infra");
    });

    it("a merge request's child pipeline would be empty without its workflow rule, failing the trigger (the bug this guards)", () => {
        const { child, yaml } = runEvent(MERGE_REQUEST, ["components/eks-cluster.ts"]);
        expect(child!.created).toBe(true);
        const withoutWorkflow = parse(yaml!) as Record<string, unknown>;
        delete withoutWorkflow["workflow"];
        expect(createPipeline(withoutWorkflow, childRun(MERGE_REQUEST, job(runEvent(MERGE_REQUEST).parent, "stacks")))).toEqual({
            created: false,
            reason: "the resulting pipeline would have been empty",
        });
    });

    it("a merge request that changes no cloud stack still gets a child pipeline: what each environment will get", () => {
        expect(names(runEvent(MERGE_REQUEST, ["README.md"]).child!)).toEqual(["flux diff"]);
    });

    it("a push to main deploys every cloud stack, whatever the push changed", () => {
        const { parent: top, child } = runEvent(PUSH_TO_MAIN, ["README.md"]);
        expect(names(top)).toEqual(["e2e", "plan", "stacks", "test", "test-with-own-tree", "test-with-sandboxes", "tools-image"]);
        expect(names(child!)).toEqual(["deploy aws-development", "deploy aws-production", "deploy aws-staging"]);
        expect(job(child!, "deploy aws-production").when).toBe("manual");
    });

    it("a schedule checks drift, offers a reconcile per stack, expires sandboxes, and deploys nothing", () => {
        const { child } = runEvent(SCHEDULE);
        expect(names(child!)).toEqual([
            "drift aws-development",
            "drift aws-production",
            "drift aws-staging",
            "expire sandboxes",
            "reconcile aws-development",
            "reconcile aws-production",
            "reconcile aws-staging",
        ]);
        expect(
            created(child!)
                .jobs.filter((j) => j.name.startsWith("reconcile"))
                .map((j) => j.when),
        ).toEqual(["manual", "manual", "manual"]);
    });

    it('"Run pipeline" on main with EVENT=main checks drift: the event comes from GitLab, not from a variable', () => {
        const { child } = runEvent({ source: "web", ref: { kind: "branch", name: "main" }, pipelineVariables: { EVENT: "main" } });
        expect(names(child!).filter((n) => n.startsWith("deploy"))).toEqual([]);
        expect(names(child!)).toContain("drift aws-production");
    });

    it('"Run pipeline" with a TOOLS_IMAGE of the caller\'s choosing is refused before any stack job exists', () => {
        const evil = `registry.example/evil/tools@sha256:${DIGEST}`;
        expect(() => runEvent({ source: "web", ref: { kind: "branch", name: "main" }, pipelineVariables: { TOOLS_IMAGE: evil } })).toThrow(
            `TOOLS_IMAGE ${evil} is not this project's tools image (registry.gitlab.com/acme/gitops-platform/ci-tools@sha256:<digest>)`,
        );
    });

    it("a version tag runs the tests, then publishes platform/ once its commit is found on main", () => {
        const { parent: top, child } = runEvent(TAG);
        expect(names(top)).toEqual(["publish-platform", "release-guard", "test", "test-with-own-tree", "test-with-sandboxes"]);
        expect(child).toBeUndefined();
        expect(job(top, "publish-platform").needs).toEqual(["release-guard"]);
        expect(names(created(createPipeline(parent, { source: "push", ref: { kind: "tag", name: "v1.2.3-rc" } })))).toEqual([
            "test",
            "test-with-own-tree",
            "test-with-sandboxes",
        ]);
    });

    it("a push to another branch without a merge request runs nothing", () => {
        expect(createPipeline(parent, { source: "push", ref: { kind: "branch", name: "wip" } })).toEqual({
            created: false,
            reason: "workflow:rules: no rule lets this pipeline run",
        });
    });
});

describe("what runs after what", () => {
    it("a production deploy waiting for its click holds the stacks job, but not the end-to-end test", () => {
        const { parent: top, child } = runEvent(PUSH_TO_MAIN);
        expect(statuses(created(child!))["deploy aws-production"]).toBe("manual");
        expect(dependStatus(child!)).toBe("running");
        expect(statuses(created(top), { stacks: "running" })["e2e"]).toBe("success");
    });

    it("a drift found at night fails the stacks job and still lets the nightly end-to-end test run", () => {
        const { parent: top, child } = runEvent(SCHEDULE);
        expect(dependStatus(child!, { "drift aws-staging": "failed" })).toBe("failed");
        expect(statuses(created(top), { stacks: "failed" })["e2e"]).toBe("success");
    });

    it("staging deploys only after development succeeded", () => {
        const { child } = runEvent(PUSH_TO_MAIN);
        const s = statuses(created(child!), { "deploy aws-development": "failed" });
        expect(s["deploy aws-staging"]).toBe("skipped");
        expect(s["deploy aws-production"]).toBe("skipped");
    });

    it("every stack job carries the runner tag the project set, to reach a runner that can get to the clusters", () => {
        const { yaml } = runEvent(PUSH_TO_MAIN);
        expect((parse(yaml!) as { default: { tags?: string[] } }).default.tags).toEqual(["gitops-platform"]);
    });
});
