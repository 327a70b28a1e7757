import { parseDocument } from "yaml";
import { configValue, readStackFileText } from "./stack-files";

// Two kind clusters on one laptop publish their host ports on the same machine: a port taken twice makes
// the second `kind create cluster` fail half-way. Found here, from the stack files, before any cluster.

/** A host port a kind stack publishes. */
export interface PublishedPort {
    stack: string;
    hostPort: number;
    protocol: string;
    /** kind listens on every address when none is given (kind's v1alpha4 API defaults listenAddress to 0.0.0.0). */
    listenAddress: string;
}

/** The host ports a stack's kind cluster publishes; none for an EKS stack or a stack file without mappings. */
export function publishedPorts(root: string, stack: string): PublishedPort[] {
    // A stack file that is missing or does not parse has no ports here; the config check reports it.
    const text = readStackFileText(root, stack);
    const cluster = (text === undefined ? undefined : configValue(parseDocument(text), "cluster")) as
        { backend?: string; portMappings?: { hostPort?: number; protocol?: string; listenAddress?: string }[] } | undefined;
    if (cluster?.backend !== "kind") return [];
    return (cluster.portMappings ?? [])
        .filter((m) => typeof m.hostPort === "number")
        .map((m) => ({ stack, hostPort: m.hostPort ?? 0, protocol: m.protocol ?? "TCP", listenAddress: m.listenAddress ?? "0.0.0.0" }));
}

const overlaps = (a: PublishedPort, b: PublishedPort) =>
    a.hostPort === b.hostPort &&
    a.protocol === b.protocol &&
    (a.listenAddress === b.listenAddress || a.listenAddress === "0.0.0.0" || b.listenAddress === "0.0.0.0");

/** Every pair of stacks among `stacks` that would publish the same host port, as one sentence each. */
export function hostPortClashes(root: string, stacks: string[]): string[] {
    const ports = stacks.flatMap((s) => publishedPorts(root, s));
    const clashes: string[] = [];
    ports.forEach((a, i) => {
        for (const b of ports.slice(i + 1)) {
            if (a.stack !== b.stack && overlaps(a, b)) {
                clashes.push(
                    `${a.stack} and ${b.stack} both publish host port ${a.hostPort}/${a.protocol} (${a.listenAddress} and ${b.listenAddress}). ` +
                        `Fix: give one of them another hostPort in stacks/Pulumi.${b.stack}.yaml, or run them one at a time`,
                );
            }
        }
    });
    return clashes;
}
