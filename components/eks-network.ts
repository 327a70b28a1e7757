// Only the EC2 module: the package index would load every AWS service.
import * as ec2 from "@pulumi/aws/ec2";
import * as pulumi from "@pulumi/pulumi";
import { defined } from "../lib/defined";

export interface EksNetworkArgs {
    /** The VPC's IPv4 block; must be a /16. */
    cidr: string;
    /** Full availability zone names, one private and one public subnet in each. */
    zones: string[];
    /** One NAT gateway per zone (survives a zone outage), or one shared by all. @default "single" */
    natGateways?: "perZone" | "single";
}

export interface SubnetPlan {
    zone: string;
    /** A /19 for nodes and pods (the VPC CNI gives every pod a VPC address). */
    privateCidr: string;
    /** A /22 for load balancers only. */
    publicCidr: string;
}

/** Carves a /16 into a /19 private and a /22 public subnet per zone (up to six zones). */
export function planSubnets(vpcCidr: string, zones: string[]): SubnetPlan[] {
    const [a, b] = vpcCidr.split(".");
    if (!vpcCidr.endsWith("/16")) throw new Error(`the VPC CIDR must be a /16, not ${vpcCidr}`);
    if (zones.length > 6) throw new Error(`at most six zones fit the layout, not ${zones.length}`);
    return zones.map((zone, i) => ({
        zone,
        privateCidr: `${a}.${b}.${i * 32}.0/19`,
        publicCidr: `${a}.${b}.${192 + i * 4}.0/22`,
    }));
}

/**
 * The VPC an EKS cluster runs in: nodes in private subnets that reach out through NAT, public subnets
 * that hold nothing but load balancers.
 */
export class EksNetwork extends pulumi.ComponentResource {
    readonly vpcId: pulumi.Output<string>;
    readonly privateSubnetIds: pulumi.Output<string>[];
    readonly publicSubnetIds: pulumi.Output<string>[];

    constructor(name: string, args: EksNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("gitops-platform:index:EksNetwork", name, {}, opts);
        const plan = planSubnets(args.cidr, args.zones);
        const perZoneNat = (args.natGateways ?? "single") === "perZone";

        const vpc = new ec2.Vpc(
            `${name}-vpc`,
            { cidrBlock: args.cidr, enableDnsHostnames: true, enableDnsSupport: true, tags: { Name: name } },
            { parent: this },
        );
        const gateway = new ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: { Name: name } }, { parent: this });
        const publicRoutes = new ec2.RouteTable(
            `${name}-public`,
            { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: gateway.id }], tags: { Name: `${name}-public` } },
            { parent: this },
        );

        const publicSubnets = plan.map((p) => {
            const subnet = new ec2.Subnet(
                `${name}-public-${p.zone}`,
                {
                    vpcId: vpc.id,
                    availabilityZone: p.zone,
                    cidrBlock: p.publicCidr,
                    mapPublicIpOnLaunch: false,
                    tags: { Name: `${name}-public-${p.zone}`, "kubernetes.io/role/elb": "1" },
                },
                { parent: this },
            );
            new ec2.RouteTableAssociation(`${name}-public-${p.zone}`, { subnetId: subnet.id, routeTableId: publicRoutes.id }, { parent: this });
            return subnet;
        });

        const natZones = perZoneNat ? plan : plan.slice(0, 1);
        const nats = natZones.map((p, i) => {
            const ip = new ec2.Eip(`${name}-nat-${p.zone}`, { domain: "vpc", tags: { Name: `${name}-nat-${p.zone}` } }, { parent: this });
            return new ec2.NatGateway(
                `${name}-nat-${p.zone}`,
                { allocationId: ip.id, subnetId: defined(publicSubnets[i], `public subnet ${p.zone}`).id, tags: { Name: `${name}-nat-${p.zone}` } },
                { parent: this, dependsOn: [gateway] },
            );
        });

        const privateSubnets = plan.map((p, i) => {
            const subnet = new ec2.Subnet(
                `${name}-private-${p.zone}`,
                {
                    vpcId: vpc.id,
                    availabilityZone: p.zone,
                    cidrBlock: p.privateCidr,
                    mapPublicIpOnLaunch: false,
                    tags: { Name: `${name}-private-${p.zone}`, "kubernetes.io/role/internal-elb": "1" },
                },
                { parent: this },
            );
            const nat = defined(perZoneNat ? nats[i] : nats[0], `NAT gateway for ${p.zone}`);
            const routes = new ec2.RouteTable(
                `${name}-private-${p.zone}`,
                { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", natGatewayId: nat.id }], tags: { Name: `${name}-private-${p.zone}` } },
                { parent: this },
            );
            new ec2.RouteTableAssociation(`${name}-private-${p.zone}`, { subnetId: subnet.id, routeTableId: routes.id }, { parent: this });
            return subnet;
        });

        this.vpcId = vpc.id;
        this.privateSubnetIds = privateSubnets.map((s) => s.id);
        this.publicSubnetIds = publicSubnets.map((s) => s.id);
        this.registerOutputs({ vpcId: this.vpcId, privateSubnetIds: this.privateSubnetIds, publicSubnetIds: this.publicSubnetIds });
    }
}
