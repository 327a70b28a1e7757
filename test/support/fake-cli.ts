import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../../lib/project";
import type { CommandRunner } from "../../lib/run-command";
import { copyOfRepo } from "./temp-repo";

// Stand-ins for the Pulumi CLI (which the Automation API drives), kind, Docker and kubectl, for the tools
// that run them. Each logs its calls to $FAKE_STATE/calls and keeps what it made as files there:
// stack-<name> (a stack exists), up-<name> (it is deployed), cluster-<name> (kind runs it). A file
// fail-<name> holds what `pulumi up` of that stack prints before failing; with slow-up, each `pulumi up`
// takes 0.3 s, long enough to see whether updates overlap; `pulumi preview --json` prints
// preview-<name>.json and exits with preview-exit-<name>; backend-down makes every stack selection fail;
// docker-gone makes kind unable to list clusters; terminating-looks counts the looks that still find a
// namespace Terminating.

const PULUMI = `#!/bin/sh
PATH=/usr/bin:/bin
S="$FAKE_STATE"
echo "pulumi $* | backend=\${PULUMI_BACKEND_URL:-} passphrase=\${PULUMI_CONFIG_PASSPHRASE:+set}" >> "$S/calls"
stack=""; prev=""; target=""
for a in "$@"; do [ "$prev" = "--stack" ] && stack="$a"; [ "$prev" = "--target" ] && target="$a"; prev="$a"; done
case "$1 $2" in
  "version "*) echo "v3.248.0" ;;
  "whoami --json")
    if [ -f "$S/logged-in" ]; then echo '{"user":"alice","url":"https://api.pulumi.com"}'
    else echo "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions" >&2; exit 255; fi ;;
  "stack select")
    [ -n "$stack" ] || stack="$3"
    if [ -f "$S/backend-down" ]; then echo "error: getting user info: 401 Unauthorized: No credentials provided or are invalid." >&2; exit 255; fi
    [ -f "$S/stack-$stack" ] || { echo "error: no stack named '$stack' found" >&2; exit 255; } ;;
  "stack init") touch "$S/stack-$3" ;;
  "stack rm") rm -f "$S/stack-$3" ;;
  "preview --json") cat "$S/preview-$stack.json"; exit "$(cat "$S/preview-exit-$stack" 2>/dev/null || echo 0)" ;;
  "up --yes")
    echo "start $stack" >> "$S/timeline"; [ -f "$S/slow-up" ] && sleep 0.3; echo "end $stack" >> "$S/timeline"
    echo "Updating ($stack):"
    touch "$S/cluster-$stack"
    if [ -f "$S/fail-$stack" ]; then cat "$S/fail-$stack"; exit 255; fi
    echo "Resources:"; echo "    + 14 created"; touch "$S/up-$stack" ;;
  "destroy --yes")
    echo "Destroying ($stack):"
    if [ -z "$target" ]; then rm -f "$S/up-$stack"; [ -f "$S/cluster-survives" ] || rm -f "$S/cluster-$stack"; fi
    echo "Resources:"; echo "    - 14 deleted" ;;
  "stack output") if [ -f "$S/up-$stack" ] || [ -f "$S/cluster-$stack" ]; then echo "{\\"kubeContext\\":\\"kind-$stack\\",\\"kubeconfig\\":\\"current-context: kind-$stack\\"}"; else echo "{}"; fi ;;
  "stack history") echo "[]" ;;
  *) echo "fake pulumi: unexpected $*" >&2; exit 2 ;;
esac
`;

const KIND = `#!/bin/sh
PATH=/usr/bin:/bin
S="$FAKE_STATE"
echo "kind $*" >> "$S/calls"
case "$1 $2" in
  "get clusters")
    # kind lists clusters through docker; with the daemon gone it fails (kind pkg/cmd/kind/get/clusters).
    if [ -f "$S/docker-gone" ]; then echo 'ERROR: failed to list clusters: command "docker ps -a --filter label=io.x-k8s.kind.cluster --format {{.Label "io.x-k8s.kind.cluster"}}" failed with error: exit status 1' >&2; exit 1; fi
    for f in "$S"/cluster-*; do [ -e "$f" ] && basename "$f" | sed 's/^cluster-//'; done; true ;;
  "delete cluster") rm -f "$S/cluster-$4" ;;
  *) if [ -f "$S/kind-version" ]; then cat "$S/kind-version"; else echo "kind v0.31.0 go1.24.6 linux/amd64"; fi ;;
esac
`;

const DOCKER = `#!/bin/sh
PATH=/usr/bin:/bin
echo "docker $*" >> "$FAKE_STATE/calls"
if [ -f "$FAKE_STATE/docker-down" ]; then
  echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1
fi
echo "28.5.1"
`;

/**
 * Answers `kubectl --context <c> <args>` (or `--kubeconfig <file>`, whose current-context says which):
 * Flux Ready in kind-development and e2e clusters, failed in kind-staging.
 */
