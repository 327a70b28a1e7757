// Kubernetes and cert-manager API removals and deprecations, from Fairwinds' pluto data (vendored in
// schemas/pluto-versions.yaml; schemas/sources.json names the release), plus the few entries that data
// lacks, each with its reason.
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { SCHEMAS_DIR } from "../schemas/vendored";

export interface ApiRetirement {
    apiVersion: string;
    kinds: string[];
    /** What decides: a Kubernetes minor of the cluster, or the cert-manager the platform installs. */
    component: "k8s" | "cert-manager";
    /** The minor version that started warning, e.g. "1.21". */
    deprecatedIn: string;
    /** The first minor version without it; undefined while no removal is scheduled. */
    removedIn?: string;
    replacement: string;
}

interface PlutoEntry {
    version: string;
    kind: string;
    "deprecated-in": string;
    "removed-in": string;
    "replacement-api": string;
    component: string;
}

/** "1.16" from pluto's "v1.16.0"; undefined for "". */
const minorOf = (v: string) => /^v?(\d+)\.(\d+)/.exec(v)?.slice(1, 3).join(".");

/** pluto's entries for what this platform can run: Kubernetes itself and cert-manager (no Istio here). */
function fromPluto(): ApiRetirement[] {
    const data = parse(fs.readFileSync(path.join(SCHEMAS_DIR, "pluto-versions.yaml"), "utf8")) as { "deprecated-versions": PlutoEntry[] };
    const entries: ApiRetirement[] = [];
    for (const e of data["deprecated-versions"]) {
        if (e.component !== "k8s" && e.component !== "cert-manager") continue;
        if (e.kind.endsWith("List")) continue; // list kinds are never written in a manifest
        const retirement: ApiRetirement = {
            apiVersion: e.version,
            kinds: [e.kind],
            component: e.component,
            deprecatedIn: minorOf(e["deprecated-in"]) ?? "0.0",
            removedIn: minorOf(e["removed-in"]),
            // pluto leaves it empty where nothing replaces the API (PodSecurityPolicy).
            replacement: e["replacement-api"] || "its successor",
        };
        const same = entries.find((r) => JSON.stringify({ ...r, kinds: [] }) === JSON.stringify({ ...retirement, kinds: [] }));
        if (same) same.kinds.push(e.kind);
        else entries.push(retirement);
    }
    return entries;
}

/** Where pluto's data is missing or wrong, each with its reason; these win over pluto's. */
const OURS: ApiRetirement[] = [
    // pluto v5.24.0 says FlowSchema v1beta3 was deprecated in 1.24, before the version existed (1.26);
    // Kubernetes deprecated it in 1.29 and removed it in 1.32 (deprecated API migration guide).
    {
        apiVersion: "flowcontrol.apiserver.k8s.io/v1beta3",
        kinds: ["FlowSchema", "PriorityLevelConfiguration"],
        component: "k8s",
        deprecatedIn: "1.29",
        removedIn: "1.32",
        replacement: "flowcontrol.apiserver.k8s.io/v1",
    },
    // Kubernetes 1.33 deprecated v1 Endpoints in favour of EndpointSlices (KEP-4974); pluto v5.24.0 lacks it.
    { apiVersion: "v1", kinds: ["Endpoints"], component: "k8s", deprecatedIn: "1.33", replacement: "discovery.k8s.io/v1 EndpointSlice" },
];

export const API_RETIREMENTS: ApiRetirement[] = [...OURS, ...fromPluto()];

/**
 * The cert-manager the platform installs (platform/services/cert-manager.yaml, chart "1.x"): the newest
 * 1.x, so every cert-manager removal pluto knows (all by 1.6) applies.
 */
const CERT_MANAGER_MINOR = "1.99";

/** "1.35" from "1.35", "v1.35.0" or "kindest/node:v1.35.0@sha256:…". */
export function kubernetesMinor(version: string): string {
    const m = /v?(\d+)\.(\d+)/.exec(version.replace(/@sha256:.*$/, "").replace(/^.*:/, ""));
    if (!m) throw new Error(`'${version}' holds no Kubernetes version`);
    return `${m[1]}.${m[2]}`;
}

function atLeast(version: string, minimum: string): boolean {
    const [a = 0, b = 0] = version.split(".").map(Number);
    const [c = 0, d = 0] = minimum.split(".").map(Number);
    return a > c || (a === c && b >= d);
}

export type ApiVerdict = { status: "removed"; message: string } | { status: "deprecated"; message: string } | { status: "ok" };

/** Whether a cluster of `version` serves `apiVersion`/`kind`, and what to say when it does not. */
export function apiVerdict(apiVersion: string, kind: string, version: string): ApiVerdict {
    const entry = API_RETIREMENTS.find((r) => r.apiVersion === apiVersion && r.kinds.includes(kind));
    if (!entry) return { status: "ok" };
    const certManager = entry.component === "cert-manager";
    const minor = certManager ? CERT_MANAGER_MINOR : kubernetesMinor(version);
    const product = certManager ? "cert-manager" : "Kubernetes";
    if (!atLeast(minor, entry.deprecatedIn)) return { status: "ok" };
    if (entry.removedIn && atLeast(minor, entry.removedIn)) {
        const runs = certManager ? "the platform installs cert-manager 1.x" : `this cluster runs ${minor}`;
        return { status: "removed", message: `${apiVersion} ${kind} was removed in ${product} ${entry.removedIn}; ${runs}. Use ${entry.replacement}` };
    }
    const removal = entry.removedIn ? `, removed in ${entry.removedIn}` : ", no removal scheduled yet";
    return { status: "deprecated", message: `${apiVersion} ${kind} is deprecated since ${product} ${entry.deprecatedIn}${removal}. Use ${entry.replacement}` };
}
