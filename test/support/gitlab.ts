// A model of how GitLab turns a CI configuration into a pipeline: which jobs it creates for an event, with
// which variables, and which of them run once others have failed or wait for a click. It models only what
// this project's pipeline relies on, each rule read in GitLab's source or documentation:
//
// - workflow:rules: no rule matching means no pipeline (lib/gitlab/ci/build/rules.rb returns when: never
//   when nothing matches; lib/gitlab/ci/pipeline/chain/evaluate_workflow_rules.rb drops the pipeline).
// - A job without rules/only/except gets `only: { refs: [branches, tags] }` (DEFAULT_ONLY_POLICY in
//   lib/gitlab/ci/config/entry/job.rb), unless the file has workflow:rules or the job has rules, which
//   remove that default (job.rb compose!, spec/lib/gitlab/ci/config/entry/job_spec.rb "with workflow rules").
// - `branches` matches only a branch pipeline that is not a merge-request pipeline, `tags` a tag pipeline
//   (lib/gitlab/ci/build/policy/refs.rb; Ci::Pipeline#branch? is false for merge-request pipelines).
// - A child pipeline of a merge-request pipeline is itself a merge-request pipeline (gitlab-org/gitlab!23884
//   passes parent_pipeline.merge_request on), with CI_PIPELINE_SOURCE "parent_pipeline" (docs: downstream
//   pipelines, "Run child pipelines with merge request pipelines"). A child with no jobs fails its trigger
//   job: "downstream pipeline can not be created, the resulting pipeline would have been empty".
// - Variable precedence (docs: CI/CD variables, "CI/CD variable precedence"): pipeline variables ("Run
//   pipeline", schedule, trigger) over dotenv reports over job and rules variables over the file's global
//   variables over predefined variables. A trigger job forwards its YAML variables to the child, not the
//   parent's pipeline variables (trigger:forward defaults: yaml_variables true, pipeline_variables false).
// - A job runs when every job it `needs` (or, without needs, every job of the earlier stages) succeeded or
//   may fail; a manual job that may not fail blocks what comes after it until someone plays it.

export type PipelineSource = "push" | "merge_request_event" | "schedule" | "web" | "api" | "parent_pipeline";

export interface PipelineRun {
    source: PipelineSource;
    /** The branch or tag the pipeline runs for (a merge-request pipeline: its source branch). */
    ref: { kind: "branch" | "tag"; name: string };
    mergeRequest?: { iid: number; labels: string[]; sourceBranch: string; diffBaseSha: string };
    /** Variables the pipeline was started with ("Run pipeline", a schedule's, a trigger's). */
    pipelineVariables?: Record<string, string>;
    /** Variables handed on by dotenv reports of jobs this one needs. */
    dotenv?: Record<string, string>;
    /** @default "main" */
    defaultBranch?: string;
    /** @default "https://gitlab.com/acme/gitops-platform" */
    projectUrl?: string;
}

export interface CreatedJob {
    name: string;
    stage: string;
    when: string;
    allowFailure: boolean;
    needs?: string[];
    /** Every variable the job sees, by GitLab's precedence. */
    variables: Record<string, string>;
    config: Record<string, unknown>;
}

export type Pipeline = { created: false; reason: string } | { created: true; jobs: CreatedJob[]; stages: string[] };

interface Rule {
    if?: string;
    when?: string;
    allow_failure?: boolean;
    variables?: Record<string, string>;
}

const RESERVED = new Set(["stages", "variables", "workflow", "default", "include", "image", "services", "cache", "before_script", "after_script"]);

