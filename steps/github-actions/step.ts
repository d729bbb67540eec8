// github-actions: dispatch a GitHub Actions workflow (workflow_dispatch) or a repository_dispatch
// event once per run, then follow the run it started to its conclusion through the shared
// per-repository poller of steps/github-actions/github-client.ts.
import { createHash, createPrivateKey } from "node:crypto";
import { isIP } from "node:net";
import { formatDuration, parseDuration } from "../../server/shared/duration.js";
import { InputError, TerminalError } from "../../server/shared/errors.js";
import { describeGithubError, GithubCallError, GithubHub, type GithubClient, type GithubCredentials, type GithubFailure, type WorkflowRun } from "./github-client.js";
import { isLinkLocal, type HttpClient } from "../../server/outbound/http-client.js";
import { isLoopbackHost } from "../../server/outbound/outbound-policy.js";
import { retryDelay, type BackoffOptions } from "../../server/shared/retry.js";
import { SecretMissingError } from "../../server/kube/secrets.js";
import { waitForValue } from "../../server/kube/wait-for-input.js";
import { schemas } from "../generated/index.js";
import type { GithubActionsParameter } from "../generated/github-actions.js";
import type { StepContext, StepKind } from "../../server/contract/step.js";
import type { RunIdentity, StepResult } from "../../server/contract/run.js";

/** Longest `timeout` accepted. */
export const MAX_TIMEOUT_MS = 72 * 60 * 60 * 1000;
/** GitHub's limits on workflow_dispatch `inputs` (top-level keys; characters of the JSON). */
export const MAX_INPUTS = 25;
export const MAX_INPUTS_CHARS = 65_535;
/** GitHub's limits on repository_dispatch `client_payload` (top-level keys; the JSON must be smaller than 64 KB). */
export const MAX_CLIENT_PAYLOAD_KEYS = 10;
export const MAX_CLIENT_PAYLOAD_BYTES = 64 * 1024;
/** GitHub's limit on a repository_dispatch event_type. */
export const MAX_EVENT_TYPE_LENGTH = 100;
/** The input / client_payload key carrying the id the step finds its run by when GitHub does not name it. */
export const DISTINCT_ID_KEY = "distinct_id";
const DEFAULT_API_URL = "https://api.github.com";

export interface GithubActionsOptions {
  /** Shared GitHub clients and pollers; one per executor. */
  hub?: GithubHub;
  /** How long the step looks for a run GitHub did not name (204 answer, repository_dispatch, a lost answer). */
  correlationTimeoutMs: number;
  /** Retry timing of a dispatch that provably never reached GitHub or was rate-limited. */
  dispatchBackoff: Partial<BackoffOptions>;
}

export const githubActionsDefaults = {
  correlationTimeoutMs: 2 * 60_000,
  dispatchBackoff: { initialMs: 2_000, maxMs: 60_000 },
} satisfies Omit<GithubActionsOptions, "hub">;

type Mode =
  | { kind: "workflow"; workflow: string | number; ref: string; inputs: Record<string, string>; distinctIdFits: boolean }
  | { kind: "event"; event: string; clientPayload: Record<string, unknown> };

type Credentials =
  | { kind: "token"; name: string; key: string }
  | { kind: "app"; name: string; appIdKey: string; privateKeyKey: string; installationIdKey: string };

interface Prepared {
  owner: string;
  repo: string;
  apiURL: string;
  mode: Mode;
  credentials: Credentials;
  wait: boolean;
  timeoutMs: number;
  cancelOnTimeout: boolean;
  distinctId: string;
  /** "owner/repo main.yaml" or "owner/repo repository_dispatch deploy-done", for messages. */
  what: string;
}

