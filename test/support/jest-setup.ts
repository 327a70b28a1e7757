// Jest raises Error.stackTraceLimit to 100 and maps every frame of every stack through source maps,
// including the SDK's own .js.map files. The Pulumi SDK records a stack on each promise it creates
// (runtime/debuggable.js `debuggablePromise`), only to print it if the promise leaks at exit; under
// jest that mapping was a quarter of the suite's time. Here the SDK records the promise with an empty
// stack, and nothing else changes: leak tracking and every error's own stack stay as they are.
import * as debuggable from "@pulumi/pulumi/runtime/debuggable";

type Debuggable = { debuggablePromise: <T>(p: Promise<T>, ctx: unknown) => Promise<T> };
const sdk = debuggable as unknown as Debuggable;
const record = sdk.debuggablePromise;
sdk.debuggablePromise = (p, ctx) => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
        return record(p, ctx);
    } finally {
        Error.stackTraceLimit = limit;
    }
};
