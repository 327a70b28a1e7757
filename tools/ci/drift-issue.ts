// A drift found by the nightly check becomes one open GitLab issue per stack, so it reaches the team and
// not only the schedule's owner: opened on the first drift, a note added on each later one, never a second
// issue for the same stack. Through GitLab's REST API (doc/api/issues.md, doc/api/notes.md) with a project
// access token (reporter role, api scope) in DRIFT_ISSUE_TOKEN.

export interface DriftReport {
    /** CI_API_V4_URL, e.g. https://gitlab.com/api/v4 */
    apiUrl: string;
    /** CI_PROJECT_ID */
    projectId: string;
    token: string;
    stack: string;
    /** CI_JOB_URL: where the drift's details are. */
    jobUrl: string;
}

export const DRIFT_LABEL = "drift";

/** The title that identifies a stack's drift issue. */
export function driftTitle(stack: string): string {
    return `Drift in stack ${stack}`;
}

/** Opens the stack's drift issue or adds to the open one; returns its web URL. */
export async function reportDrift(r: DriftReport, request: typeof fetch = fetch): Promise<string> {
    const base = `${r.apiUrl}/projects/${encodeURIComponent(r.projectId)}`;
    const call = async <T>(method: string, path: string, body?: Record<string, string>): Promise<T> => {
        const response = await request(`${base}${path}`, {
            method,
            headers: { "PRIVATE-TOKEN": r.token, "content-type": "application/json" },
            body: body ? JSON.stringify(body) : undefined,
        });
        const text = await response.text();
        // GitLab's error body never holds the token; it says which permission or field is wrong.
        if (!response.ok) throw new Error(`GitLab answered ${method} ${path.split("?")[0]} with ${response.status}: ${text.slice(0, 300)}`);
        return JSON.parse(text) as T;
    };
    const title = driftTitle(r.stack);
    // `search` matches words of the title and description, so the exact title is checked here.
    const query = new URLSearchParams({ state: "opened", labels: DRIFT_LABEL, search: title, in: "title", per_page: "100" });
    const open = (await call<{ iid: number; title: string; web_url: string }[]>("GET", `/issues?${query.toString()}`)).find((i) => i.title === title);
    const what = `The nightly drift check found that stack \`${r.stack}\` no longer matches its state: ${r.jobUrl}. Run its \`reconcile ${r.stack}\` job in that pipeline to put it back, or change the code to what the cloud holds.`;
    if (open) {
        await call("POST", `/issues/${open.iid}/notes`, { body: `Still drifting: ${r.jobUrl}` });
        return open.web_url;
    }
    const created = await call<{ web_url: string }>("POST", "/issues", { title, labels: DRIFT_LABEL, description: what });
    return created.web_url;
}
