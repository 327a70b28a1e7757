import * as fs from "fs";

/**
 * Whether `dir` is a cache folder only this user can write, creating it so if it is missing. A cache in a
 * shared tmp folder that someone else made (or can write to) could hand this process forged results:
 * such a folder is not used, and the work is done again instead.
 */
export function privateCacheDir(dir: string): boolean {
    try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const stat = fs.lstatSync(dir);
        const mine = typeof process.getuid !== "function" || stat.uid === process.getuid();
        if (!stat.isDirectory() || !mine || (stat.mode & 0o022) !== 0) return false;
        // What it holds may come from a Secret of the tree: nobody else reads it either.
        if ((stat.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
        return true;
    } catch {
        return false;
    }
}