function prepare(p: GithubActionsParameter, run: RunIdentity): Prepared {
  const hasWorkflow = p.workflow !== undefined;
  const hasEvent = p.event !== undefined;
  if (hasWorkflow === hasEvent) {
    throw new InputError("parameter: set either workflow (with ref and inputs) for a workflow_dispatch, or event (with clientPayload) for a repository_dispatch" + (hasWorkflow ? ", not both" : ""));
  }
  const distinctId = "se-" + createHash("sha256").update(`${run.namespace}/${run.application}/${run.step}/${run.session}`).digest("hex").slice(0, 16);
  let mode: Mode;
  let what: string;
  if (hasWorkflow) {
    if (p.clientPayload !== undefined) throw new InputError("clientPayload: only a repository_dispatch (event) carries a clientPayload; a workflow_dispatch takes inputs");
    const workflow = p.workflow!;
    if (typeof workflow === "string" && workflow.includes("/")) {
      throw new InputError(`workflow: "${workflow}" is a path; give the file name (e.g. "${workflow.split("/").pop()}") or the numeric workflow id`);
    }
    if (!p.ref) throw new InputError("ref: a workflow_dispatch needs the branch or tag to run the workflow on (e.g. ref: \"main\")");
    const inputs = p.inputs ?? {};
    if (DISTINCT_ID_KEY in inputs) throw new InputError(`inputs.${DISTINCT_ID_KEY}: the name is reserved; the step sets it to find the run it started`);
    const n = Object.keys(inputs).length;
    if (n > MAX_INPUTS) throw new InputError(`inputs: ${n} inputs given; GitHub accepts at most ${MAX_INPUTS}`);
    const distinctIdFits = n < MAX_INPUTS && JSON.stringify({ ...inputs, [DISTINCT_ID_KEY]: distinctId }).length <= MAX_INPUTS_CHARS;
    const chars = JSON.stringify(inputs).length;
    if (chars > MAX_INPUTS_CHARS) throw new InputError(`inputs: the payload is ${chars} characters; GitHub accepts at most ${MAX_INPUTS_CHARS}, so nothing was sent`);
    mode = { kind: "workflow", workflow, ref: p.ref, inputs, distinctIdFits };
    what = `${p.owner}/${p.repo} ${workflow}`;
  } else {
    if (p.inputs !== undefined || p.ref !== undefined) {
      throw new InputError(`${p.inputs !== undefined ? "inputs" : "ref"}: a repository_dispatch (event) runs on the default branch and takes a clientPayload; inputs and ref belong to a workflow_dispatch`);
    }
    const clientPayload = p.clientPayload ?? {};
    if (DISTINCT_ID_KEY in clientPayload) throw new InputError(`clientPayload.${DISTINCT_ID_KEY}: the key is reserved; the step sets it to find the run it started`);
    const n = Object.keys(clientPayload).length;
    if (n > MAX_CLIENT_PAYLOAD_KEYS - 1) {
      throw new InputError(`clientPayload: ${n} top-level keys given; GitHub accepts ${MAX_CLIENT_PAYLOAD_KEYS} and the step adds ${DISTINCT_ID_KEY}, so at most ${MAX_CLIENT_PAYLOAD_KEYS - 1}; nest the rest`);
    }
    const bytes = Buffer.byteLength(JSON.stringify({ ...clientPayload, [DISTINCT_ID_KEY]: distinctId }));
    if (bytes >= MAX_CLIENT_PAYLOAD_BYTES) throw new InputError(`clientPayload: the payload is ${bytes} bytes; GitHub accepts less than ${MAX_CLIENT_PAYLOAD_BYTES} (64 KB), so nothing was sent`);
    if (p.event!.length === 0 || [...p.event!].length > MAX_EVENT_TYPE_LENGTH) throw new InputError(`event: the event type must be 1 to ${MAX_EVENT_TYPE_LENGTH} characters long, got ${[...p.event!].length}`);
    mode = { kind: "event", event: p.event!, clientPayload };
    what = `${p.owner}/${p.repo} repository_dispatch ${p.event}`;
  }
  // The schema's oneOf already requires exactly one; this guards a caller that skipped it.
  const c = (p.credentials ?? {}) as { token?: { name: string; key?: string }; app?: { name: string; appIdKey?: string; privateKeyKey?: string; installationIdKey?: string } };
  if ((c.token === undefined) === (c.app === undefined)) {
    throw new InputError("credentials: set exactly one of token ({name, key}: a Secret with a token) or app ({name}: a Secret with a GitHub App's appId, privateKey and installationId)");
  }
  const credentials: Credentials = c.token
    ? { kind: "token", name: c.token.name, key: c.token.key ?? "token" }
    : { kind: "app", name: c.app!.name, appIdKey: c.app!.appIdKey ?? "appId", privateKeyKey: c.app!.privateKeyKey ?? "privateKey", installationIdKey: c.app!.installationIdKey ?? "installationId" };
  const timeout = p.timeout ?? "30m";
  const timeoutMs = parseDuration(timeout, "timeout");
  if (timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) throw new InputError(`timeout: must be between 1s and ${formatDuration(MAX_TIMEOUT_MS)}, got "${timeout}"`);
  return {
    owner: p.owner,
    repo: p.repo,
    apiURL: checkApiURL(p.apiURL ?? DEFAULT_API_URL),
    mode,
    credentials,
    wait: p.wait ?? true,
    timeoutMs,
    cancelOnTimeout: p.cancelOnTimeout ?? false,
    distinctId,
    what,
  };
}

