import * as pulumi from "@pulumi/pulumi";
import { Environment, EnvironmentArgs } from "../components/environment";
import { EnvironmentConfig, loadConfig } from "./config";

/** What a stack exports; `pulumi stack output` shows these. */
export interface StackOutputs {
    environmentName: string;
    clusterName: pulumi.Output<string>;
    /** Secret: `pulumi stack output kubeconfig --show-secrets`. */
    kubeconfig: pulumi.Output<string>;
    kubeContext: pulumi.Output<string>;
    sync: { url: string; ref: string; path: string };
    platformSourceKind: string;
}

/** The whole program: read this stack's config once (Pulumi's, unless given), then declare its environment. */
export function declareStack(config: EnvironmentConfig = loadConfig()): StackOutputs {
    const environment = new Environment(config.environment, environmentArgs(config));
    return {
        environmentName: config.environment,
        clusterName: environment.clusterName,
        kubeconfig: environment.kubeconfig,
        kubeContext: environment.kubeContext,
        sync: environment.sync,
        platformSourceKind: environment.platformSourceKind,
    };
}

/** What a stack's config means for the components: the one place config turns into component args. */
export function environmentArgs(config: EnvironmentConfig): EnvironmentArgs {
    const production = config.tier === "production";
    const c = config.cluster;
    const cluster: EnvironmentArgs["cluster"] =
        c.backend === "kind"
            ? {
                  backend: "kind",
                  clusterName: c.name,
                  nodeImage: c.nodeImage,
                  controlPlaneNodes: c.controlPlaneNodes,
                  workers: c.workers,
                  portMappings: c.portMappings,
                  apiServer: c.apiServer,
              }
            : {
                  backend: "eks",
                  clusterName: c.name,
                  region: c.region,
                  kubernetesVersion: c.kubernetesVersion,
                  zones: c.zones,
                  vpcCidr: c.vpcCidr,
                  natGateways: c.natGateways,
                  supportType: c.supportType,
                  nodeGroup: c.nodeGroup,
                  deployRoleArn: c.deployRoleArn,
                  adminRoleArns: c.adminRoleArns,
                  viewerRoleArns: c.viewerRoleArns,
                  publicAccessCidrs: c.publicAccessCidrs,
                  tags: { ...c.tags, environment: config.environment, "managed-by": "pulumi/gitops-platform" },
                  deletionProtection: production,
              };
    return {
        cluster,
        flux: {
            operatorVersion: config.flux.operatorVersion,
            version: config.flux.version,
            registry: config.flux.registry,
            components: config.flux.components,
            sync: { ...config.sync, interval: config.flux.syncInterval },
            readyTimeout: config.flux.readyTimeout,
            token: config.token,
            platformRepository: config.platformRepository,
        },
        alerts: config.alerts && {
            type: config.alerts.type,
            channel: config.alerts.channel,
            severity: config.alerts.severity,
            webhookUrl: config.alerts.webhookUrl,
            helmReleaseNamespaces: config.alerts.helmReleaseNamespaces,
            sourceNamespaces: config.alerts.sourceNamespaces,
        },
        protect: config.protect,
        // A sandbox or development cluster removed with `kind delete cluster` must not wedge `pulumi destroy`;
        // production never drops objects from state because its API is down.
        deleteUnreachable: !production,
        platformSourceKind: config.platformSourceKind,
        fluxObjects: config.fluxObjects,
    };
}
