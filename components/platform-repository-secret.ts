import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { PLATFORM_SECRET_NAME } from "../lib/gitops-tree";

/** Where Flux pulls the platform from, and as whom. The token is passed separately, as a secret. */
export type PlatformRepository =
    /** A Git repository over HTTPS (development, sandboxes): basic auth. */
    | { type: "git"; /** HTTPS URL of the repository (a stack pinned to a commit retargets the source at it). */ url: string; username: string }
    /** An OCI registry (staging, production): a docker config for `server`. */
    | { type: "oci"; server: string; username: string };

export interface PlatformRepositorySecretArgs {
    repository: PlatformRepository;
    /** Password or access token for the repository; kept secret end to end. */
    token: pulumi.Input<string>;
    /** Namespace of the secret; Flux sources reference it from there. @default "flux-system" */
    namespace?: pulumi.Input<string>;
    /** Secret name the `platform` source's `secretRef` uses. @default "platform-repository" */
    secretName?: string;
}

/** The Docker config JSON a `kubernetes.io/dockerconfigjson` secret holds for one registry. */
export function dockerConfigJson(server: string, username: string, password: string): string {
    const auth = Buffer.from(`${username}:${password}`).toString("base64");
    return JSON.stringify({ auths: { [server]: { username, password, auth } } });
}

/**
 * The credentials the `platform` source in `clusters/<environment>` references: a basic-auth secret for
 * a Git repository, a dockerconfigjson secret for an OCI registry.
 */
export class PlatformRepositorySecret extends pulumi.ComponentResource {
    readonly secretName: pulumi.Output<string>;
    readonly secretType: pulumi.Output<string>;

    constructor(name: string, args: PlatformRepositorySecretArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:PlatformRepositorySecret", name, {}, opts);

        const repo = args.repository;
        const token = pulumi.secret(args.token);
        const metadata = { name: args.secretName ?? PLATFORM_SECRET_NAME, namespace: args.namespace ?? "flux-system" };
        const secret =
            repo.type === "git"
                ? new k8s.core.v1.Secret(
                      name,
                      { metadata, type: "kubernetes.io/basic-auth", stringData: { username: repo.username, password: token } },
                      { parent: this },
                  )
                : new k8s.core.v1.Secret(
                      name,
                      {
                          metadata,
                          type: "kubernetes.io/dockerconfigjson",
                          stringData: {
                              ".dockerconfigjson": token.apply((t) => dockerConfigJson(repo.server, repo.username, t)),
                          },
                      },
                      { parent: this },
                  );

        this.secretName = secret.metadata.name;
        this.secretType = secret.type;
        this.registerOutputs({ secretName: this.secretName, secretType: this.secretType });
    }
}
