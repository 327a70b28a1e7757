// The AWS and EKS modules the component uses, each by its own path: the packages' index files would
// also load every AWS service (@pulumi/eks/index.js requires ./clusterMixins, which requires the whole of
// @pulumi/aws), a third of a second of every EKS preview for nothing this program declares.
import { getCallerIdentityOutput } from "@pulumi/aws/getCallerIdentity";
import { getPartitionOutput } from "@pulumi/aws/getPartition";
import { Addon, getAddonVersionOutput } from "@pulumi/aws/eks";
import * as iam from "@pulumi/aws/iam";
import * as kms from "@pulumi/aws/kms";
import { Provider as AwsProvider } from "@pulumi/aws/provider";
import type { Region } from "@pulumi/aws/types/enums";
import { Cluster } from "@pulumi/eks/cluster";
import { ManagedNodeGroup } from "@pulumi/eks/managedNodeGroup";
import { AuthenticationMode } from "@pulumi/eks/types/enums";
import * as pulumi from "@pulumi/pulumi";
import { EksNetwork } from "./eks-network";
import { adminAccessEntries, callerVerdict, viewerAccessEntries } from "./eks-access";

export interface EksNodeGroup {
    /** EC2 instance types, cheapest fit first. */
    instanceTypes: string[];
    minSize: number;
    desiredSize: number;
    maxSize: number;
    /** Root volume size in GiB. @default 50 */
    diskSize?: number;
}

export interface EksClusterArgs {
    clusterName: string;
    region: string;
    /** EKS Kubernetes minor version, e.g. "1.35". */
    kubernetesVersion: string;
    /** Full availability zone names; one private and one public subnet in each. */
    zones: string[];
    /** VPC block, a /16. @default "10.0.0.0/16" */
    vpcCidr?: string;
    /** NAT layout: "perZone" survives a zone outage. @default "single" */
    natGateways?: "perZone" | "single";
    /**
     * What happens when the version leaves standard support: STANDARD upgrades the control plane,
     * EXTENDED keeps it at a price. EKS's own default is EXTENDED. @default "STANDARD"
     */
    supportType?: "STANDARD" | "EXTENDED";
    nodeGroup: EksNodeGroup;
    /**
     * The IAM role `pulumi up` runs as. EKS gives the identity that creates the cluster an admin access
     * entry of its own (pulumi-eks v4.3.0 nodejs/eks/cluster/cluster.ts always sets
     * `bootstrapClusterCreatorAdminPermissions: true`), so it gets no second entry here, and a run as
     * any other identity is refused before anything is created.
     */
    deployRoleArn: string;
    /** IAM roles granted cluster admin through EKS access entries (the only way in: auth mode is API). */
    adminRoleArns: string[];
    /**
     * IAM roles that may read everything in the cluster but change nothing: the pipeline's preview and drift
     * role, which `pulumi preview` and `pulumi refresh` need to read the Kubernetes resources. @default []
     */
    viewerRoleArns?: string[];
    /** Ranges that may reach the public API endpoint; the private endpoint is always on. */
    publicAccessCidrs: string[];
    /** Tags for every AWS resource, applied as the AWS provider's default tags. @default {} */
    tags?: Record<string, string>;
    /** EKS deletion protection on the cluster itself. @default false */
    deletionProtection?: boolean;
}

/** The context pulumi-eks names in the kubeconfig it generates (nodejs/eks/cluster/cluster.ts). */
export const EKS_KUBECONFIG_CONTEXT = "aws";

const NODE_POLICIES = ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"];

/**
 * An EKS cluster that is secure without asking: private nodes with no public IPs, the API endpoint
 * private plus a CIDR allow-list, API authentication with access entries only, Secrets encrypted with
 * its own rotating KMS key, and every AWS resource tagged.
 *
 * @public Environment loads it with `require`, and only for EKS stacks.
 */
export class EksCluster extends pulumi.ComponentResource {
    readonly clusterName: pulumi.Output<string>;
    /** Kubeconfig using the `aws eks get-token` exec plugin (secret all the same). */
    readonly kubeconfig: pulumi.Output<string>;
    readonly kubeContext: pulumi.Output<string>;
    /** What must exist before anything is scheduled: the managed node group. */
    readonly readyFor: pulumi.Resource[];