function checkApiURL(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputError(`apiURL: "${text}" is not a valid URL; use https://api.github.com or https://HOST/api/v3 for GitHub Enterprise Server`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new InputError(`apiURL: scheme "${url.protocol.slice(0, -1)}" is not supported; use https://`);
  if (/^(www\.)?github\.com$/i.test(url.hostname)) throw new InputError(`apiURL: "${text}" is the web site; the API is https://api.github.com`);
  if (url.username || url.password || url.search || url.hash) throw new InputError("apiURL: give the API base URL only, without credentials, query or fragment");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host) && isLinkLocal(host)) throw new InputError(`apiURL: ${host} is a link-local address, which the executor refuses`);
  // The token travels in every request: in clear only to this host itself (tests, a local proxy).
  if (url.protocol === "http:" && !isLoopbackHost(host)) throw new InputError(`apiURL: "${text}" would send the GitHub token unencrypted; use https:// (http:// is accepted only for loopback addresses)`);
  return url.href.replace(/\/+$/, "");
}

/** The web page listing the repository's runs, for messages (github.com or GHES). */
function actionsPage(p: Prepared): string {
  const u = new URL(p.apiURL);
  const web = u.hostname === "api.github.com" ? "https://github.com" : `${u.origin}${u.pathname.replace(/\/+$/, "").replace(/\/api\/v3$/, "")}`;
  return `${web}/${p.owner}/${p.repo}/actions`;
}

/** GitHub run ids are int64: a number while exact, else the decimal string. */
function outputId(id: string): number | string {
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : id;
}

/**
 * The run's journal (docs/runs.md), for an executor that takes the run over: `dispatch` is
 * "sending" from just before the dispatch request until its answer is known, "not-sent" after an
 * answer that proves nothing was dispatched, "sent" after a clear answer; `runId` once known.
 */
interface Journal {
  dispatch?: "sending" | "not-sent" | "sent";
  withDistinctId?: boolean;
  /** When the dispatch request left (runs created before it are not ours). */
  at?: number;
  runId?: string;
  htmlUrl?: string;
}

interface Run {
  id: string;
  htmlUrl: string;
  status: string;
  conclusion: string | null;
}

class Runner {
  private readonly deadline: number;
  private readonly signal: AbortSignal;
  /** For the dispatch request: a handover lets it finish (docs/runs.md). */
  private readonly effectSignal: AbortSignal;
  private readonly deadlineSignal: AbortSignal;
  private client!: GithubClient;
  /** When the (latest) dispatch request left: runs created before it are not ours. */
  private dispatchedAt = 0;
  /** What the step was doing and the last trouble, for a timeout message. */
  private stage: "dispatching" | "searching" | "following" = "dispatching";
  private lastTrouble = "";

