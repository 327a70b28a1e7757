import { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";

// Policies are plain objects: tests call their validate functions with the arguments the engine would
// pass, and collect what they report.

const notApplicable = (): never => {
    throw new Error("not applicable");
};

export function resource(type: string, name: string, props: Record<string, unknown>, protect = false): PolicyResource {
    return {
        type,
        name,
        props,
        urn: `urn:pulumi:test::gitops-platform::${type}::${name}`,
        opts: { protect, ignoreChanges: [], aliases: [], additionalSecretOutputs: [], customTimeouts: {} } as unknown as PolicyResource["opts"],
        dependencies: [],
        propertyDependencies: {},
        isType: () => false,
        asType: () => undefined,
    } as unknown as PolicyResource;
}

export async function violationsOfResource(policy: ResourceValidationPolicy, r: PolicyResource): Promise<string[]> {
    const found: string[] = [];
    const args = { ...r, stackTags: new Map(), notApplicable } as unknown as ResourceValidationArgs;
    const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource!];
    for (const validate of validations) await validate(args, (message) => found.push(message));
    return found;
}

export async function violationsOfStack(policy: StackValidationPolicy, resources: PolicyResource[]): Promise<string[]> {
    const found: string[] = [];
    const args = { resources, stackTags: new Map(), notApplicable, getConfig: () => ({}) } as unknown as StackValidationArgs;
    await policy.validateStack!(args, (message) => found.push(message));
    return found;
}
