import { describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { KIND_RELEASE, REPO_ROOT } from "../../lib/project";

// The pipeline is YAML for the repository host; these checks keep it wired to the tools it relies on.

type Job = {
    script?: string[];
    rules?: { if: string; when?: string; allow_failure?: boolean }[];
    services?: { name: string; alias?: string }[];
    variables?: Record<string, string>;
    image?: unknown;
    environment?: unknown;
    interruptible?: boolean;
    resource_group?: string;
};
const pipeline = parse(fs.readFileSync(path.join(REPO_ROOT, ".gitlab-ci.yml"), "utf8")) as Record<string, Job>;
const script = (job: string) => (pipeline[job]?.script ?? []).join("\n");

describe("the merge-request pipeline", () => {
    it("tests every change with the README's command", () => {
        expect(script("test")).toContain("npm test");
    });

    it("downloads no schema: the ones the tests need ship in schemas/", () => {
        expect(script("test")).not.toMatch(/fluxinstances|UPSTREAM_SCHEMAS|raw\.githubusercontent/);
    });

    it("previews a stack that is new in the merge request, then removes the stack it created for that", () => {
        const preview = script("preview");
        expect(preview).toMatch(/grep -q "no stack named"[\s\S]*pulumi stack init "\$stack"[\s\S]*pulumi preview[\s\S]*pulumi stack rm "\$stack" --yes/);
        expect(preview).not.toContain("skipped");
    });

    it("previews every affected stack and fails when any preview failed, not only the last", () => {
        expect(script("preview")).toContain('if [ -n "$failed" ]; then echo "Preview failed for:$failed"; exit 1; fi');
    });

    it("records the development deploy as a GitLab environment, one at a time, never cancelled half-way", () => {
        const deploy = pipeline["deploy-development"];
        expect(deploy?.environment).toEqual({ name: "development", deployment_tier: "development" });
        expect(deploy?.resource_group).toBe("development");
        expect(deploy?.interruptible).toBe(false);
    });

    it("lists the changes against GitLab's merge-request diff base, which a shallow clone cannot get wrong", () => {
        const preview = script("preview");
        expect(preview).toContain('git fetch --depth=1 origin "$CI_MERGE_REQUEST_DIFF_BASE_SHA"');
        expect(preview).toContain('CHANGED="$(git diff --name-only "$CI_MERGE_REQUEST_DIFF_BASE_SHA" HEAD)"');
        expect(preview).not.toContain("...HEAD");
    });

    it("previews only the affected stacks, with the policy pack, on merge requests", () => {
        expect(pipeline.preview?.rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }]);
        expect(script("preview")).toContain('npm run -s affected -- "$CHANGED"');
        expect(script("preview")).toContain('pulumi preview --diff --non-interactive --stack "$stack" --policy-pack policy');
    });

    it("deploys development on a push to main only (never from a schedule or a manual run), and publishes platform/ on a version tag", () => {
        expect(pipeline["deploy-development"]?.rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH' }]);
        expect(script("publish-platform")).toContain('flux push artifact "oci://${CI_REGISTRY_IMAGE}/platform:${CI_COMMIT_TAG}"');
        expect(script("publish-platform")).toContain("--ignore-paths='/*,!/platform/'");
    });
});

describe("the end-to-end job", () => {
    const e2e = pipeline["e2e"];

    it("runs the development environment for real on main, on a schedule, and by hand in a merge request", () => {
        expect(e2e?.rules).toEqual([
            { if: '$CI_PIPELINE_SOURCE == "schedule"' },
            { if: '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH' },
            { if: '$CI_PIPELINE_SOURCE == "merge_request_event"', when: "manual", allow_failure: true },
        ]);
        expect(script("e2e").split("\n").at(-1)).toBe("npm run e2e");
    });

    it("runs kind in a Docker-in-Docker service and reaches the API server on that service's host", () => {
        expect(e2e?.services).toContainEqual(expect.objectContaining({ name: expect.stringMatching(/^docker:[\d.]+-dind$/), alias: "docker" }));
        expect(e2e?.variables).toMatchObject({ DOCKER_HOST: "tcp://docker:2375", E2E_KIND_API_SERVER_HOST: "docker" });
    });

    it("syncs the commit under test: this project, this branch, the job's own token", () => {
        expect(script("e2e")).toContain(
            'export E2E_REPOSITORY_URL="${CI_PROJECT_URL}.git" E2E_BRANCH="${CI_COMMIT_BRANCH:-$CI_MERGE_REQUEST_SOURCE_BRANCH_NAME}"',
        );
        // The token is CI_JOB_TOKEN, which the tool falls back to when no GITLAB_TOKEN is set.
        expect(script("e2e")).not.toContain("GITLAB_TOKEN");
    });

    it("installs the kind release whose node image the program pins", () => {
        expect(e2e?.variables?.KIND_VERSION).toMatch(new RegExp(`^${KIND_RELEASE.replace(".", "\\.")}\\.\\d+$`));
    });
});

describe("jobs that reach EKS", () => {
    it.each(["preview", "deploy-development"])("%s installs the AWS CLI the EKS kubeconfig calls", (job) => {
        const spec = pipeline[job] as Job & { extends?: string };
        expect(spec.extends).toBe(".with-aws-cli");
        const before = (pipeline[".with-aws-cli"] as { before_script?: string[] }).before_script ?? [];
        expect(before.join("\n")).toMatch(/apt-get install .*awscli/);
    });
});

describe("versions the pipeline restates", () => {
    const variables = (pipeline as unknown as { variables: Record<string, string> }).variables;
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };

    it("runs Pulumi in the image of the SDK version the lockfile installs", () => {
        expect(variables.PULUMI_IMAGE).toBe(`pulumi/pulumi-nodejs:${pkg.dependencies["@pulumi/pulumi"]}`);
    });

    it("tests on Node.js 22 LTS, what the pipeline and users run", () => {
        expect(pipeline.test?.image).toBe("node:22");
    });
});
