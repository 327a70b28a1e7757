import type { Environment as EnvironmentType } from "../../components/environment";
import type { parseConfig as parseConfigType } from "../../infra/config";
import type { environmentArgs as environmentArgsType } from "../../infra/program";
import { field, runMocked, stackConfig, TEST_TOKEN } from "./program";

/**
 * Runs a stack that lives in another checkout (a sandbox forked into a temporary copy of the repo)
 * under mocks, and returns what its FluxInstance syncs.
 */
/** @public Loaded with `require` where it is needed. */
export async function runForkedStack(root: string, stack: string): Promise<{ ref: unknown; path: unknown }> {
    const run = await runMocked(stack, { root }, (load) => {
        const { parseConfig } = load("../../infra/config") as { parseConfig: typeof parseConfigType };
        const { Environment } = load("../../components/environment") as { Environment: typeof EnvironmentType };
        const { environmentArgs } = load("../../infra/program") as { environmentArgs: typeof environmentArgsType };
        const config = parseConfig(stackConfig(stack, root), { stack, repoRoot: root, env: { GITLAB_TOKEN: TEST_TOKEN } });
        return new Environment(config.environment, environmentArgs(config));
    });
    const sync = field(run.one("kubernetes:fluxcd.controlplane.io/v1:FluxInstance").inputs, "spec.sync");
    return { ref: field(sync, "ref"), path: field(sync, "path") };
}
