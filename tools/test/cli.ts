// `npm test`.
import { runAll, timings } from "./steps";

runAll().then(
    ({ results, wallMs }) => {
        console.log(`\n${timings(results, wallMs)}`);
        process.exitCode = results.every((r) => r.code === 0) ? 0 : 1;
    },
    (e: unknown) => {
        console.error(e);
        process.exitCode = 2;
    },
);
