// One merge-request note that says what each environment will get (`npm run diff`), updated on every
// pipeline, never posted twice: found again by a marker in its body. Through GitLab's notes API
// (doc/api/notes.md: list, create and update merge request notes) with a project access token
// (reporter, api scope) in DIFF_NOTE_TOKEN.

export interface NoteTarget {
    /** CI_API_V4_URL */
    apiUrl: string;
    /** CI_PROJECT_ID */
    projectId: string;
    /** CI_MERGE_REQUEST_IID */
    mergeRequestIid: string;
    token: string;
}

/** What makes the note this tool's own among a merge request's notes. */
export const NOTE_MARKER = "<!-- gitops-platform: flux diff -->";

/** Creates the note, or updates the one an earlier pipeline wrote; returns its id. */
export async function upsertNote(t: NoteTarget, body: string, request: typeof fetch = fetch): Promise<number> {
    const base = `${t.apiUrl}/projects/${encodeURIComponent(t.projectId)}/merge_requests/${encodeURIComponent(t.mergeRequestIid)}/notes`;
    const call = async <T>(method: string, url: string, payload?: object): Promise<T> => {
        const response = await request(url, {
            method,
            headers: { "PRIVATE-TOKEN": t.token, "content-type": "application/json" },
            body: payload ? JSON.stringify(payload) : undefined,
        });
        const text = await response.text();
        if (!response.ok) throw new Error(`GitLab answered ${method} ${url.replace(t.apiUrl, "")} with ${response.status}: ${text.slice(0, 300)}`);
        return JSON.parse(text) as T;
    };
    const text = `${NOTE_MARKER}\n${body}`;
    for (let page = 1; page <= 20; page++) {
        const notes = await call<{ id: number; body: string }[]>("GET", `${base}?per_page=100&page=${page}&sort=asc`);
        const mine = notes.find((n) => n.body.startsWith(NOTE_MARKER));
        if (mine) return (await call<{ id: number }>("PUT", `${base}/${mine.id}`, { body: text })).id;
        if (notes.length < 100) break;
    }
    return (await call<{ id: number }>("POST", base, { body: text })).id;
}
