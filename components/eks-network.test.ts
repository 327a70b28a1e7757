import { describe, expect, it } from "@jest/globals";
import { planSubnets } from "./eks-network";

describe("the subnet layout", () => {
    it("gives each zone a /19 for nodes and a /22 for load balancers", () => {
        expect(planSubnets("10.30.0.0/16", ["eu-west-1a", "eu-west-1b", "eu-west-1c"])).toEqual([
            { zone: "eu-west-1a", privateCidr: "10.30.0.0/19", publicCidr: "10.30.192.0/22" },
            { zone: "eu-west-1b", privateCidr: "10.30.32.0/19", publicCidr: "10.30.196.0/22" },
            { zone: "eu-west-1c", privateCidr: "10.30.64.0/19", publicCidr: "10.30.200.0/22" },
        ]);
    });

    it("fits six zones without overlap inside the /16", () => {
        const toRange = (cidr: string): [number, number] => {
            const [ip = "", bits = ""] = cidr.split("/");
            const start = ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);
            return [start, start + 2 ** (32 - Number(bits)) - 1];
        };
        const ranges = planSubnets("10.0.0.0/16", ["a", "b", "c", "d", "e", "f"])
            .flatMap((p) => [p.privateCidr, p.publicCidr])
            .map(toRange)
            .sort((x, y) => x[0] - y[0]);
        const overlaps = ranges.slice(1).filter(([start], i) => start <= (ranges[i]?.[1] ?? -1));
        expect(overlaps).toEqual([]);
        expect(ranges.at(-1)?.[1]).toBeLessThanOrEqual(toRange("10.0.0.0/16")[1]);
    });

    it("refuses a VPC that is not a /16 and more zones than the layout holds", () => {
        expect(() => planSubnets("10.0.0.0/20", ["a", "b"])).toThrow("the VPC CIDR must be a /16, not 10.0.0.0/20");
        expect(() => planSubnets("10.0.0.0/16", ["a", "b", "c", "d", "e", "f", "g"])).toThrow("at most six zones fit the layout, not 7");
    });
});
