import { describe, expect, it } from "@jest/globals";
import { adminAccessEntries, callerVerdict, deployerProblem, viewerAccessEntries } from "./eks-access";

const DEPLOYER = "arn:aws:iam::123456789012:role/ci/platform-deployer";
const ADMIN = "arn:aws:iam::123456789012:role/platform-admin";
const POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

describe("who may administer an EKS cluster", () => {
    it("gives each admin role a cluster-admin access entry", () => {
        expect(adminAccessEntries([ADMIN], DEPLOYER, POLICY)).toEqual({
            "admin-0": {
                principalArn: ADMIN,
                accessPolicies: {
                    clusterAdmin: { policyArn: POLICY, accessScope: { type: "cluster" } },
                },
            },
        });
    });

    it("gives the deploying role no second entry when it is also listed: EKS admitted it when it created the cluster", () => {
        expect(Object.values(adminAccessEntries([DEPLOYER, ADMIN], DEPLOYER, POLICY)).map((e) => e.principalArn)).toEqual([ADMIN]);
    });

    it("keeps each entry's key when another role is removed from the list", () => {
        expect(Object.keys(adminAccessEntries([DEPLOYER, ADMIN], DEPLOYER, POLICY))).toEqual(["admin-1"]);
    });
});

describe("who may read an EKS cluster", () => {
    it("gives each viewer role a cluster-wide read-only entry that reads Secrets too, as preview and refresh do", () => {
        const view = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy";
        expect(viewerAccessEntries(["arn:aws:iam::123456789012:role/platform-previewer"], view)).toEqual({
            "viewer-0": {
                principalArn: "arn:aws:iam::123456789012:role/platform-previewer",
                accessPolicies: { view: { policyArn: view, accessScope: { type: "cluster" } } },
            },
        });
    });
});

describe("who may run pulumi up for an EKS cluster", () => {
    it("is the deploy role, whatever its path and session", () => {
        expect(deployerProblem("arn:aws:sts::123456789012:assumed-role/platform-deployer/gitlab-ci-4711", DEPLOYER)).toBeUndefined();
    });

    it("is not another role of the account, which EKS would silently make an administrator", () => {
        expect(deployerProblem("arn:aws:sts::123456789012:assumed-role/platform-admin/alice", DEPLOYER)).toBe(
            "pulumi up runs as arn:aws:sts::123456789012:assumed-role/platform-admin/alice, but this stack's cluster.deployRoleArn is " +
                "arn:aws:iam::123456789012:role/ci/platform-deployer. EKS makes whoever creates or updates the cluster an administrator by itself, " +
                "so running as anyone else would add an admin nobody listed (or clash with an access entry). Fix: assume " +
                "arn:aws:iam::123456789012:role/ci/platform-deployer (e.g. AWS_PROFILE), or set cluster.deployRoleArn to the role you run as",
        );
    });

    it("is not the same role name in another account, nor an IAM user", () => {
        expect(deployerProblem("arn:aws:sts::210987654321:assumed-role/platform-deployer/x", DEPLOYER)).toMatch(/^pulumi up runs as arn:aws:sts::210987654321/);
        expect(deployerProblem("arn:aws:iam::123456789012:user/alice", DEPLOYER)).toMatch(/^pulumi up runs as arn:aws:iam::123456789012:user\/alice/);
    });
});

describe("who may preview an EKS stack", () => {
    const previewer = "arn:aws:sts::123456789012:assumed-role/platform-previewer/gitlab-mr-42";

    it("is anyone: a merge request's read-only role previews, and is told a pulumi up would stop", () => {
        expect(callerVerdict(previewer, DEPLOYER, true)).toEqual({
            note: `A pulumi up as this identity would stop here: ${deployerProblem(previewer, DEPLOYER)}`,
        });
    });

    it("while pulumi up by that role is refused before the cluster", () => {
        expect(callerVerdict(previewer, DEPLOYER, false)).toEqual({ refuse: deployerProblem(previewer, DEPLOYER) });
        expect(callerVerdict("arn:aws:sts::123456789012:assumed-role/platform-deployer/ci", DEPLOYER, false)).toEqual({});
    });
});
