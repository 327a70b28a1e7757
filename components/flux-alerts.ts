import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export type AlertChannel = "slack" | "msteams" | "generic";

export interface FluxAlertsArgs {
    /** Where notifications go: a Slack or Microsoft Teams webhook, or any webhook taking Flux's JSON events. */
    type: AlertChannel;
    /** Slack channel, when the webhook does not fix one. @default the webhook's own channel */
    channel?: string;
    /** The webhook URL. Secret: it is the credential. */
    webhookUrl: pulumi.Input<string>;
    /** Lowest severity that is sent. @default "error" */
    severity?: "error" | "info";
    /** Namespaces whose HelmReleases are watched, besides the sources and Kustomizations in flux-system. @default [] */
    helmReleaseNamespaces?: string[];
    /** Namespaces besides flux-system whose sources (Git, OCI and Helm repositories) are watched. @default [] */
    sourceNamespaces?: string[];
    /** Namespace of the Provider, Alert and webhook secret. @default "flux-system" */
    namespace?: string;
}

/**
 * The objects an Alert watches: the Kustomizations in flux-system, the sources there and wherever else
 * they live, and the HelmReleases in the given namespaces.
 */
export function alertEventSources(namespace: string, helmReleaseNamespaces: string[], sourceNamespaces: string[] = []) {
    return [
        ...[namespace, ...sourceNamespaces.filter((ns) => ns !== namespace)].flatMap((ns) =>
            ["GitRepository", "OCIRepository", "HelmRepository"].map((kind) => ({ kind, name: "*", namespace: ns })),
        ),
        { kind: "Kustomization", name: "*", namespace },
        ...helmReleaseNamespaces.map((ns) => ({ kind: "HelmRelease", name: "*", namespace: ns })),
    ];
}

/**
 * Failed reconciliations reach people: a Flux notification Provider for the webhook, and an Alert on the
 * platform's sources, Kustomizations and HelmReleases.
 */
export class FluxAlerts extends pulumi.ComponentResource {
    readonly providerName: pulumi.Output<string>;
    readonly alertName: pulumi.Output<string>;

    constructor(name: string, args: FluxAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:FluxAlerts", name, {}, opts);
        const namespace = args.namespace ?? "flux-system";

        const webhook = new k8s.core.v1.Secret(
            `${name}-webhook`,
            { metadata: { name: "flux-alerts-webhook", namespace }, stringData: { address: pulumi.secret(args.webhookUrl) } },
            { parent: this },
        );
        const provider = new k8s.apiextensions.CustomResource(
            `${name}-provider`,
            {
                apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
                kind: "Provider",
                metadata: { name: "platform-alerts", namespace },
                spec: { type: args.type, ...(args.channel ? { channel: args.channel } : {}), secretRef: { name: webhook.metadata.name } },
            },
            { parent: this },
        );
        const alert = new k8s.apiextensions.CustomResource(
            `${name}-alert`,
            {
                apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
                kind: "Alert",
                metadata: { name: "platform-errors", namespace },
                spec: {
                    providerRef: { name: provider.metadata.name },
                    eventSeverity: args.severity ?? "error",
                    eventSources: alertEventSources(namespace, args.helmReleaseNamespaces ?? [], args.sourceNamespaces ?? []),
                },
            },
            { parent: this },
        );

        this.providerName = provider.metadata.name;
        this.alertName = alert.metadata.name;
        this.registerOutputs({ providerName: this.providerName, alertName: this.alertName });
    }
}
