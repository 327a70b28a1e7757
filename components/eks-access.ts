// Who may reach an EKS cluster, as pure functions: the EksCluster component applies them, and their
// tests need no AWS module.

/**
 * Cluster-admin access entries for the admin roles, all but the deploying role, which EKS already admits.
 * `clusterAdminPolicyArn` is the ARN of AmazonEKSClusterAdminPolicy in the cluster's partition, as AWS
 * reports it (the partition is not a function of the region name: ISO regions have partitions of their own).
 */
export function adminAccessEntries<Arn>(adminRoleArns: string[], deployRoleArn: string, clusterAdminPolicyArn: Arn) {
    const entries: Record<string, { principalArn: string; accessPolicies: Record<string, { policyArn: Arn; accessScope: { type: string } }> }> = {};
    adminRoleArns.forEach((principalArn, i) => {
        // Keyed by position in the config, so removing one role never renames the others' entries.
        if (principalArn === deployRoleArn) return;
        entries[`admin-${i}`] = {
            principalArn,
            accessPolicies: {
                clusterAdmin: { policyArn: clusterAdminPolicyArn, accessScope: { type: "cluster" } },
            },
        };
    });
    return entries;
}

/**
 * Read-only access entries for the roles that preview and drift-check the stack (the pipeline's merge
 * request and schedule jobs): AmazonEKSAdminViewPolicy, cluster-wide, which lists and reads every resource
 * including Secrets (AWS EKS user guide, "Review access policy permissions"), as `pulumi preview` and
 * `pulumi refresh` read the Secrets, CRDs and Helm release state the program manages. `viewPolicyArn` is
 * that policy's ARN in the cluster's partition.
 */
export function viewerAccessEntries<Arn>(viewerRoleArns: string[], viewPolicyArn: Arn) {
    const entries: Record<string, { principalArn: string; accessPolicies: Record<string, { policyArn: Arn; accessScope: { type: string } }> }> = {};
    viewerRoleArns.forEach((principalArn, i) => {
        entries[`viewer-${i}`] = { principalArn, accessPolicies: { view: { policyArn: viewPolicyArn, accessScope: { type: "cluster" } } } };
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

/**
 * What to do about who runs the program: a `pulumi up` by anyone but the deploy role stops before the
 * cluster; a preview creates nothing, so another identity (a merge request's read-only role) may run it
 * and is only told.
 */
export function callerVerdict(callerArn: string, deployRoleArn: string, dryRun: boolean): { refuse?: string; note?: string } {
    const problem = callerArn ? deployerProblem(callerArn, deployRoleArn) : undefined;
    if (!problem) return {};
    return dryRun ? { note: `A pulumi up as this identity would stop here: ${problem}` } : { refuse: problem };
}
