import { configString, configValue, listStacks, readStackDocument } from "../../lib/stack-files";
import { REPO_ROOT, tierOf } from "../../lib/project";
import { isStackName } from "../../lib/validators";

// Which stacks a change reaches, from the files it changes. The pipeline generator (tools/ci/pipeline.ts)
// uses it, and `npm run -s affected -- <changed files>` prints it; the rules live here, tested.

export interface Affected {
    /** Stacks whose `pulumi preview --diff` the change needs, sorted. */
    stacks: string[];
    /** Whether the change touches what Flux syncs, so the GitOps tree check matters. */
    gitopsTree: boolean;
}

/** Files that make up the Pulumi program (or its policy pack): a change to one can change every stack. */
function isProgramFile(file: string): boolean {
    if (file.endsWith(".test.ts")) return false;
    if (["Pulumi.yaml", "package.json", "package-lock.json", "tsconfig.json", "tsconfig.pulumi.json"].includes(file)) return true;
    // The program is infra/ with the components and the shared code it loads; tools/ never reaches a stack.
    return /^(infra|components|lib)\/.+\.ts$/.test(file) || file.startsWith("policy/");
}

/**
 * The stacks whose plan a change of the GitOps tree reaches: those with alerts, whose Alert watches the
 * namespaces the tree puts sources and HelmReleases in (infra/config/rules.ts `checkAlerts`).
 */
export function stacksReadingTheTree(root: string): string[] {
    return listStacks(root).filter((stack) => configValue(readStackDocument(root, stack), "alerts") !== undefined);
}

/** The sandboxes among the stacks: a stack whose environment is none of the long-lived ones. */
export function sandboxStacks(root: string): string[] {
    return listStacks(root).filter((stack) => tierOf(configString(readStackDocument(root, stack), "environment") ?? "") === "sandbox");
}

/**
 * A sandbox is its owner's: it is previewed when its own stack file changes, never because the program
 * did (its state may live in its owner's backend, and a merge request must not wait on it).
 */
export function affectedStacks(changedFiles: string[], knownStacks: string[], treeReaders: string[] = [], sandboxes: string[] = []): Affected {
    const stacks = new Set<string>();
    let gitopsTree = false;
    for (const raw of changedFiles) {
        const file = raw.trim().replace(/^\.\//, "");
        if (!file) continue;
        const stackFile = /^stacks\/Pulumi\.(.+)\.yaml$/.exec(file)?.[1];
        if (stackFile) {
            // A deleted stack file has nothing left to preview.
            if (knownStacks.includes(stackFile)) stacks.add(stackFile);
        } else if (isProgramFile(file)) {
            knownStacks.filter((s) => !sandboxes.includes(s)).forEach((s) => stacks.add(s));
        } else if (/^(clusters|platform)\//.test(file)) {
            // Flux applies these from Git; only the plan of a stack that reads the tree can change.
            gitopsTree = true;
            treeReaders.filter((s) => knownStacks.includes(s) && !sandboxes.includes(s)).forEach((s) => stacks.add(s));
        }
    }
    return { stacks: [...stacks].sort(), gitopsTree };
}

/**
 * Why stack files' names cannot be handed to the pipeline's shell, one line each: only what Pulumi
 * accepts as a stack name (letters, digits, '-', '_', '.') passes, so a file name is never shell syntax,
 * a glob or two words.
 */
export function unsafeStackNames(names: string[]): string[] {
    return names
        .filter((name) => !isStackName(name))
        .map((name) => `stacks/Pulumi.${name}.yaml: '${name}' is not a stack name (letters, digits, '-', '_' and '.'). Fix: rename the file`);
}

if (require.main === module) {
    const root = REPO_ROOT;
    const known = listStacks(root);
    const unsafe = unsafeStackNames(known);
    if (unsafe.length > 0) {
        for (const line of unsafe) console.error(line);
        process.exit(1);
    }
    const args = process.argv.slice(2);
    const json = args[0] === "--json";
    const files = (json ? args.slice(1) : args).flatMap((a) => a.split("\n"));
    const result = affectedStacks(files, known, stacksReadingTheTree(root), sandboxStacks(root));
    console.log(json ? JSON.stringify(result) : result.stacks.join("\n"));
}