    constructor(name: string, args: EksClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:EksCluster", name, {}, opts);
        const provider = new AwsProvider(`${name}-aws`, { region: args.region as Region, defaultTags: { tags: args.tags ?? {} } }, { parent: this });
        const inAws = { parent: this, provider };
        // AWS-managed policy ARNs name the partition, which AWS reports: the region's name does not tell
        // the ISO partitions (aws-iso, aws-iso-b, ...) from the commercial one.
        const partition = getPartitionOutput({}, inAws).partition;

        const network = new EksNetwork(
            `${name}-network`,
            { cidr: args.vpcCidr ?? "10.0.0.0/16", zones: args.zones, natGateways: args.natGateways },
            { parent: this, providers: { aws: provider } },
        );

        const secretsKey = new kms.Key(
            `${name}-secrets`,
            { description: `Envelope encryption of Kubernetes Secrets in EKS cluster ${args.clusterName}`, enableKeyRotation: true, deletionWindowInDays: 30 },
            inAws,
        );

        // Who runs this `pulumi up`: checked before the cluster is touched, because EKS would make that
        // identity an administrator by itself. The cluster's name waits on the check, so a refusal stops
        // the update before any EKS call.
        const caller = getCallerIdentityOutput({}, { parent: this, provider });
        const checkedName = caller.arn.apply((arn) => {
            const verdict = callerVerdict(arn, args.deployRoleArn, pulumi.runtime.isDryRun());
            if (verdict.refuse) throw new pulumi.RunError(verdict.refuse);
            if (verdict.note) void pulumi.log.info(verdict.note, this);
            return args.clusterName;
        });

        const cluster = new Cluster(
            name,
            {
                name: checkedName,
                version: args.kubernetesVersion,
                vpcId: network.vpcId,
                privateSubnetIds: network.privateSubnetIds,
                publicSubnetIds: network.publicSubnetIds,
                skipDefaultNodeGroup: true,
                endpointPrivateAccess: true,
                endpointPublicAccess: true,
                publicAccessCidrs: args.publicAccessCidrs,
                authenticationMode: AuthenticationMode.Api,
                accessEntries: {
                    ...adminAccessEntries(
                        args.adminRoleArns,
                        args.deployRoleArn,
                        pulumi.interpolate`arn:${partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy`,
                    ),
                    ...viewerAccessEntries(
                        args.viewerRoleArns ?? [],
                        pulumi.interpolate`arn:${partition}:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy`,
                    ),
                },
                encryptionConfigKeyArn: secretsKey.arn,
                enabledClusterLogTypes: ["api", "audit", "authenticator"],
                createOidcProvider: true,
                upgradePolicy: { supportType: args.supportType ?? "STANDARD" },
                deletionProtection: args.deletionProtection ?? false,
                tags: args.tags ?? {},
            },
            { parent: this, providers: { aws: provider } },
        );

        const nodeRole = new iam.Role(
            `${name}-nodes`,
            {
                assumeRolePolicy: JSON.stringify({
                    Version: "2012-10-17",
                    Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
                }),
            },
            inAws,
        );
        const attachments = NODE_POLICIES.map(
            (policy) =>
                new iam.RolePolicyAttachment(
                    `${name}-nodes-${policy}`,
                    { role: nodeRole.name, policyArn: pulumi.interpolate`arn:${partition}:iam::aws:policy/${policy}` },
                    inAws,
                ),
        );

        const nodeGroup = new ManagedNodeGroup(
            `${name}-nodes`,
            {
                cluster,
                nodeRole,
                instanceTypes: args.nodeGroup.instanceTypes,
                scalingConfig: { minSize: args.nodeGroup.minSize, desiredSize: args.nodeGroup.desiredSize, maxSize: args.nodeGroup.maxSize },
                subnetIds: network.privateSubnetIds,
                diskSize: args.nodeGroup.diskSize ?? 50,
            },
            { parent: this, providers: { aws: provider }, dependsOn: attachments },
        );

        // CoreDNS as an EKS add-on, so its version follows the cluster's. pulumi-eks creates the kube-proxy
        // and vpc-cni add-ons itself, but CoreDNS only with a node group of its own
        // (nodejs/eks/cluster/cluster.ts: skipDefaultNodeGroup leaves it out), and its pods need nodes:
        // so here, after the managed node group.
        const corednsVersion = getAddonVersionOutput(
            { addonName: "coredns", kubernetesVersion: args.kubernetesVersion, mostRecent: true },
            { parent: this, provider },
        ).version;
        const coredns = new Addon(
            `${name}-coredns`,
            {
                clusterName: cluster.eksCluster.name,
                addonName: "coredns",
                addonVersion: corednsVersion,
                resolveConflictsOnCreate: "OVERWRITE",
                resolveConflictsOnUpdate: "OVERWRITE",
            },
            { parent: this, provider, dependsOn: [nodeGroup] },
        );

        this.clusterName = pulumi.output(args.clusterName);
        // pulumi-eks's own kubeconfig (nodejs/eks/cluster/cluster.ts, generateKubeconfig): no credential,
        // `aws --region <region> eks get-token --cluster-name <name>` for whoever runs kubectl or the
        // Kubernetes provider, context "aws". It is an output of the cluster, so in the first preview of a
        // new stack it is unknown and the Kubernetes resources preview as "to create" without asking AWS.
        this.kubeconfig = pulumi.secret(cluster.kubeconfigJson);
        this.kubeContext = pulumi.output(EKS_KUBECONFIG_CONTEXT);
        this.readyFor = [nodeGroup, coredns];
        this.registerOutputs({ clusterName: this.clusterName, kubeconfig: this.kubeconfig, kubeContext: this.kubeContext });
    }
}