  constructor(private readonly ctx: StepContext, private readonly p: Prepared, private readonly options: GithubActionsOptions & { hub: GithubHub }) {
    this.deadline = ctx.now() + p.timeoutMs;
    this.deadlineSignal = AbortSignal.timeout(p.timeoutMs);
    this.signal = AbortSignal.any([ctx.signal, this.deadlineSignal]);
    this.effectSignal = AbortSignal.any([ctx.effectSignal, this.deadlineSignal]);
  }

  async run(): Promise<StepResult> {
    const { ctx, p } = this;
    this.client = await this.options.hub.client(p.apiURL, await this.credentials());
    let run: Run | undefined;
    try {
      const resumed = ctx.journal.resumed as Journal | undefined;
      run = resumed?.dispatch && resumed.dispatch !== "not-sent" ? await this.resume(resumed) : await this.dispatch();
      if (!p.wait) return this.result("succeeded", run ? `dispatched ${p.what}: run ${run.id} — ${run.htmlUrl}` : `dispatched ${p.what}`, run);
      run ??= await this.findRun(`dispatched ${p.what}`, false);
      ctx.progress(`dispatched ${p.what}: run ${run.id} ${run.status} — ${run.htmlUrl}`);
      run = await this.follow(run);
    } catch (err) {
      if (ctx.signal.aborted || !this.deadlineSignal.aborted) throw err;
      return this.timedOut(run);
    }
    const verdict = run.conclusion === "success" ? "succeeded" : "failed";
    return this.result(verdict, `${p.what}: run ${run.id} concluded ${run.conclusion ?? "without a conclusion"} — ${run.htmlUrl}`, run);
  }

  private result(phase: "succeeded" | "failed", message: string, run: Run | undefined): StepResult {
    return {
      phase,
      message,
      outputs: {
        runId: run ? outputId(run.id) : 0,
        runUrl: run?.htmlUrl ?? "",
        status: run?.status ?? "dispatched",
        conclusion: run?.conclusion ?? "",
      },
    };
  }

  // ---- credentials -------------------------------------------------------------------------

  private async credentials(): Promise<GithubCredentials> {
    const c = this.p.credentials;
    if (c.kind === "token") {
      const token = (await this.readKey(c.name, c.key, "credentials.token", true)).trim();
      if (!token || /\s/.test(token)) throw new TerminalError(`the value of key "${c.key}" in Secret ${c.name} is not a GitHub token (it is empty or contains whitespace)`);
      return { kind: "token", token };
    }
    const appId = (await this.readKey(c.name, c.appIdKey, "credentials.app.appIdKey", false)).trim();
    if (!/^[A-Za-z0-9.]+$/.test(appId)) throw new TerminalError(`the value of key "${c.appIdKey}" in Secret ${c.name} is not a GitHub App id or client id: "${appId}"`);
    const installation = (await this.readKey(c.name, c.installationIdKey, "credentials.app.installationIdKey", false)).trim();
    if (!/^\d+$/.test(installation)) throw new TerminalError(`the value of key "${c.installationIdKey}" in Secret ${c.name} is not a numeric installation id: "${installation}"`);
    const privateKey = (await this.readKey(c.name, c.privateKeyKey, "credentials.app.privateKeyKey", true)).replace(/\\n/g, "\n").trim() + "\n";
    try {
      createPrivateKey(privateKey);
    } catch (err) {
      throw new TerminalError(`the value of key "${c.privateKeyKey}" in Secret ${c.name} is not a PEM private key (${(err as Error).message}); store the .pem file GitHub generated for the app`);
    }
    return { kind: "app", appId, privateKey, installationId: Number(installation) };
  }