/** The predefined variables GitLab sets for a pipeline (docs: predefined CI/CD variables). */
export function predefinedVariables(run: PipelineRun): Record<string, string> {
    const project = run.projectUrl ?? "https://gitlab.com/acme/gitops-platform";
    const vars: Record<string, string> = {
        CI: "true",
        GITLAB_CI: "true",
        CI_PIPELINE_SOURCE: run.source,
        CI_DEFAULT_BRANCH: run.defaultBranch ?? "main",
        CI_PROJECT_URL: project,
        CI_PROJECT_DIR: "/builds/acme/gitops-platform",
        CI_PROJECT_ID: "42",
        CI_API_V4_URL: "https://gitlab.com/api/v4",
        CI_SERVER_HOST: "gitlab.com",
        CI_REGISTRY: "registry.gitlab.com",
        CI_REGISTRY_IMAGE: "registry.gitlab.com/acme/gitops-platform",
        CI_COMMIT_SHA: "0123456789abcdef0123456789abcdef01234567",
        CI_COMMIT_REF_NAME: run.ref.name,
        CI_JOB_TOKEN: "job-token-for-tests",
    };
    if (run.mergeRequest) {
        // A merge-request pipeline has no CI_COMMIT_BRANCH (docs: "not available in merge request pipelines").
        Object.assign(vars, {
            CI_MERGE_REQUEST_ID: String(1000 + run.mergeRequest.iid),
            CI_MERGE_REQUEST_IID: String(run.mergeRequest.iid),
            CI_MERGE_REQUEST_LABELS: run.mergeRequest.labels.join(","),
            CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: run.mergeRequest.sourceBranch,
            CI_MERGE_REQUEST_DIFF_BASE_SHA: run.mergeRequest.diffBaseSha,
        });
    } else if (run.ref.kind === "branch") {
        vars["CI_COMMIT_BRANCH"] = run.ref.name;
    } else {
        vars["CI_COMMIT_TAG"] = run.ref.name;
    }
    return vars;
}

/** `$VAR` and `${VAR}` in a variable's value, expanded from what is already known. */
function expand(value: string, known: Record<string, string>): string {
    return value.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => known[name] ?? "");
}

// --- rules:if expressions (docs: "CI/CD variable expressions"; lib/gitlab/ci/pipeline/expression/) ---------

type Token = { t: "var" | "str" | "re" | "null" | "op" | "("; v: string } | { t: ")"; v: string };

function tokenize(expr: string): Token[] {
    const tokens: Token[] = [];
    const re = /\s*(?:(\$[A-Za-z_][A-Za-z0-9_]*)|"([^"]*)"|'([^']*)'|\/((?:\\.|[^/])*)\/([a-z]*)|(null)\b|(==|!=|=~|!~|&&|\|\|)|(\()|(\)))/y;
    let m: RegExpExecArray | null;
    let at = 0;
    while (at < expr.length && (m = re.exec(expr))) {
        if (m[1]) tokens.push({ t: "var", v: m[1].slice(1) });
        else if (m[2] !== undefined) tokens.push({ t: "str", v: m[2] });
        else if (m[3] !== undefined) tokens.push({ t: "str", v: m[3] });
        else if (m[4] !== undefined) tokens.push({ t: "re", v: `${m[4]}/${m[5] ?? ""}` });
        else if (m[6]) tokens.push({ t: "null", v: "" });
        else if (m[7]) tokens.push({ t: "op", v: m[7] });
        else if (m[8]) tokens.push({ t: "(", v: "(" });
        else if (m[9]) tokens.push({ t: ")", v: ")" });
        at = re.lastIndex;
        if (expr.slice(at).trim() === "") break;
    }
    if (expr.slice(at).trim() !== "") throw new Error(`GitLab could not parse the expression: ${expr}`);
    return tokens;
}

