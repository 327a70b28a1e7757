// `npm run schemas:update -- flux-operator <version>`, `-- pluto <tag>` or `-- gitlab-ci <ref>`: refresh vendored upstream data.
import { updateFluxInstanceSchema, updateFluxServedApis, updateGitlabCiSchema, updatePlutoVersions } from "./vendored";

async function main(): Promise<void> {
    const [what, version] = process.argv.slice(2);
    if (what === "flux-operator" && version) {
        const record = await updateFluxInstanceSchema(version);
        console.log(`schemas/: FluxInstance CRD of ${record.project} ${record.tag} (sha256 ${record.sha256.slice(0, 12)}…).`);
        const apis = await updateFluxServedApis(version);
        console.log(`schemas/: the Flux APIs each Flux release of ${apis.project} ${apis.tag} serves (sha256 ${apis.sha256.slice(0, 12)}…).`);
        console.log(`Now set flux.operatorVersion's default to ${version} in infra/config/schema.ts (and in any stack that pins it); npm test checks they agree.`);
    } else if (what === "pluto" && version) {
        const record = await updatePlutoVersions(version);
        console.log(`schemas/: API deprecations of ${record.project} ${record.tag} (sha256 ${record.sha256.slice(0, 12)}…). Run npm test.`);
    } else if (what === "gitlab-ci" && version) {
        const record = await updateGitlabCiSchema(version);
        console.log(`schemas/: GitLab's CI schema at ${record.project} ${record.tag} (sha256 ${record.sha256.slice(0, 12)}…). Run npm test.`);
    } else {
        console.error("usage: npm run schemas:update -- flux-operator <chart version>   e.g. 0.58.1");
        console.error("       npm run schemas:update -- pluto <release tag>              e.g. v5.24.0");
        console.error("       npm run schemas:update -- gitlab-ci <gitlab-org/gitlab ref>  e.g. v18.6.0-ee");
        process.exitCode = 2;
    }
}

main().catch((e: unknown) => {
    console.error((e as Error).message);
    process.exit(1);
});