const KUBECTL = `#!/bin/sh
PATH=/usr/bin:/bin
S="$FAKE_STATE"
echo "kubectl $*" >> "$S/calls"
READY='{"metadata":{"generation":1},"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"ReconciliationSucceeded"}]}}'
FAILED='{"metadata":{"generation":1},"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"False","reason":"ReconciliationFailed","message":"health check failed"}]}}'
[ "$1" = "version" ] && { echo "Client Version: v1.32.3"; exit 0; }
if [ "$1" = "--kubeconfig" ]; then context=$(sed -n 's/^current-context: //p' "$2"); else context="$2"; fi; shift 2
[ -f "$S/cluster-\${context#kind-}" ] || [ "$context" = kind-development ] || [ "$context" = kind-staging ] || { echo "error: context $context does not exist" >&2; exit 1; }
case "$*" in
  "-n flux-system get fluxinstance flux -o json"*) if [ "$context" = kind-staging ]; then echo "$FAILED"; else echo "$READY"; fi ;;
  "get kustomizations -A -o json")
    if [ -f "$S/layers" ]; then cat "$S/layers"; else
    echo '{"items":['
    echo '{"metadata":{"name":"platform-services","namespace":"flux-system"},"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-11-30T10:00:00Z"}]}},'
    echo '{"metadata":{"name":"platform-service-configs","namespace":"flux-system"},"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-11-30T10:00:20Z"}]}},'
    echo '{"metadata":{"name":"platform-configs","namespace":"flux-system"},"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-11-30T10:00:40Z"}]}}'
    echo ']}'; fi ;;
  "-n "*" wait --for=condition="*) echo "$5 condition met" ;;
  "get namespaces -o json")
    # terminating-looks: how many more looks still find podinfo Terminating (prune does not wait for it).
    n=$(cat "$S/terminating-looks" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$S/terminating-looks"; echo '{"items":[{"metadata":{"name":"podinfo"},"status":{"phase":"Terminating"}}]}'
    else echo '{"items":[{"metadata":{"name":"default"},"status":{"phase":"Active"}}]}'; fi ;;
  "get crds -o name") echo "customresourcedefinition.apiextensions.k8s.io/fluxinstances.fluxcd.controlplane.io" ;;
  "get fluxinstances"*) echo "NAMESPACE     NAME   AGE   READY   STATUS"; echo "flux-system   flux   5m    False   health check failed" ;;
  "-n flux-system logs"*) echo '{"level":"error","msg":"Reconciler error","error":"timeout waiting for: [Kustomization/flux-system/flux-system status: InProgress]"}' ;;
  *) echo "fake kubectl: unexpected $*" >&2; exit 2 ;;
esac
`;

export type FakeCli = "pulumi" | "kind" | "docker" | "kubectl";

const SCRIPTS: Record<FakeCli, string> = { pulumi: PULUMI, kind: KIND, docker: DOCKER, kubectl: KUBECTL };

/** Writes the named stand-ins into `bin` (a folder named bin, as a Pulumi installation has). */
export function installFakes(bin: string, names: FakeCli[]): void {
    fs.mkdirSync(bin, { recursive: true });
    for (const n of names) fs.writeFileSync(path.join(bin, n), SCRIPTS[n], { mode: 0o755 });
}

/** Runs a command with exactly `env` (the stand-ins on its PATH), as a tool's runner does with the user's. */
export function runnerWith(env: NodeJS.ProcessEnv): CommandRunner {
    return (command, args) =>
        new Promise((resolve, reject) =>
            execFile(command, args, { env }, (error, stdout, stderr) => {
                const code = (error as { code?: unknown } | null)?.code;
                if (code === "ENOENT") return reject(error);
                resolve({ code: error ? (typeof code === "number" ? code : 1) : 0, stdout, stderr });
            }),
        );
}

/**
 * A copy of the repository (stack files, tree and Pulumi.yaml) for a tool that drives the CLI, with a
 * folder for the stand-ins (`bin`, inside a Pulumi-installation-like folder: the tools hand its parent to
 * the Automation API) and one for what they record (`state`). The caller removes `root`.
 */
export function fakeCheckout(prefix: string): { root: string; bin: string; state: string } {
    const root = copyOfRepo(prefix);
    fs.copyFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
    const bin = path.join(root, ".fake-pulumi", "bin");
    const state = path.join(root, ".fake-state");
    fs.mkdirSync(bin, { recursive: true });
    fs.mkdirSync(state);
    return { root, bin, state };
}

/** What the stand-ins were asked, in order, one line per call (optionally those starting with `prefix`). */
export function recordedCalls(state: string, prefix?: string): string[] {
    const file = path.join(state, "calls");
    const all = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : [];
    return prefix ? all.filter((c) => c.startsWith(prefix)) : all;
}
