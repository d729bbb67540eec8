// A local GitHub REST API on 127.0.0.1 for the endpoints the github-actions step uses: workflow
// and repository dispatches, workflow runs (get, list, cancel), GitHub App installation tokens,
// rate-limit headers and ETag/304. Runs move queued → in_progress → completed on a script; faults
// (502, secondary rate limits, lost answers) are injected per request. Every request it receives
// and every response it sends is validated against GitHub's OpenAPI description; problems are
// collected in `validationErrors` (tests assert it stays empty).
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { OpenApiValidator, SPEC_FILE, type Matched } from "./openapi.js";

export const SERVED: [string, string][] = [
  ["POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"],
  ["POST", "/repos/{owner}/{repo}/dispatches"],
  ["GET", "/repos/{owner}/{repo}/actions/runs/{run_id}"],
  ["GET", "/repos/{owner}/{repo}/actions/runs"],
  ["GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"],
  ["POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel"],
  ["POST", "/app/installations/{installation_id}/access_tokens"],
];

const DOCS = "https://docs.github.com/rest";
const API_VERSION = "2022-11-28";

export interface RunScript {
  /** Delay before the run shows up in the API when GitHub did not name it (204, repository_dispatch). */
  appearAfterMs?: number;
  queuedMs?: number;
  runningMs?: number;
  conclusion?: string;
}

export interface FakeWorkflow {
  id: number;
  /** File name under .github/workflows/. */
  file: string;
  name: string;
  /** Triggers; default workflow_dispatch only. */
  on?: ("workflow_dispatch" | "repository_dispatch")[];
  /** repository_dispatch `types` filter (any event type when absent). */
  types?: string[];
  /** Declared workflow_dispatch inputs; undeclared ones are refused with 422 as GitHub does. */
  inputs?: Record<string, { required?: boolean }>;
  /** run-name template: `${{ inputs.x }}` and `${{ github.event.client_payload.x }}` are expanded. */
  runName?: string;
  script?: RunScript;
}

export interface FakeRepo {
  owner: string;
  name: string;
  branches?: string[];
  workflows: FakeWorkflow[];
}

export interface FakeApp {
  appId: number;
  clientId?: string;
  /** PEM public key the app's JWTs are verified with. */
  publicKey: string;
  installations: number[];
}

export interface FakeGitHubOptions {
  repos: FakeRepo[];
  /** Personal access tokens accepted for every repository. */
  tokens?: string[];
  apps?: FakeApp[];
  /** Lifetime of installation tokens (GitHub: one hour). */
  tokenLifetimeMs?: number;
  /** github.com answers 200 with run details; GHES ≤ 3.20 rejects the key; some servers ignore it (204). */
  runDetails?: "supported" | "rejected" | "ignored";
  /** Status of the rejection above (cli/cli#12672 saw 400). */
  rejectStatus?: number;
  /** Primary rate limit per credential per window. */
  rateLimit?: { limit: number; windowMs: number };
  /** First run id handed out. */
  firstRunId?: number;
}

export interface Fault {
  method: string;
  path: RegExp;
  /** How many matching requests get the fault (default 1). */
  times?: number;
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Process the request normally first, then answer with the fault (a lost answer). */
  after?: boolean;
  /** Matching requests let through before the fault applies. */
  skip?: number;
}

export interface Exchange {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
  responseHeaders: Record<string, string>;
  responseBody: string;
  at: number;
}

interface Run {
  id: number;
  repo: FakeRepo;
  workflow: FakeWorkflow;
  event: string;
  ref: string;
  displayTitle: string;
  createdAt: number;
  visibleAt: number;
  startAt: number;
  endAt: number;
  conclusion: string;
  cancelled?: boolean;
  runNumber: number;
}

interface Bucket {
  limit: number;
  used: number;
  resetAt: number;
}

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

let sharedValidator: OpenApiValidator | undefined;
let example: Record<string, unknown> | undefined;
function runExample(): Record<string, unknown> {
  if (!example) {
    const spec = JSON.parse(readFileSync(createRequire(import.meta.url).resolve(SPEC_FILE), "utf8"));
    example = spec.components.examples["workflow-run"].value as Record<string, unknown>;
  }
  return structuredClone(example);
}