/** Whether `rules:if` holds for these variables. */
export function evaluateIf(expr: string, vars: Record<string, string>): boolean {
    const tokens = tokenize(expr);
    let i = 0;
    type Value = string | null | { re: RegExp };
    const operand = (): Value => {
        const tok = tokens[i++];
        if (!tok) throw new Error(`GitLab could not parse the expression: ${expr}`);
        if (tok.t === "var") return vars[tok.v] ?? null;
        if (tok.t === "str") return tok.v;
        if (tok.t === "null") return null;
        if (tok.t === "re") {
            const cut = tok.v.lastIndexOf("/");
            return { re: new RegExp(tok.v.slice(0, cut), tok.v.slice(cut + 1)) };
        }
        throw new Error(`GitLab could not parse the expression: ${expr}`);
    };
    const truthy = (v: Value) => typeof v === "string" && v !== "";
    const comparison = (): boolean => {
        if (tokens[i]?.t === "(") {
            i++;
            const inner = or();
            if (tokens[i++]?.t !== ")") throw new Error(`GitLab could not parse the expression: ${expr}`);
            return inner;
        }
        const left = operand();
        const op = tokens[i];
        if (op?.t !== "op" || op.v === "&&" || op.v === "||") return truthy(left);
        i++;
        const right = operand();
        const text = (v: Value) => (v === null ? null : typeof v === "string" ? v : v.re.source);
        if (op.v === "==") return text(left) === text(right);
        if (op.v === "!=") return text(left) !== text(right);
        const matches = typeof left === "string" && typeof right === "object" && right !== null && right.re.test(left);
        return op.v === "=~" ? matches : !matches;
    };
    const and = (): boolean => {
        let v = comparison();
        while (tokens[i]?.v === "&&") {
            i++;
            v = comparison() && v;
        }
        return v;
    };
    const or = (): boolean => {
        let v = and();
        while (tokens[i]?.v === "||") {
            i++;
            v = and() || v;
        }
        return v;
    };
    return or();
}

/** The first rule that matches, or undefined (none matched: GitLab's when: never). */
function firstMatch(rules: Rule[], vars: Record<string, string>): Rule | undefined {
    return rules.find((r) => r.if === undefined || evaluateIf(r.if, vars));
}

/** The jobs GitLab creates for a configuration (already parsed YAML) and an event. */
export function createPipeline(config: Record<string, unknown>, run: PipelineRun): Pipeline {
    const predefined = predefinedVariables(run);
    const globals = (config["variables"] ?? {}) as Record<string, string>;
    const pipelineVars = run.pipelineVariables ?? {};
    const base = { ...predefined, ...globals, ...pipelineVars };
    const workflow = (config["workflow"] as { rules?: Rule[] } | undefined)?.rules;
    let workflowVars: Record<string, string> = {};
    if (workflow) {
        const rule = firstMatch(workflow, base);
        if (!rule || rule.when === "never") return { created: false, reason: "workflow:rules: no rule lets this pipeline run" };
        workflowVars = rule.variables ?? {};
    }
    const isMergeRequest = run.mergeRequest !== undefined;
    const jobs: CreatedJob[] = [];
    for (const [name, value] of Object.entries(config)) {
        if (RESERVED.has(name) || name.startsWith(".") || typeof value !== "object" || value === null) continue;
        const job = value as Record<string, unknown> & { rules?: Rule[]; only?: unknown; except?: unknown; when?: string; allow_failure?: boolean };
        const jobVars = (job["variables"] ?? {}) as Record<string, string>;
        // Rules see the job's own variables (docs: "rules:if ... variables defined in the job").
        const before = { ...predefined, ...globals, ...workflowVars, ...jobVars, ...pipelineVars };
        let when = job.when ?? "on_success";
        let allowFailure = job.allow_failure ?? when === "manual";
        let ruleVars: Record<string, string> = {};
        if (job.rules) {
            const rule = firstMatch(job.rules, before);
            if (!rule || rule.when === "never") continue;
            when = rule.when ?? when;
            allowFailure = rule.allow_failure ?? job.allow_failure ?? when === "manual";
            ruleVars = rule.variables ?? {};
        } else if (job.only === undefined && job.except === undefined && !workflow) {
            // The default `only: [branches, tags]`: a merge-request pipeline's ref is neither.
            if (isMergeRequest) continue;
        } else if (job.only !== undefined || job.except !== undefined) {
            throw new Error(`job ${name}: only/except is not modelled; use rules`);
        }
        const yamlLevel: Record<string, string> = {};
        for (const [k, v] of Object.entries({ ...globals, ...workflowVars, ...jobVars, ...ruleVars })) {
            yamlLevel[k] = expand(String(v), { ...predefined, ...yamlLevel });
        }
        const variables = { ...predefined, ...yamlLevel, ...run.dotenv, ...pipelineVars };
        jobs.push({
            name,
            stage: typeof job["stage"] === "string" ? job["stage"] : "test",
            when,
            allowFailure,
            needs: job["needs"] as string[] | undefined,
            variables,
            config: job,
        });
    }
    if (jobs.length === 0) return { created: false, reason: "the resulting pipeline would have been empty" };
    const stages = (config["stages"] as string[] | undefined) ?? ["build", "test", "deploy"];
    return { created: true, jobs, stages };
}

