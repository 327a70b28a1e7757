// The policy pack the CLI loads: `pulumi preview --policy-pack policy`. The rules are in policies.ts.
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("gitops-platform", { enforcementLevel: "mandatory", policies });