export const faults = {
  badGateway: (method: string, path: RegExp, extra: Partial<Fault> = {}): Fault => ({ method, path, status: 502, body: { message: "Server Error" }, ...extra }),
  secondaryRateLimit: (method: string, path: RegExp, retryAfterS: number, extra: Partial<Fault> = {}): Fault => ({
    method, path, status: 403, headers: { "retry-after": String(retryAfterS) },
    body: { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", documentation_url: `${DOCS}/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits`, status: "403" },
    ...extra,
  }),
};

export class FakeGitHub {
  readonly exchanges: Exchange[] = [];
  readonly validationErrors: string[] = [];
  /** Statuses the description does not declare for an operation (checked against basic-error). */
  readonly undocumented = new Set<string>();
  /** REST requests that did not ask for API version 2022-11-28. */
  readonly unversioned: string[] = [];
  readonly runs: Run[] = [];
  readonly issuedTokens: { token: string; installationId: number; expiresAt: number }[] = [];
  private readonly faultList: (Fault & { left: number; toSkip: number })[] = [];
  private readonly buckets = new Map<string, Bucket>();
  private readonly validator = (sharedValidator ??= new OpenApiValidator(SERVED));
  private readonly options: Required<Omit<FakeGitHubOptions, "apps">> & { apps: (FakeApp & { key: KeyObject })[] };
  private nextRunId: number;
  private server!: Server;
  url = "";

  constructor(options: FakeGitHubOptions) {
    this.options = {
      tokens: [], tokenLifetimeMs: 60 * 60_000, runDetails: "supported", rejectStatus: 400,
      rateLimit: { limit: 5000, windowMs: 60 * 60_000 }, firstRunId: 9_100_000_001,
      ...options,
      apps: (options.apps ?? []).map((a) => ({ ...a, key: createPublicKey(a.publicKey) })),
    };
    this.nextRunId = this.options.firstRunId;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        void this.handle(req.method ?? "GET", req.url ?? "/", req.headers, body).then(({ status, headers, text }) => {
          res.writeHead(status, headers);
          res.end(text);
        });
      });
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  fail(fault: Fault) {
    this.faultList.push({ ...fault, left: fault.times ?? 1, toSkip: fault.skip ?? 0 });
  }

  /** The primary rate-limit bucket of a token (or `installation:<id>`), to drain it in tests. */
  bucket(credential: string): Bucket {
    let b = this.buckets.get(credential);
    if (!b) {
      b = { limit: this.options.rateLimit.limit, used: 0, resetAt: Date.now() + this.options.rateLimit.windowMs };
      this.buckets.set(credential, b);
    }
    if (Date.now() >= b.resetAt) Object.assign(b, { used: 0, resetAt: Date.now() + this.options.rateLimit.windowMs });
    return b;
  }

  /** Exchanges matching a method and a path pattern. */
  calls(method: string, path: RegExp): Exchange[] {
    return this.exchanges.filter((e) => e.method === method && path.test(e.path.split("?")[0]!));
  }

  private async handle(method: string, rawUrl: string, headers: IncomingHttpHeaders, body: string) {
    const url = new URL(rawUrl, "http://github.test");
    const { matched, errors } = this.validator.validateRequest(method, url, headers, body);
    this.validationErrors.push(...errors.map((e) => `request: ${e}`));
    if (matched && headers["x-github-api-version"] !== API_VERSION) {
      this.unversioned.push(`${method} ${url.pathname}`);
    }
    let answer: Answer;
    const fault = this.takeFault(method, url.pathname);
    if (fault && !fault.after) answer = { status: fault.status, body: fault.body, headers: fault.headers ?? {} };
    else {
      try {
        answer = matched ? this.route(matched, url, headers, body) : this.error(404, "Not Found");
      } catch (err) {
        answer = this.error(500, `fake server bug: ${(err as Error).message}`);
      }
      if (fault) answer = { status: fault.status, body: fault.body, headers: fault.headers ?? {} };
    }
    const text = answer.body === undefined ? "" : JSON.stringify(answer.body);
    const responseHeaders: Record<string, string> = { ...(text ? { "content-type": "application/json; charset=utf-8" } : {}), ...answer.headers };
    const checked = this.validator.validateResponse(matched, answer.status, text);
    this.validationErrors.push(...checked.errors.map((e) => `response: ${e}`));
    if (checked.undocumented) this.undocumented.add(checked.undocumented);
    this.exchanges.push({ method, path: rawUrl, headers, body, status: answer.status, responseHeaders, responseBody: text, at: Date.now() });
    return { status: answer.status, headers: responseHeaders, text };
  }

  private takeFault(method: string, path: string): Fault | undefined {
    const f = this.faultList.find((x) => x.left > 0 && x.method === method && x.path.test(path));
    if (!f) return undefined;
    if (f.toSkip > 0) {
      f.toSkip--;
      return undefined;
    }
    f.left--;
    return f;
  }

  private error(status: number, message: string, extra: Record<string, string> = {}, docs = DOCS): Answer {
    return { status, body: { message, documentation_url: docs, status: String(status) }, headers: extra };
  }

  // ---- routing -------------------------------------------------------------------------------

  private route(m: Matched, url: URL, headers: IncomingHttpHeaders, body: string): Answer {
    const id = m.operation.operationId;
    if (id === "apps/create-installation-access-token") return this.accessToken(Number(m.pathParams.installation_id), headers);
    const who = this.authenticate(headers);
    if ("status" in who) return who;
    const bucket = this.bucket(who.credential);
    const rate = (b: Bucket) => ({
      "x-ratelimit-limit": String(b.limit), "x-ratelimit-remaining": String(Math.max(0, b.limit - b.used)),
      "x-ratelimit-used": String(b.used), "x-ratelimit-reset": String(Math.ceil(b.resetAt / 1000)), "x-ratelimit-resource": "core",
    });
    if (bucket.used >= bucket.limit) {
      return { ...this.error(403, `API rate limit exceeded for ${who.credential}.`, {}, `${DOCS}/using-the-rest-api/rate-limits-for-the-rest-api`), headers: rate(bucket) };
    }
    const answer = this.serve(id, m, url, body);
    if (answer.status === 200 && m.operation.method === "GET") {
      const etag = `W/"${createHash("sha1").update(JSON.stringify(answer.body)).digest("hex")}"`;
      // A 304 does not count against the primary limit.
      if (headers["if-none-match"] === etag) return { status: 304, headers: { etag, ...rate(bucket) } };
      answer.headers = { ...answer.headers, etag };
    }
    bucket.used++;
    answer.headers = { ...answer.headers, ...rate(bucket) };
    return answer;
  }

  private authenticate(headers: IncomingHttpHeaders): { credential: string } | Answer {
    const auth = headers.authorization;
    if (!auth) return this.error(401, "Requires authentication");
    const [scheme, value] = auth.split(" ");
    if (!/^(token|bearer)$/i.test(scheme ?? "") || !value) return this.error(401, "Bad credentials");
    if (this.options.tokens.includes(value)) return { credential: `token:${value.slice(0, 8)}` };
    const issued = this.issuedTokens.find((t) => t.token === value);
    if (issued && issued.expiresAt > Date.now()) return { credential: `installation:${issued.installationId}` };
    return this.error(401, "Bad credentials");
  }

  private serve(id: string, m: Matched, url: URL, body: string): Answer {
    const repo = this.options.repos.find((r) => r.owner.toLowerCase() === m.pathParams.owner!.toLowerCase() && r.name.toLowerCase() === m.pathParams.repo!.toLowerCase());
    if (!repo) return this.error(404, "Not Found");
    const json = body ? JSON.parse(body) as Record<string, unknown> : {};
    switch (id) {
      case "actions/create-workflow-dispatch": return this.workflowDispatch(repo, m.pathParams.workflow_id!, json);
      case "repos/create-dispatch-event": return this.repositoryDispatch(repo, json);
      case "actions/get-workflow-run": {
        const run = this.visibleRuns(repo).find((r) => String(r.id) === m.pathParams.run_id);
        return run ? { status: 200, body: this.runJson(run) } : this.error(404, "Not Found");
      }
      case "actions/list-workflow-runs-for-repo":
      case "actions/list-workflow-runs": {
        let runs = this.visibleRuns(repo);
        if (id === "actions/list-workflow-runs") {
          const wf = this.findWorkflow(repo, m.pathParams.workflow_id!);
          if (!wf) return this.error(404, "Not Found");
          runs = runs.filter((r) => r.workflow === wf);
        }
        const event = url.searchParams.get("event");
        if (event) runs = runs.filter((r) => r.event === event);
        const perPage = Math.min(100, Number(url.searchParams.get("per_page") ?? 30));
        const page = Number(url.searchParams.get("page") ?? 1);
        const sorted = runs.sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
        return { status: 200, body: { total_count: sorted.length, workflow_runs: sorted.slice((page - 1) * perPage, page * perPage).map((r) => this.runJson(r)) } };
      }
      case "actions/cancel-workflow-run": {
        const run = this.visibleRuns(repo).find((r) => String(r.id) === m.pathParams.run_id);
        if (!run) return this.error(404, "Not Found");
        if (this.status(run) === "completed") return this.error(409, "Cannot cancel a workflow run that is completed.");
        run.cancelled = true;
        run.conclusion = "cancelled";
        run.endAt = Math.min(run.endAt, Date.now() + 100);
        run.startAt = Math.min(run.startAt, run.endAt);
        return { status: 202, body: {} };
      }
    }
    return this.error(404, "Not Found");
  }

  private findWorkflow(repo: FakeRepo, idOrFile: string): FakeWorkflow | undefined {
    return repo.workflows.find((w) => String(w.id) === idOrFile || w.file === idOrFile);
  }

  private workflowDispatch(repo: FakeRepo, workflowId: string, body: Record<string, unknown>): Answer {
    const docs = `${DOCS}/actions/workflows#create-a-workflow-dispatch-event`;
    const wf = this.findWorkflow(repo, workflowId);
    if (!wf) return this.error(404, "Not Found", {}, docs);
    if ("return_run_details" in body && this.options.runDetails === "rejected") {
      return this.error(this.options.rejectStatus, 'Invalid request.\n\n"return_run_details" is not a permitted key.', {}, docs);
    }
    if (!(wf.on ?? ["workflow_dispatch"]).includes("workflow_dispatch")) return this.error(422, "Workflow does not have 'workflow_dispatch' trigger", {}, docs);
    const ref = String(body.ref);
    if (!(repo.branches ?? ["main"]).includes(ref.replace(/^refs\/heads\//, ""))) return this.error(422, `No ref found for: ${ref}`, {}, docs);
    const inputs = (body.inputs ?? {}) as Record<string, unknown>;
    const declared = wf.inputs ?? {};
    const unexpected = Object.keys(inputs).filter((k) => !(k in declared));
    if (unexpected.length > 0) return this.error(422, `Unexpected inputs provided: ${JSON.stringify(unexpected)}`, {}, docs);
    const missing = Object.entries(declared).find(([k, d]) => d.required && !(k in inputs));
    if (missing) return this.error(422, `Required input '${missing[0]}' not provided`, {}, docs);
    if (JSON.stringify(inputs).length > 65_535) return this.error(422, "inputs are too large.", {}, docs);
    const named = this.options.runDetails === "supported" && body.return_run_details === true;
    const run = this.createRun(repo, wf, "workflow_dispatch", ref, this.render(wf, { inputs }), named);
    if (!named) return { status: 204 };
    return { status: 200, body: { workflow_run_id: run.id, run_url: this.apiRunUrl(run), html_url: this.htmlRunUrl(run) } };
  }

  private repositoryDispatch(repo: FakeRepo, body: Record<string, unknown>): Answer {
    const docs = `${DOCS}/repos/repos#create-a-repository-dispatch-event`;
    const eventType = String(body.event_type ?? "");
    const payload = (body.client_payload ?? {}) as Record<string, unknown>;
    const n = Object.keys(payload).length;
    if (n > 10) return this.error(422, `No more than 10 properties are allowed; ${n} were supplied.`, {}, docs);
    if (Buffer.byteLength(JSON.stringify(payload)) >= 64 * 1024) return this.error(422, "client_payload is too large", {}, docs);
    for (const wf of repo.workflows) {
      if (!(wf.on ?? []).includes("repository_dispatch")) continue;
      if (wf.types && !wf.types.includes(eventType)) continue;
      this.createRun(repo, wf, "repository_dispatch", (repo.branches ?? ["main"])[0]!, this.render(wf, { clientPayload: payload }), false);
    }
    return { status: 204 };
  }

  private render(wf: FakeWorkflow, ctx: { inputs?: Record<string, unknown>; clientPayload?: Record<string, unknown> }): string {
    if (!wf.runName) return wf.name;
    return wf.runName.replace(/\$\{\{\s*([\w.]+)\s*\}\}/g, (_m, expr: string) => {
      const [root, ...rest] = expr.split(".");
      let v: unknown = root === "inputs" ? ctx.inputs : root === "github" && rest[0] === "event" && rest[1] === "client_payload" ? ctx.clientPayload : undefined;
      const keys = root === "inputs" ? rest : rest.slice(2);
      for (const k of keys) v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
      return v === undefined || v === null ? "" : String(v);
    });
  }

  private createRun(repo: FakeRepo, wf: FakeWorkflow, event: string, ref: string, displayTitle: string, named: boolean): Run {
    const s = wf.script ?? {};
    const now = Date.now();
    const visibleAt = named ? now : now + (s.appearAfterMs ?? 0);
    const startAt = visibleAt + (s.queuedMs ?? 0);
    const run: Run = {
      id: this.nextRunId++, repo, workflow: wf, event, ref: ref.replace(/^refs\/heads\//, ""), displayTitle, createdAt: now, visibleAt,
      startAt, endAt: startAt + (s.runningMs ?? 0), conclusion: s.conclusion ?? "success",
      runNumber: this.runs.filter((r) => r.workflow === wf).length + 1,
    };
    this.runs.push(run);
    return run;
  }

  private visibleRuns(repo: FakeRepo): Run[] {
    const now = Date.now();
    return this.runs.filter((r) => r.repo === repo && r.visibleAt <= now);
  }

  private status(run: Run): string {
    const now = Date.now();
    return now >= run.endAt ? "completed" : now >= run.startAt ? "in_progress" : "queued";
  }

  private apiRunUrl(run: Run) {
    return `${this.url}/repos/${run.repo.owner}/${run.repo.name}/actions/runs/${run.id}`;
  }

  private htmlRunUrl(run: Run) {
    return `${this.url}/${run.repo.owner}/${run.repo.name}/actions/runs/${run.id}`;
  }

  private runJson(run: Run): Record<string, unknown> {
    const status = this.status(run);
    const iso = (t: number) => new Date(Math.floor(t / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z");
    const api = this.apiRunUrl(run);
    const updated = status === "completed" ? run.endAt : status === "in_progress" ? run.startAt : run.createdAt;
    return {
      ...runExample(),
      id: run.id,
      name: run.workflow.name,
      node_id: Buffer.from(`WorkflowRun:${run.id}`).toString("base64"),
      check_suite_id: run.id + 1_000_000,
      check_suite_node_id: Buffer.from(`CheckSuite:${run.id}`).toString("base64"),
      head_branch: run.ref,
      head_sha: createHash("sha1").update(run.ref).digest("hex"),
      path: `.github/workflows/${run.workflow.file}`,
      run_number: run.runNumber,
      event: run.event,
      display_title: run.displayTitle,
      status,
      conclusion: status === "completed" ? run.conclusion : null,
      workflow_id: run.workflow.id,
      url: api,
      html_url: this.htmlRunUrl(run),
      pull_requests: [],
      created_at: iso(run.createdAt),
      updated_at: iso(updated),
      run_attempt: 1,
      run_started_at: iso(run.startAt),
      jobs_url: `${api}/jobs`,
      logs_url: `${api}/logs`,
      check_suite_url: `${this.url}/repos/${run.repo.owner}/${run.repo.name}/check-suites/${run.id + 1_000_000}`,
      artifacts_url: `${api}/artifacts`,
      cancel_url: `${api}/cancel`,
      rerun_url: `${api}/rerun`,
      previous_attempt_url: null,
      workflow_url: `${this.url}/repos/${run.repo.owner}/${run.repo.name}/actions/workflows/${run.workflow.id}`,
    };
  }

  // ---- GitHub App --------------------------------------------------------------------------

  private accessToken(installationId: number, headers: IncomingHttpHeaders): Answer {
    const docs = `${DOCS}/apps/apps#create-an-installation-access-token-for-an-app`;
    const [scheme, jwt] = (headers.authorization ?? "").split(" ");
    if (!/^bearer$/i.test(scheme ?? "") || !jwt) return this.error(401, "A JSON web token could not be decoded", {}, docs);
    const parts = jwt.split(".");
    if (parts.length !== 3) return this.error(401, "A JSON web token could not be decoded", {}, docs);
    let header: { alg?: string };
    let claims: { iss?: unknown; iat?: number; exp?: number };
    try {
      header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
    } catch {
      return this.error(401, "A JSON web token could not be decoded", {}, docs);
    }
    const app = this.options.apps.find((a) => String(a.appId) === String(claims.iss) || (a.clientId && a.clientId === claims.iss));
    if (header.alg !== "RS256" || !app) return this.error(401, "Integration not found", {}, docs);
    const ok = verify("RSA-SHA256", Buffer.from(`${parts[0]}.${parts[1]}`), app.key, Buffer.from(parts[2]!, "base64url"));
    if (!ok) return this.error(401, "A JSON web token could not be decoded", {}, docs);
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp <= now) return this.error(401, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires", {}, docs);
    if (typeof claims.iat !== "number" || claims.iat > now + 60) return this.error(401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued", {}, docs);
    if (claims.exp - claims.iat > 660) return this.error(401, "'Expiration time' claim ('exp') is too far in the future", {}, docs);
    if (!app.installations.includes(installationId)) return this.error(404, "Not Found", {}, docs);
    const token = `ghs_${randomBytes(18).toString("hex")}`;
    const expiresAt = Date.now() + this.options.tokenLifetimeMs;
    this.issuedTokens.push({ token, installationId, expiresAt });
    return {
      status: 201,
      body: {
        token,
        expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
        permissions: { actions: "write", contents: "write", metadata: "read" },
        repository_selection: "all",
      },
    };
  }
}
