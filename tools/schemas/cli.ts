// `npm run schemas:update -- <flux-operator version>`: refresh the vendored FluxInstance CRD from upstream.
import { updateFluxInstanceSchema } from "./vendored";

async function main(): Promise<void> {
    const [version] = process.argv.slice(2);
    if (!version) {
        console.error("usage: npm run schemas:update -- <flux-operator version>   e.g. 0.58.1");
        process.exit(2);
    }
    const record = await updateFluxInstanceSchema(version);
    console.log(`schemas/: FluxInstance CRD of ${record.project} ${record.tag} (sha256 ${record.sha256.slice(0, 12)}…).`);
    console.log(`Now set flux.operatorVersion's default to ${version} in infra/config/schema.ts (and in any stack that pins it); npm test checks they agree.`);
}

main().catch((e: unknown) => {
    console.error((e as Error).message);
    process.exit(1);
});