  /** One key of a Secret in the run's namespace, waiting for it to appear; secret values go through ctx.secrets (redacted). */
  private async readKey(name: string, key: string, field: string, secret: boolean): Promise<string> {
    const { ctx } = this;
    return waitForValue(ctx, async () => {
      if (secret) return ctx.secrets.resolve({ name, key });
      // App and installation ids are public identifiers: read them without redaction, so they
      // cannot mask parts of run URLs that happen to contain the same digits.
      const data = await ctx.kube.readSecret(ctx.run.namespace, name);
      if (!data) throw new SecretMissingError(`Secret ${ctx.run.namespace}/${name} not found`);
      const value = data[key];
      if (value === undefined) throw new SecretMissingError(`Secret ${ctx.run.namespace}/${name} has no key "${key}" (it has: ${Object.keys(data).join(", ") || "no keys"})`);
      return value;
    }, { field, what: field }, ctx.now() + ctx.tuning.secretWaitMs);
  }

  private credentialsRef(keyOverride?: string): string {
    const c = this.p.credentials;
    return c.kind === "token" ? `Secret ${c.name}/${c.key}` : `Secret ${c.name}/${keyOverride ?? c.privateKeyKey}`;
  }

  /** The message for a GitHub answer no retry can fix. */
  private failureMessage(f: GithubFailure, doing: string, err: unknown): string {
    const { p } = this;
    const answer = `${f.status} ${f.message}`;
    const c = p.credentials;
    const tokenRequest = /\/access_tokens$/.test(String((err as { request?: { url?: string } }).request?.url ?? ""));
    if (c.kind === "app" && tokenRequest) {
      if (f.status === 401) return `GitHub rejected the credentials in Secret ${c.name}/${c.privateKeyKey} (the app id from key ${c.appIdKey} and its private key) (${answer})`;
      if (f.status === 404) return `GitHub found no installation of the app with the id in Secret ${c.name}/${c.installationIdKey} (${answer})`;
      return `error getting an installation token for the GitHub App in Secret ${c.name}: GitHub answered ${answer}`;
    }
    if (f.status === 401) return `GitHub rejected the credentials in ${this.credentialsRef()} (${answer})`;
    if (f.status === 404) {
      if (doing === "dispatch" && p.mode.kind === "workflow") {
        return `GitHub found no workflow ${p.mode.workflow} in ${p.owner}/${p.repo} (${answer}); check owner, repo and workflow, and that the credentials in ${this.credentialsRef()} can see the repository`;
      }
      return `GitHub found no repository ${p.owner}/${p.repo} (${answer}); check owner and repo, and that the credentials in ${this.credentialsRef()} can see it`;
    }
    if (f.status === 403) {
      const need = p.mode.kind === "workflow" ? "Actions: write" : "Contents: write";
      return `GitHub refused to ${doing} ${p.what} with the credentials in ${this.credentialsRef()} (${answer})${doing === "dispatch" ? `; they need the ${need} permission` : ""}`;
    }
    if (doing === "dispatch" && (f.status === 400 || f.status === 422)) return `GitHub rejected the dispatch of ${p.what}: ${f.message}`;
    return `error trying to ${doing} ${p.what}: GitHub answered ${answer}`;
  }

  // ---- dispatch ----------------------------------------------------------------------------

