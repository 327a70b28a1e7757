import * as pulumi from "@pulumi/pulumi";
import { Environment } from "../components/environment";
import { loadConfig } from "./config";

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

/** The whole program: read this stack's config once, then declare its environment. */
export function declareStack(): StackOutputs {
    const config = loadConfig();
    const environment = new Environment(config.environment, config);
    return {
        environmentName: config.environment,
        clusterName: environment.clusterName,
        kubeconfig: environment.kubeconfig,
        kubeContext: environment.kubeContext,
        sync: environment.sync,
        platformSourceKind: environment.platformSourceKind,
    };
}
