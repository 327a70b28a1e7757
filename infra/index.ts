// The Pulumi program: read this stack's config once, then declare its environment.
// The path continues in components/environment.ts.
import { Environment } from "../components/environment";
import { loadConfig } from "./config";

const config = loadConfig();
const environment = new Environment(config.environment, config);

export const environmentName = config.environment;
export const clusterName = environment.clusterName;
/** Secret: `pulumi stack output kubeconfig --show-secrets > kubeconfig`. */
export const kubeconfig = environment.kubeconfig;
export const kubeContext = environment.kubeContext;
export const sync = environment.sync;
export const platformSourceKind = environment.platformSourceKind;