  /** Dispatches once; returns the run when GitHub names it. Never dispatches again after an answer that may have been lost. */
  private async dispatch(): Promise<Run | undefined> {
    const { ctx, p, client } = this;
    const mode = p.mode;
    const workflowFact = mode.kind === "workflow" ? `no-distinct-id:${p.owner}/${p.repo}/${mode.workflow}`.toLowerCase() : "";
    let runDetails = !client.knows("no-run-details");
    let withDistinctId = mode.kind === "event" || (mode.distinctIdFits && !client.knows(workflowFact));
    let transient = 0;
    ctx.progress(`dispatching ${p.what}${mode.kind === "workflow" ? ` on ${mode.ref}` : ""}`);
    for (;;) {
      if (mode.kind === "workflow" && !runDetails && !withDistinctId && p.wait) {
        throw new TerminalError(`cannot follow the run of ${p.what}: this GitHub does not return run details (GitHub Enterprise Server before 3.21) and the workflow has no "${DISTINCT_ID_KEY}" input to find the run by; ` +
          `add an optional input "${DISTINCT_ID_KEY}" and put \${{ inputs.${DISTINCT_ID_KEY} }} in the workflow's run-name, or set wait: false. Nothing was dispatched`);
      }
      this.dispatchedAt = ctx.now();
      // Intent before the side effect: from here on the dispatch may have happened.
      await ctx.journal.record({ dispatch: "sending", withDistinctId, at: this.dispatchedAt } satisfies Journal);
      try {
        if (mode.kind === "workflow") {
          const inputs = withDistinctId ? { ...mode.inputs, [DISTINCT_ID_KEY]: p.distinctId } : mode.inputs;
          const res = await client.postOnce("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", {
            owner: p.owner, repo: p.repo, workflow_id: mode.workflow, ref: mode.ref,
            ...(Object.keys(inputs).length > 0 ? { inputs } : {}),
            ...(runDetails ? { return_run_details: true } : {}),
          }, this.effectSignal);
          const data = res.data as { workflow_run_id?: unknown; html_url?: unknown } | undefined;
          if (res.status === 200 && data?.workflow_run_id != null) {
            const run = { id: String(data.workflow_run_id), htmlUrl: String(data.html_url ?? ""), status: "queued", conclusion: null };
            await ctx.journal.record({ dispatch: "sent", withDistinctId, at: this.dispatchedAt, runId: run.id, htmlUrl: run.htmlUrl } satisfies Journal);
            return run;
          }
          if (runDetails) client.learn("no-run-details", 60 * 60_000); // 204 despite asking: this server ignores it
          await ctx.journal.record({ dispatch: "sent", withDistinctId, at: this.dispatchedAt } satisfies Journal);
          return undefined;
        }
        await client.postOnce("POST /repos/{owner}/{repo}/dispatches", {
          owner: p.owner, repo: p.repo, event_type: mode.event, client_payload: { ...mode.clientPayload, [DISTINCT_ID_KEY]: p.distinctId },
        }, this.effectSignal);
        await ctx.journal.record({ dispatch: "sent", withDistinctId, at: this.dispatchedAt } satisfies Journal);
        return undefined;
      } catch (err) {
        if (this.signal.aborted) throw err;
        const f = describeGithubError(err, ctx.now());
        if (f.forbidden) throw new TerminalError(`cannot dispatch ${p.what}: ${f.message}. Nothing was dispatched`);
        if ((f.status === 400 || f.status === 422) && mode.kind === "workflow") {
          // Refusals that prove nothing was dispatched and that a leaner request may pass.
          if (runDetails && /return_run_details/.test(f.message)) {
            runDetails = false;
            client.learn("no-run-details", 60 * 60_000);
            continue;
          }
          if (withDistinctId && /unexpected inputs/i.test(f.message) && f.message.includes(DISTINCT_ID_KEY)) {
            withDistinctId = false;
            client.learn(workflowFact);
            continue;
          }
        }
        if (f.status >= 500 || (f.status === 0 && !f.notSent)) return this.afterLostAnswer(`the dispatch of ${p.what} got no clear answer (${this.describe(f)})`, withDistinctId);
        if (f.notSent || f.rateLimited) {
          await ctx.journal.record({ dispatch: "not-sent" } satisfies Journal);
          const delay = retryDelay(++transient, this.options.dispatchBackoff, f.retryAfterMs);
          this.lastTrouble = this.describe(f);
          if (ctx.now() + delay >= this.deadline) throw new TerminalError(`timed out after ${formatDuration(p.timeoutMs)} dispatching ${p.what}; last error: ${this.lastTrouble}`);
          ctx.retrying(`dispatching ${p.what}: ${this.describe(f)}; retrying in ${formatDuration(delay)} (nothing was dispatched)`);
          await ctx.sleep(delay);
          continue;
        }
        throw new TerminalError(this.failureMessage(f, "dispatch", err));
      }
    }
  }

