import { afterEach, describe, expect, it } from "@jest/globals";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { wrapperDir } from "./kustomize";
import { privateCacheDir } from "./private-cache";

describe("a cache folder in a shared tmp", () => {
    const made: string[] = [];
    const scratch = () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-cache-test-"));
        made.push(dir);
        return dir;
    };
    afterEach(() => made.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

    it("is made readable and writable by this user alone", () => {
        const dir = path.join(scratch(), "cache");
        expect(privateCacheDir(dir)).toBe(true);
        expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    });

    it("is closed to others when an earlier run left it readable", () => {
        const dir = path.join(scratch(), "cache");
        fs.mkdirSync(dir, { mode: 0o755 });
        fs.chmodSync(dir, 0o755);
        expect(privateCacheDir(dir)).toBe(true);
        expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    });

    it("is not used when others can write to it: it could hold forged results", () => {
        const dir = path.join(scratch(), "cache");
        fs.mkdirSync(dir);
        fs.chmodSync(dir, 0o777);
        expect(privateCacheDir(dir)).toBe(false);
    });

    it("is not used when it is a file, or a link to somewhere else", () => {
        const base = scratch();
        fs.writeFileSync(path.join(base, "file"), "");
        fs.symlinkSync(os.tmpdir(), path.join(base, "link"));
        expect(privateCacheDir(path.join(base, "file"))).toBe(false);
        expect(privateCacheDir(path.join(base, "link"))).toBe(false);
    });
});

describe("a wrapper kustomization found on disk", () => {
    it("is used only if it says exactly what the build asked for", () => {
        const asked = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../somewhere/platform/services\n";
        const dir = wrapperDir(asked);
        fs.writeFileSync(path.join(dir, "kustomization.yaml"), "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - /etc\n");
        expect(wrapperDir(asked)).toBe(dir);
        expect(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8")).toBe(asked);
    });
});
