/**
 * The value, where the code's own logic guarantees it exists (an index into an array of the same
 * length, a match group the pattern always captures); a bug otherwise, reported as one.
 */
export function defined<T>(value: T | undefined, what: string): T {
    if (value === undefined) throw new Error(`internal error: ${what} is missing`);
    return value;
}