  private describe(f: GithubFailure): string {
    if (f.rateLimited) return `GitHub rate limit (${f.status} ${f.message})`;
    return f.status ? `GitHub answered ${f.status} ${f.message}` : `no answer from ${this.p.apiURL}: ${f.message}`;
  }

  /** Taking the run over from an executor that stopped after (or while) dispatching: never dispatch again. */
  private async resume(j: Journal): Promise<Run | undefined> {
    const { ctx, p } = this;
    this.dispatchedAt = j.at ?? ctx.now();
    if (j.runId) return { id: j.runId, htmlUrl: j.htmlUrl ?? "", status: "queued", conclusion: null };
    if (j.dispatch === "sent" && !p.wait) return undefined;
    const why = j.dispatch === "sent"
      ? `dispatched ${p.what} (the executor that did it stopped)`
      : `the executor dispatching ${p.what} stopped before recording GitHub's answer`;
    return this.afterLostAnswer(why, j.withDistinctId ?? false);
  }

  /** The dispatch may or may not have happened: look for its run by the distinct id, never dispatch blind. */
  private async afterLostAnswer(why: string, withDistinctId: boolean): Promise<Run> {
    const { p } = this;
    if (!withDistinctId) {
      throw new TerminalError(`${why}; it may or may not have started a run, and without a "${DISTINCT_ID_KEY}" input the step cannot tell, so it does not dispatch again — check ${actionsPage(p)}`);
    }
    try {
      return await this.findRun(why, true);
    } catch (err) {
      if (err instanceof TerminalError) {
        throw new TerminalError(`${why} and no run carrying ${DISTINCT_ID_KEY} ${p.distinctId} appeared within ${formatDuration(this.options.correlationTimeoutMs)}; ` +
          `not dispatching again, to avoid a duplicate run — check ${actionsPage(p)} and restart the step if nothing ran`);
      }
      throw err;
    }
  }

  /** Finds the run carrying our distinct id (GitHub did not name it); TerminalError when none appears in time. */
  private async findRun(why: string, lostAnswer: boolean): Promise<Run> {
    const { ctx, p, client } = this;
    const windowMs = Math.min(this.options.correlationTimeoutMs, Math.max(0, this.deadline - ctx.now()));
    const window = AbortSignal.timeout(windowMs);
    const event = p.mode.kind === "workflow" ? "workflow_dispatch" : "repository_dispatch";
    const where = p.mode.kind === "workflow" ? `input ${DISTINCT_ID_KEY}` : `client_payload.${DISTINCT_ID_KEY}`;
    let runs: WorkflowRun[];
    this.stage = "searching";
    ctx.progress(`${why}; looking for its run by ${where} ${p.distinctId}`);
    try {
      runs = await client.poller(p.owner, p.repo).findRuns({
        signal: AbortSignal.any([this.signal, window]),
        since: this.dispatchedAt,
        matches: (r) => r.event === event && (r.displayTitle.includes(p.distinctId) || r.name.includes(p.distinctId)),
        onUpdate: (failure, next) => ctx.progress(`${why}; looking for its run by ${where} ${p.distinctId}${failure ? ` (${this.describe(failure)})` : ""}, next check in ${formatDuration(next)}`),
      });
    } catch (err) {
      if (this.signal.aborted || !window.aborted) throw this.mapWaitError(err, "find the run of");
      const hint = lostAnswer ? "" : p.mode.kind === "workflow"
        ? `; the workflow must declare an optional input "${DISTINCT_ID_KEY}" and show it in its run-name, e.g. run-name: "Deploy [\${{ inputs.${DISTINCT_ID_KEY} }}]"`
        : `; the workflow must show it in its run-name, e.g. run-name: "Deploy [\${{ github.event.client_payload.${DISTINCT_ID_KEY} }}]"`;
      throw new TerminalError(`${why}, but no run carrying ${where} ${p.distinctId} appeared within ${formatDuration(windowMs)}${hint} — check ${actionsPage(p)}`);
    }
    const first = runs[0]!;
    if (runs.length > 1) ctx.log.warn({ runs: runs.map((r) => r.id), distinctId: p.distinctId }, "several runs carry the distinct id; following the oldest");
    return { id: first.id, htmlUrl: first.htmlUrl, status: first.status, conclusion: first.conclusion };
  }

