// `npm run bench`: program evaluation as `pulumi preview` runs it, per stack, against a floor.
import { runAll, timings } from "../test/steps";
import { benchCheck } from "./check";
import { benchDiff } from "./diff";
import { benchPrograms, programTable } from "./program";

async function main(): Promise<void> {
    console.log("Program evaluation through Pulumi's cmd/run, transpile-only as configured (median of 5 fresh processes, interleaved):\n");
    const programs = await benchPrograms();
    console.log(programTable(programs));
    console.log();
    await benchCheck();
    benchDiff();
    // The inner loop every change runs, gate by gate.
    const gates = await runAll({ streamSuite: false });
    console.log(`\n${timings(gates.results, gates.wallMs)}`);
    const over = programs.stacks.filter((s) => !s.withinTarget).map((s) => s.stack);
    console.log(over.length === 0 ? "Every stack is within its target." : `Over target: ${over.join(", ")}.`);
}

main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
});
