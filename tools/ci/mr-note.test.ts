import { beforeEach, describe, expect, it } from "@jest/globals";
import { fakeGitLabApi } from "../../test/support/fake-gitlab-api";
import { NOTE_MARKER, upsertNote } from "./mr-note";

// The merge request's flux-diff note, against a stand-in for GitLab's notes API as doc/api/notes.md
// describes it: notes of a merge request listed a page at a time (per_page, page), created by POST,
// replaced by PUT on its id; other people's notes are there too; a bad token gets 401.

const TOKEN = "stand-in-note-token";
let notes: { id: number; body: string; author: string }[] = [];
const api = fakeGitLabApi(TOKEN, ({ method, url, body: { body } }, json) => {
    const base = "/api/v4/projects/42/merge_requests/7/notes";
    if (method === "GET" && url.pathname === base) {
        const per = Number(url.searchParams.get("per_page") ?? 20);
        const page = Number(url.searchParams.get("page") ?? 1);
        json(200, notes.slice((page - 1) * per, page * per));
        return true;
    }
    if (method === "POST" && url.pathname === base) {
        const note = { id: notes.length + 100, body: body ?? "", author: "bot" };
        notes.push(note);
        json(201, note);
        return true;
    }
    const one = new RegExp(`^${base}/(\\d+)$`).exec(url.pathname);
    const note = one ? notes.find((n) => n.id === Number(one[1])) : undefined;
    if (method === "PUT" && note) {
        note.body = body ?? "";
        json(200, note);
        return true;
    }
    return false;
});

beforeEach(() => {
    notes = [{ id: 1, body: "Looks good to me", author: "alice" }];
});

const upsert = (body: string) => upsertNote({ apiUrl: api(), projectId: "42", mergeRequestIid: "7", token: TOKEN }, body);

describe("the merge request's flux-diff note", () => {
    it("is created once, beside the reviewers' notes", async () => {
        const id = await upsert("## What each environment will get\n- development: +1 ~0 -0");
        expect(notes.map((n) => n.id)).toEqual([1, id]);
        expect(notes[1]?.body).toBe(`${NOTE_MARKER}\n## What each environment will get\n- development: +1 ~0 -0`);
    });

    it("is updated by the next pipeline, never posted twice", async () => {
        const first = await upsert("first");
        const second = await upsert("second");
        expect(second).toBe(first);
        expect(notes.filter((n) => n.body.startsWith(NOTE_MARKER)).map((n) => n.body)).toEqual([`${NOTE_MARKER}\nsecond`]);
    });

    it("is found past the first page of a long discussion", async () => {
        notes.push(...Array.from({ length: 150 }, (_, i) => ({ id: 2 + i, body: `comment ${i}`, author: "bob" })));
        notes.push({ id: 500, body: `${NOTE_MARKER}\nold`, author: "bot" });
        expect(await upsert("new")).toBe(500);
        expect(notes.filter((n) => n.body.startsWith(NOTE_MARKER))).toHaveLength(1);
    });
});