/** The run a trigger job starts: a child pipeline of the same event, with the trigger's YAML variables. */
export function childRun(parent: PipelineRun, trigger: CreatedJob): PipelineRun {
    const yamlVars = (trigger.config["variables"] ?? {}) as Record<string, string>;
    const forwarded: Record<string, string> = {};
    for (const k of Object.keys(yamlVars)) forwarded[k] = trigger.variables[k] ?? "";
    const { pipelineVariables: _notForwarded, dotenv: _own, ...rest } = parent;
    return { ...rest, source: "parent_pipeline", pipelineVariables: forwarded };
}

export type JobStatus = "success" | "failed" | "skipped" | "manual" | "waiting" | "running";

/**
 * What each job ends as, given the outcome of those that run (default success): a job waits for its needs
 * or the earlier stages, is skipped after a failure that may not fail, and waits behind a blocking manual job.
 */
export function statuses(pipeline: Extract<Pipeline, { created: true }>, outcomes: Record<string, JobStatus> = {}): Record<string, JobStatus> {
    const result: Record<string, JobStatus> = {};
    const prerequisitesOf = (job: CreatedJob) =>
        job.needs
            ? pipeline.jobs.filter((j) => job.needs?.includes(j.name))
            : pipeline.jobs.filter((j) => pipeline.stages.indexOf(j.stage) < pipeline.stages.indexOf(job.stage));
    // Jobs settle once what they wait for has: in stage order, and within a stage along `needs`.
    while (Object.keys(result).length < pipeline.jobs.length) {
        const ready = pipeline.jobs.filter((j) => !(j.name in result) && prerequisitesOf(j).every((p) => p.name in result));
        if (ready.length === 0) throw new Error("a cycle in needs: GitLab would refuse this pipeline");
        for (const job of ready) {
            const states = prerequisitesOf(job).map((p) => ({ p, s: result[p.name] }));
            if (states.some(({ p, s }) => (s === "failed" || s === "skipped") && !p.allowFailure)) result[job.name] = "skipped";
            else if (states.some(({ p, s }) => (s === "manual" && !p.allowFailure) || s === "waiting" || s === "running")) result[job.name] = "waiting";
            else if (job.when === "manual") result[job.name] = "manual";
            else result[job.name] = outcomes[job.name] ?? "success";
        }
    }
    return result;
}

/** A trigger job's status under `strategy: depend`: the child's, where an unplayed blocking manual job keeps it running. */
export function dependStatus(child: Pipeline, outcomes: Record<string, JobStatus> = {}): JobStatus {
    if (!child.created) return "failed";
    const s = statuses(child, outcomes);
    const blocking = child.jobs.filter((j) => !j.allowFailure);
    if (blocking.some((j) => s[j.name] === "failed")) return "failed";
    if (blocking.some((j) => s[j.name] === "manual" || s[j.name] === "waiting")) return "running";
    return "success";
}
