// The Pulumi program's entry: Pulumi runs this module and exports its exports as the stack outputs.
// The program itself is infra/program.ts; the path continues in components/environment.ts.
import { declareStack } from "./program";

const outputs = declareStack();

export const environmentName = outputs.environmentName;
export const clusterName = outputs.clusterName;
export const kubeconfig = outputs.kubeconfig;
export const kubeContext = outputs.kubeContext;
export const sync = outputs.sync;
export const platformSourceKind = outputs.platformSourceKind;
