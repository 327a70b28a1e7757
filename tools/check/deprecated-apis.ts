// Kubernetes API removals and deprecations, from the Kubernetes deprecated API migration guide:
// which group/version/kind, deprecated in, removed in, and what to use instead. Extend it as
// Kubernetes publishes new removals; nothing else needs to change.

export interface ApiRetirement {
    apiVersion: string;
    kinds: string[];
    /** The minor version that started warning, e.g. "1.21". */
    deprecatedIn: string;
    /** The first minor version without it; undefined while no removal is scheduled. */
    removedIn?: string;
    replacement: string;
}

export const API_RETIREMENTS: ApiRetirement[] = [
    { apiVersion: "extensions/v1beta1", kinds: ["DaemonSet", "Deployment", "ReplicaSet"], deprecatedIn: "1.8", removedIn: "1.16", replacement: "apps/v1" },
    { apiVersion: "apps/v1beta1", kinds: ["Deployment", "StatefulSet"], deprecatedIn: "1.9", removedIn: "1.16", replacement: "apps/v1" },
    {
        apiVersion: "apps/v1beta2",
        kinds: ["DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"],
        deprecatedIn: "1.9",
        removedIn: "1.16",
        replacement: "apps/v1",
    },
    { apiVersion: "extensions/v1beta1", kinds: ["NetworkPolicy"], deprecatedIn: "1.9", removedIn: "1.16", replacement: "networking.k8s.io/v1" },
    { apiVersion: "extensions/v1beta1", kinds: ["Ingress"], deprecatedIn: "1.14", removedIn: "1.22", replacement: "networking.k8s.io/v1" },
    {
        apiVersion: "networking.k8s.io/v1beta1",
        kinds: ["Ingress", "IngressClass"],
        deprecatedIn: "1.19",
        removedIn: "1.22",
        replacement: "networking.k8s.io/v1",
    },
    {
        apiVersion: "admissionregistration.k8s.io/v1beta1",
        kinds: ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"],
        deprecatedIn: "1.16",
        removedIn: "1.22",
        replacement: "admissionregistration.k8s.io/v1",
    },
    {
        apiVersion: "apiextensions.k8s.io/v1beta1",
        kinds: ["CustomResourceDefinition"],
        deprecatedIn: "1.16",
        removedIn: "1.22",
        replacement: "apiextensions.k8s.io/v1",
    },
    { apiVersion: "apiregistration.k8s.io/v1beta1", kinds: ["APIService"], deprecatedIn: "1.19", removedIn: "1.22", replacement: "apiregistration.k8s.io/v1" },
    {
        apiVersion: "certificates.k8s.io/v1beta1",
        kinds: ["CertificateSigningRequest"],
        deprecatedIn: "1.19",
        removedIn: "1.22",
        replacement: "certificates.k8s.io/v1",
    },
    { apiVersion: "coordination.k8s.io/v1beta1", kinds: ["Lease"], deprecatedIn: "1.19", removedIn: "1.22", replacement: "coordination.k8s.io/v1" },
    {
        apiVersion: "rbac.authorization.k8s.io/v1beta1",
        kinds: ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"],
        deprecatedIn: "1.17",
        removedIn: "1.22",
        replacement: "rbac.authorization.k8s.io/v1",
    },
    { apiVersion: "scheduling.k8s.io/v1beta1", kinds: ["PriorityClass"], deprecatedIn: "1.14", removedIn: "1.22", replacement: "scheduling.k8s.io/v1" },
    {
        apiVersion: "storage.k8s.io/v1beta1",
        kinds: ["CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"],
        deprecatedIn: "1.19",
        removedIn: "1.22",
        replacement: "storage.k8s.io/v1",
    },
    { apiVersion: "batch/v1beta1", kinds: ["CronJob"], deprecatedIn: "1.21", removedIn: "1.25", replacement: "batch/v1" },
    { apiVersion: "discovery.k8s.io/v1beta1", kinds: ["EndpointSlice"], deprecatedIn: "1.21", removedIn: "1.25", replacement: "discovery.k8s.io/v1" },
    { apiVersion: "events.k8s.io/v1beta1", kinds: ["Event"], deprecatedIn: "1.19", removedIn: "1.25", replacement: "events.k8s.io/v1" },
    { apiVersion: "autoscaling/v2beta1", kinds: ["HorizontalPodAutoscaler"], deprecatedIn: "1.22", removedIn: "1.25", replacement: "autoscaling/v2" },
    { apiVersion: "policy/v1beta1", kinds: ["PodDisruptionBudget"], deprecatedIn: "1.21", removedIn: "1.25", replacement: "policy/v1" },
    {
        apiVersion: "policy/v1beta1",
        kinds: ["PodSecurityPolicy"],
        deprecatedIn: "1.21",
        removedIn: "1.25",
        replacement: "Pod Security Admission (namespace labels pod-security.kubernetes.io/*)",
    },
    { apiVersion: "node.k8s.io/v1beta1", kinds: ["RuntimeClass"], deprecatedIn: "1.20", removedIn: "1.25", replacement: "node.k8s.io/v1" },
    {
        apiVersion: "flowcontrol.apiserver.k8s.io/v1beta1",
        kinds: ["FlowSchema", "PriorityLevelConfiguration"],
        deprecatedIn: "1.23",
        removedIn: "1.26",
        replacement: "flowcontrol.apiserver.k8s.io/v1",
    },
    { apiVersion: "autoscaling/v2beta2", kinds: ["HorizontalPodAutoscaler"], deprecatedIn: "1.23", removedIn: "1.26", replacement: "autoscaling/v2" },
    { apiVersion: "storage.k8s.io/v1beta1", kinds: ["CSIStorageCapacity"], deprecatedIn: "1.24", removedIn: "1.27", replacement: "storage.k8s.io/v1" },
    {
        apiVersion: "flowcontrol.apiserver.k8s.io/v1beta2",
        kinds: ["FlowSchema", "PriorityLevelConfiguration"],
        deprecatedIn: "1.26",
        removedIn: "1.29",
        replacement: "flowcontrol.apiserver.k8s.io/v1",
    },
    {
        apiVersion: "flowcontrol.apiserver.k8s.io/v1beta3",
        kinds: ["FlowSchema", "PriorityLevelConfiguration"],
        deprecatedIn: "1.29",
        removedIn: "1.32",
        replacement: "flowcontrol.apiserver.k8s.io/v1",
    },
    { apiVersion: "v1", kinds: ["Endpoints"], deprecatedIn: "1.33", replacement: "discovery.k8s.io/v1 EndpointSlice" },
];

/** "1.35" from "1.35", "v1.35.0" or "kindest/node:v1.35.0@sha256:…". */
export function kubernetesMinor(version: string): string {
    const m = /v?(\d+)\.(\d+)/.exec(version.replace(/^.*:/, ""));
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
    const minor = kubernetesMinor(version);
    const entry = API_RETIREMENTS.find((r) => r.apiVersion === apiVersion && r.kinds.includes(kind));
    if (!entry || !atLeast(minor, entry.deprecatedIn)) return { status: "ok" };
    if (entry.removedIn && atLeast(minor, entry.removedIn)) {
        return {
            status: "removed",
            message: `${apiVersion} ${kind} was removed in Kubernetes ${entry.removedIn}; this cluster runs ${minor}. Use ${entry.replacement}`,
        };
    }
    const removal = entry.removedIn ? `, removed in ${entry.removedIn}` : ", no removal scheduled yet";
    return { status: "deprecated", message: `${apiVersion} ${kind} is deprecated since Kubernetes ${entry.deprecatedIn}${removal}. Use ${entry.replacement}` };
}