  /** Poller failures: credentials and permissions get the same wording as the dispatch; the rest say what was read. */
  private mapWaitError(err: unknown, doing: string): unknown {
    if (!(err instanceof GithubCallError)) return err;
    const f = err.failure;
    if (f.status === 401 || f.status === 403) return new TerminalError(this.failureMessage(f, doing, err));
    return new TerminalError(err.message, { cause: err });
  }

  // ---- wait --------------------------------------------------------------------------------

  private lastSeen: Run | undefined;

  private async follow(run: Run): Promise<Run> {
    const { ctx, p, client } = this;
    this.stage = "following";
    this.lastSeen = run;
    if (run.status === "completed") return run;
    try {
      const done = await client.poller(p.owner, p.repo).waitForCompletion(run.id, {
        signal: this.signal,
        onUpdate: (r, failure, next) => {
          if (r) this.lastSeen = { id: r.id, htmlUrl: r.htmlUrl || run.htmlUrl, status: r.status, conclusion: r.conclusion };
          const seen = this.lastSeen!;
          const trouble = failure ? `; ${this.describe(failure)}, checking again in ${formatDuration(next)}` : "";
          ctx.progress(`${p.what}: run ${seen.id} ${seen.status} — ${seen.htmlUrl}${trouble}`);
        },
      });
      return { id: done.id, htmlUrl: done.htmlUrl || run.htmlUrl, status: done.status, conclusion: done.conclusion };
    } catch (err) {
      throw this.mapWaitError(err, "follow the run of");
    }
  }

  private async timedOut(run: Run | undefined): Promise<StepResult> {
    const { p } = this;
    const after = `timed out after ${formatDuration(p.timeoutMs)}`;
    if (!run) {
      const doing = this.stage === "dispatching" ? `dispatching ${p.what}${this.lastTrouble ? `; last error: ${this.lastTrouble}` : ""}` : `looking for the run of ${p.what}`;
      return { phase: "failed", message: `${after} ${doing} — check ${actionsPage(p)}` };
    }
    const seen = this.lastSeen ?? run;
    let tail = "it keeps running (set cancelOnTimeout: true to cancel it)";
    if (p.cancelOnTimeout) {
      try {
        await this.client.post("POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel", { owner: p.owner, repo: p.repo, run_id: seen.id }, this.ctx.signal);
        tail = "cancelled it";
      } catch (err) {
        const f = describeGithubError(err, this.ctx.now());
        tail = f.status === 409 ? `did not cancel it: ${f.message}` : `cancelling it failed: ${this.describe(f)}`;
      }
    }
    return { phase: "failed", message: `${after} waiting for ${p.what} run ${seen.id} (${seen.status}) — ${seen.htmlUrl}; ${tail}` };
  }
}

/** One hub per executor HttpClient, so GitHub calls share its outbound policy and host limits. */
const hubs = new WeakMap<HttpClient, GithubHub>();
function hubFor(http: HttpClient): GithubHub {
  let hub = hubs.get(http);
  if (!hub) hubs.set(http, (hub = new GithubHub({ http })));
  return hub;
}

/** The step kind with its own options (tests shrink the intervals); `githubActions` uses the defaults. */
export function createGithubActionsStep(options: Partial<GithubActionsOptions> = {}): StepKind<GithubActionsParameter, Prepared> {
  const o = { ...githubActionsDefaults, ...options };
  return {
    kind: "github-actions",
    description: "Dispatch a GitHub Actions workflow (or repository_dispatch event) and wait for the run's conclusion",
    schema: schemas["github-actions"],
    prepare,
    execute: (ctx, p) => new Runner(ctx, p, { ...o, hub: o.hub ?? hubFor(ctx.http) }).run(),
  };
}

export const githubActions = createGithubActionsStep();
