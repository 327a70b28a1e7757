import { beforeEach, describe, expect, it } from "@jest/globals";
import { fakeGitLabApi } from "../../test/support/fake-gitlab-api";
import { DRIFT_LABEL, driftTitle, reportDrift } from "./drift-issue";

// The nightly drift check's issue, against a stand-in for GitLab's issues API that behaves as GitLab
// documents it (doc/api/issues.md): `state` and `labels` filter (an issue must carry every label listed),
// `search` matches the words of title or description (`in: title` narrows it to the title), case-insensitively;
// a new issue gets the project's next iid; a note is added to an issue by iid (doc/api/notes.md); a request
// without a valid PRIVATE-TOKEN gets 401.

interface Issue {
    iid: number;
    title: string;
    state: "opened" | "closed";
    labels: string[];
    description: string;
    notes: string[];
}

const TOKEN = "stand-in-project-token";
let issues: Issue[] = [];
const api = fakeGitLabApi(TOKEN, ({ method, url, body: parsed }, json) => {
    const base = "/api/v4/projects/42";
    const webUrl = (i: Issue) => `https://gitlab.test/acme/gitops-platform/-/issues/${i.iid}`;
    if (method === "GET" && url.pathname === `${base}/issues`) {
        const labels = (url.searchParams.get("labels") ?? "").split(",").filter(Boolean);
        const words = (url.searchParams.get("search") ?? "").toLowerCase().split(/\s+/).filter(Boolean);
        const inTitleOnly = url.searchParams.get("in") === "title";
        const found = issues.filter(
            (i) =>
                (!url.searchParams.get("state") || i.state === url.searchParams.get("state")) &&
                labels.every((l) => i.labels.includes(l)) &&
                words.every((w) => `${i.title} ${inTitleOnly ? "" : i.description}`.toLowerCase().includes(w)),
        );
        json(
            200,
            found.map((i) => ({ iid: i.iid, title: i.title, state: i.state, labels: i.labels, web_url: webUrl(i) })),
        );
        return true;
    }
    if (method === "POST" && url.pathname === `${base}/issues`) {
        if (!parsed["title"]) {
            json(400, { message: "title is missing" });
            return true;
        }
        const issue: Issue = {
            iid: issues.length + 1,
            title: parsed["title"],
            state: "opened",
            labels: (parsed["labels"] ?? "").split(",").filter(Boolean),
            description: parsed["description"] ?? "",
            notes: [],
        };
        issues.push(issue);
        json(201, { iid: issue.iid, web_url: webUrl(issue) });
        return true;
    }
    const note = new RegExp(`^${base}/issues/(\\d+)/notes$`).exec(url.pathname);
    if (method === "POST" && note) {
        const issue = issues.find((i) => i.iid === Number(note[1]));
        if (!issue) json(404, { message: "404 Issue Not Found" });
        else {
            issue.notes.push(parsed["body"] ?? "");
            json(201, { id: issue.notes.length, body: parsed["body"] });
        }
        return true;
    }
    return false;
});

beforeEach(() => {
    issues = [];
});

const report = (stack: string, job: number, token = TOKEN) =>
    reportDrift({ apiUrl: api(), projectId: "42", token, stack, jobUrl: `https://gitlab.test/acme/gitops-platform/-/jobs/${job}` });

describe("the drift issue", () => {
    it("opens one issue for a stack's first drift, saying where to look and how to put it back", async () => {
        expect(await report("aws-staging", 100)).toBe("https://gitlab.test/acme/gitops-platform/-/issues/1");
        expect(issues).toEqual([
            {
                iid: 1,
                title: "Drift in stack aws-staging",
                state: "opened",
                labels: [DRIFT_LABEL],
                description:
                    "The nightly drift check found that stack `aws-staging` no longer matches its state: https://gitlab.test/acme/gitops-platform/-/jobs/100. Run its `reconcile aws-staging` job in that pipeline to put it back, or change the code to what the cloud holds.",
                notes: [],
            },
        ]);
    });

    it("adds a note to the open issue on the next night, never a second issue", async () => {
        await report("aws-staging", 100);
        expect(await report("aws-staging", 101)).toBe("https://gitlab.test/acme/gitops-platform/-/issues/1");
        expect(issues).toHaveLength(1);
        expect(issues[0]?.notes).toEqual(["Still drifting: https://gitlab.test/acme/gitops-platform/-/jobs/101"]);
    });

    it("keeps stacks apart, although GitLab's search would match one title inside the other", async () => {
        await report("aws-staging", 100);
        await report("aws-staging-2", 102);
        expect(issues.map((i) => i.title)).toEqual([driftTitle("aws-staging"), driftTitle("aws-staging-2")]);
    });

    it("opens a new issue once the last one was closed", async () => {
        await report("aws-production", 100);
        issues[0]!.state = "closed";
        await report("aws-production", 103);
        expect(issues.map((i) => [i.iid, i.state])).toEqual([
            [1, "closed"],
            [2, "opened"],
        ]);
    });

    it("fails with GitLab's reason, and without the token, when the token is refused", async () => {
        const failure = report("aws-staging", 100, "expired-token");
        await expect(failure).rejects.toThrow('GitLab answered GET /issues with 401: {"message":"401 Unauthorized"}');
        await expect(failure).rejects.not.toThrow(/expired-token/);
    });
});
