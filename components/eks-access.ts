// Who may reach an EKS cluster, as pure functions: the EksCluster component applies them, and their
// tests need no AWS module.

/** The ARN partition of a region: `aws`, `aws-cn` or `aws-us-gov`. */
export function partitionOf(region: string): string {
    if (region.startsWith("cn-")) return "aws-cn";
    if (region.includes("-gov-")) return "aws-us-gov";
    return "aws";
}

/** Cluster-admin access entries for the admin roles, all but the deploying role, which EKS already admits. */
export function adminAccessEntries(adminRoleArns: string[], deployRoleArn: string, partition: string) {
    const entries: Record<string, { principalArn: string; accessPolicies: Record<string, { policyArn: string; accessScope: { type: string } }> }> = {};
    adminRoleArns.forEach((principalArn, i) => {
        // Keyed by position in the config, so removing one role never renames the others' entries.
        if (principalArn === deployRoleArn) return;
        entries[`admin-${i}`] = {
            principalArn,
            accessPolicies: {
                clusterAdmin: { policyArn: `arn:${partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy`, accessScope: { type: "cluster" } },
            },
        };
    });
    return entries;
}

/**
 * Why `pulumi up` must not run as `callerArn` for this cluster, or undefined when it runs as the deploy
 * role. `callerArn` is what STS says (`arn:aws:sts::<account>:assumed-role/<role>/<session>`); a role is
 * matched by account and name, since STS drops the role's path.
 */
export function deployerProblem(callerArn: string, deployRoleArn: string): string | undefined {
    const caller = /^arn:[^:]+:sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(callerArn);
    const deployer = /^arn:[^:]+:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(deployRoleArn);
    if (caller && deployer && caller[1] === deployer[1] && caller[2] === deployer[2]) return undefined;
    return (
        `pulumi up runs as ${callerArn}, but this stack's cluster.deployRoleArn is ${deployRoleArn}. EKS makes whoever creates or ` +
        `updates the cluster an administrator by itself, so running as anyone else would add an admin nobody listed (or clash with ` +
        `an access entry). Fix: assume ${deployRoleArn} (e.g. AWS_PROFILE), or set cluster.deployRoleArn to the role you run as`
    );
}
